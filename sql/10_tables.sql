-- The two tables of the queue: live jobs and the dead letter.

create table dbos.job_queue (
  id bigint generated always as identity primary key,
  job_name text not null,
  -- Any JSON value: an object, an array, a string, a number or null.
  payload jsonb not null default '{}',
  -- Status is text with a check, not an enum: adding a state is then a
  -- cheap migration.
  status text not null default 'pending',
  -- Attempts started so far (0 while new). A released job gives its
  -- attempt back, so attempt <= max_attempts always holds.
  attempt int not null default 0,
  max_attempts int not null default 3,
  -- The last failure's error text, kept when a retry succeeds.
  error text,
  -- When the job may run; while it runs, the time it was claimed (so
  -- "now() - scheduled_for" is how long it has been running).
  scheduled_for timestamptz not null default now(),
  created_at timestamptz not null default now(),
  started_at timestamptz,
  -- When it finished: completed or cancelled.
  completed_at timestamptz,
  -- The worker that holds the job while running, and the one that
  -- finished it afterwards.
  locked_by text,
  -- The lease: a running job whose lease has expired is rescued.
  lease_expires_at timestamptz,
  -- Fencing token: incremented by every claim, so a worker paused past
  -- its lease cannot complete, fail or extend a later claim of the job,
  -- even one made under the same worker id.
  lease_token int not null default 0,
  -- Set by cancel_job on a running job; its worker learns it from
  -- heartbeat / report_progress and the job ends cancelled.
  cancel_requested boolean not null default false,
  progress smallint,
  progress_message text,
  -- Higher runs first; then scheduled_for, then id.
  priority int not null default 0,
  -- Workers may serve chosen queues; a queue may have a concurrency limit
  -- (dbos.queues).
  queue_name text not null default 'default',
  -- While a job with this key is pending or running, enqueueing the same key
  -- returns that job instead of a new one.
  dedup_key text,
  -- A run longer than this fails the attempt: the lease is never extended
  -- past started_at + timeout_seconds.
  timeout_seconds int,
  -- The handler's return value.
  result jsonb,
  constraint job_queue_job_name_check
  check (length(job_name) between 1 and 255),
  constraint job_queue_status_check
  check (status in ('pending', 'running', 'completed', 'cancelled')),
  constraint job_queue_attempt_check
  check (attempt >= 0 and attempt <= max_attempts),
  constraint job_queue_max_attempts_check check (max_attempts >= 1),
  constraint job_queue_progress_check check (progress between 0 and 100),
  constraint job_queue_queue_name_check
  check (length(queue_name) between 1 and 255),
  constraint job_queue_dedup_key_check
  check (length(dedup_key) between 1 and 255),
  constraint job_queue_timeout_seconds_check check (timeout_seconds >= 1),
  -- A running job always has a holder and a lease; no other job has a
  -- lease.
  constraint job_queue_lease_check
  check (
    (status = 'running') = (lease_expires_at is not null)
    and (status <> 'running' or locked_by is not null)
  ),
  -- Finished jobs, and only they, have completed_at (pruning relies on it).
  constraint job_queue_completed_at_check
  check (
    (status in ('completed', 'cancelled')) = (completed_at is not null)
  )
);

comment on table dbos.job_queue is
'Jobs waiting, running and finished. Change rows through the dbos functions.';

-- The claim's index: only pending rows, in claim order, so a million
-- finished rows never slow down claim_job.
create index job_queue_claim_idx on dbos.job_queue (
  priority desc, scheduled_for, id
)
where status = 'pending';

-- At most one pending or running job per dedup_key: the index is what makes
-- enqueue's deduplication race-free.
create unique index job_queue_dedup_key_idx on dbos.job_queue (dedup_key)
where dedup_key is not null and status in ('pending', 'running');

-- rescue_expired_jobs reads running rows by lease expiry. The predicate is on
-- the lease, not on status, on purpose: a partial index "where status =
-- 'running'" tempts the planner, with stale statistics, to answer
-- complete_jobs by scanning every running row instead of looking ids up.
create index job_queue_lease_idx on dbos.job_queue (lease_expires_at)
where lease_expires_at is not null;

-- prune_jobs and the throughput query read finished rows by finish time.
create index job_queue_finished_idx on dbos.job_queue (completed_at)
where status in ('completed', 'cancelled');

create table dbos.failed_jobs (
  -- The job's id in dbos.job_queue; not a foreign key, because the row
  -- leaves job_queue in the same transaction that inserts it here.
  id bigint primary key,
  job_name text not null,
  payload jsonb not null,
  error text,
  attempt int not null,
  max_attempts int not null,
  original_created_at timestamptz not null,
  failed_at timestamptz not null default now(),
  -- Kept so that a replay runs as the job did.
  priority int not null default 0,
  queue_name text not null default 'default',
  dedup_key text,
  timeout_seconds int
);

comment on table dbos.failed_jobs is
'Dead letter: jobs that used up max_attempts, removed from dbos.job_queue.';

create index failed_jobs_failed_at_idx on dbos.failed_jobs (failed_at, id);

create table dbos.queues (
  queue_name text primary key,
  -- Running jobs allowed at once across all workers: NULL unlimited, 1 a
  -- serial queue, 0 paused.
  concurrency_limit int,
  updated_at timestamptz not null default now(),
  constraint queues_concurrency_limit_check check (concurrency_limit >= 0)
);

comment on table dbos.queues is
'Settings of named queues; a queue without a row has no limit.';

create table dbos.schedules (
  schedule_name text primary key,
  -- Five fields (minute hour day-of-month month day-of-week) or a macro
  -- such as @hourly, read in timezone.
  cron text not null,
  timezone text not null default 'UTC',
  job_name text not null,
  payload jsonb not null default '{}',
  queue_name text not null default 'default',
  priority int not null default 0,
  max_attempts int not null default 3,
  -- The next tick; enqueue_due_schedules advances it in the transaction
  -- that enqueues the tick's job, so each tick runs once.
  next_run_at timestamptz not null,
  last_run_at timestamptz,
  created_at timestamptz not null default now(),
  constraint schedules_max_attempts_check check (max_attempts >= 1)
);

comment on table dbos.schedules is
'Periodic jobs: one job per cron tick, however many workers run.';
