-- 0001: the queue's schema, tables and functions (sql/00 to sql/70 as of this version).

-- The schema and its migration ledger.
--
-- `dbos` is also the default schema of the DBOS Transact library. The comment
-- on the schema is pgstack's marker: the migrator refuses a `dbos` schema
-- without it instead of mixing its tables into somebody else's.

create schema dbos;

comment on schema dbos is
'pgstack job queue: jobs are rows, every state change is a function here.';

create table dbos.schema_migrations (
  version int primary key,
  name text not null,
  -- sha256 of the migration file as shipped; a changed file is refused.
  checksum text not null,
  applied_at timestamptz not null default now()
);

comment on table dbos.schema_migrations is
'Migrations applied by pgstack migrate, with the checksum of each file.';

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
  constraint job_queue_job_name_check
  check (length(job_name) between 1 and 255),
  constraint job_queue_status_check
  check (status in ('pending', 'running', 'completed', 'cancelled')),
  constraint job_queue_attempt_check
  check (attempt >= 0 and attempt <= max_attempts),
  constraint job_queue_max_attempts_check check (max_attempts >= 1),
  constraint job_queue_progress_check check (progress between 0 and 100),
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
create index job_queue_claim_idx on dbos.job_queue (scheduled_for, id)
where status = 'pending';

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
  failed_at timestamptz not null default now()
);

comment on table dbos.failed_jobs is
'Dead letter: jobs that used up max_attempts, removed from dbos.job_queue.';

create index failed_jobs_failed_at_idx on dbos.failed_jobs (failed_at, id);

-- Enqueueing: the bulk function is the real one; enqueue delegates to it.

create function dbos.wake_workers()
returns void
language sql
set search_path = pg_catalog, pg_temp
as $$
  -- One channel, an empty payload: PostgreSQL folds identical
  -- notifications of a transaction into one, so a burst of enqueues in one
  -- transaction wakes the workers once.
  select pg_notify('dbos_job_queue', '');
$$;

comment on function dbos.wake_workers() is
'NOTIFY channel dbos_job_queue (empty payload): jobs are due now. A wake-up '
'hint only; workers also poll, so correctness never depends on it.';

create function dbos.enqueue_many(
  job_names text[],
  payloads jsonb[],
  scheduled_for timestamptz[] default null,
  max_attempts int[] default null
)
returns setof bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  job_count int := cardinality(enqueue_many.job_names);
  bad record;
begin
  if enqueue_many.job_names is null or enqueue_many.payloads is null then
    raise exception using
      errcode = 'null_value_not_allowed',
      message = 'enqueue_many: job_names and payloads must not be null';
  end if;
  if cardinality(enqueue_many.payloads) <> job_count
    or cardinality(enqueue_many.scheduled_for) <> job_count
    or cardinality(enqueue_many.max_attempts) <> job_count then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'enqueue_many: arrays differ in length (job_names %s, payloads %s, '
        'scheduled_for %s, max_attempts %s)',
        job_count, cardinality(enqueue_many.payloads),
        coalesce(cardinality(enqueue_many.scheduled_for)::text, 'null'),
        coalesce(cardinality(enqueue_many.max_attempts)::text, 'null'));
  end if;
  if job_count = 0 then
    return;
  end if;

  -- One pass finds the first bad job; NULL elements mean "the default".
  select u.ordinality, u.job_name, u.scheduled_for, u.max_attempts
  into bad
  from unnest(
    enqueue_many.job_names,
    enqueue_many.scheduled_for,
    enqueue_many.max_attempts
  ) with ordinality as u (job_name, scheduled_for, max_attempts, ordinality)
  where u.job_name is null
    or length(u.job_name) not between 1 and 255
    or u.max_attempts < 1
    or u.scheduled_for in ('infinity', '-infinity')
  limit 1;
  if found then
    if bad.job_name is null then
      raise exception using
        errcode = 'null_value_not_allowed',
        message = 'job_name must not be null',
        detail = format('job %s of %s', bad.ordinality, job_count);
    elsif length(bad.job_name) not between 1 and 255 then
      raise exception using
        errcode = 'invalid_parameter_value',
        message = format(
          'job_name must be 1 to 255 characters, got %s characters: %L',
          length(bad.job_name), left(bad.job_name, 80)),
        detail = format('job %s of %s', bad.ordinality, job_count);
    elsif bad.max_attempts < 1 then
      raise exception using
        errcode = 'invalid_parameter_value',
        message = format(
          'max_attempts must be at least 1, got %s', bad.max_attempts),
        detail = format('job %s of %s', bad.ordinality, job_count);
    else
      raise exception using
        errcode = 'invalid_datetime_format',
        message = format(
          'scheduled_for must be a finite time, got %s', bad.scheduled_for),
        detail = format('job %s of %s', bad.ordinality, job_count);
    end if;
  end if;

  -- The rows are inserted in the arrays' order, so the ids come back in
  -- that order too.
  return query
  insert into dbos.job_queue as j (
    job_name, payload, scheduled_for, max_attempts
  )
  select
    u.job_name,
    -- An SQL NULL payload is stored as the JSON value null.
    coalesce(u.payload, 'null'::jsonb),
    coalesce(u.scheduled_for, now()),
    coalesce(u.max_attempts, 3)
  from unnest(
    enqueue_many.job_names,
    enqueue_many.payloads,
    enqueue_many.scheduled_for,
    enqueue_many.max_attempts
  ) as u (job_name, payload, scheduled_for, max_attempts)
  returning j.id;

  if enqueue_many.scheduled_for is null
    or exists (
      select from unnest(enqueue_many.scheduled_for) as s (scheduled_for)
      where s.scheduled_for is null or s.scheduled_for <= now()
    ) then
    perform dbos.wake_workers();
  end if;
end;
$$;

comment on function dbos.enqueue_many(text[], jsonb[], timestamptz[], int[])
is
'Enqueues many jobs in one statement and returns their ids in the order '
'given. job_names and payloads have one element per job; scheduled_for and '
'max_attempts are NULL (defaults: now, 3) or have one element per job, a '
'NULL element meaning the default. Bad input raises (22004, 22023, 22007) '
'naming the job; nothing is inserted. Wakes workers when a job is due now.';

create function dbos.enqueue(
  job_name text,
  payload jsonb default '{}',
  scheduled_for timestamptz default now(),
  max_attempts int default 3
)
returns bigint
language sql
set search_path = pg_catalog, pg_temp
as $$
  select dbos.enqueue_many(
    array[enqueue.job_name],
    array[enqueue.payload],
    array[enqueue.scheduled_for],
    array[enqueue.max_attempts]
  );
$$;

comment on function dbos.enqueue(text, jsonb, timestamptz, int) is
'Enqueues one job and returns its id. Runs at scheduled_for (default now), '
'at most max_attempts times (default 3); NULL arguments take the defaults, '
'except payload: an SQL NULL is stored as the JSON value null. In the '
'caller''s transaction, so it commits or rolls back with the caller''s own '
'writes.';

-- Claiming: the one hot read of the queue.

create function dbos.claim_job(
  worker_id text,
  job_names text[] default null,
  batch_size int default 1,
  lease_seconds int default 60
)
returns setof dbos.job_queue
language plpgsql
set search_path = pg_catalog, pg_temp
-- The claim must read the claim index in order and stop after batch_size rows.
-- With stale statistics (a table just filled by a bulk enqueue) the planner
-- may prefer to fetch every due row and sort them, which costs milliseconds
-- per claim on a long queue; these settings take that plan away.
set enable_seqscan = off
set enable_bitmapscan = off
set enable_sort = off
as $$
begin
  if coalesce(claim_job.worker_id, '') = '' then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'worker_id must be a non-empty text, got %L', claim_job.worker_id);
  end if;
  if claim_job.batch_size is null or claim_job.batch_size < 1 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'batch_size must be at least 1, got %s',
        coalesce(claim_job.batch_size::text, 'null'));
  end if;
  if claim_job.lease_seconds is null or claim_job.lease_seconds < 1 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'lease_seconds must be at least 1, got %s',
        coalesce(claim_job.lease_seconds::text, 'null'));
  end if;

  -- SKIP LOCKED: concurrent claimers pass over each other's rows instead
  -- of queueing behind them, and never get the same job. A row that
  -- changed after this statement's snapshot is re-checked when locked.
  return query
  with due as (
    select j.id
    from dbos.job_queue as j
    where
      j.status = 'pending'
      and j.scheduled_for <= now()
      and (claim_job.job_names is null or j.job_name = any(claim_job.job_names))
    order by j.scheduled_for, j.id
    limit claim_job.batch_size
    for update skip locked
  )

  update dbos.job_queue as j
  set
    status = 'running',
    attempt = j.attempt + 1,
    started_at = now(),
    scheduled_for = now(),
    locked_by = claim_job.worker_id,
    lease_expires_at = now() + make_interval(secs => claim_job.lease_seconds),
    lease_token = j.lease_token + 1,
    -- Progress belongs to an attempt.
    progress = null,
    progress_message = null
  from due
  where j.id = due.id
  returning j.*;
end;
$$;

comment on function dbos.claim_job(text, text[], int, int) is
'Claims up to batch_size due pending jobs (only job_names when given), '
'oldest scheduled_for first, then id, with FOR UPDATE SKIP LOCKED: each is '
'running, attempt + 1, held by worker_id under a lease of lease_seconds and '
'a new lease_token. Concurrent callers never get the same job.';

create function dbos.seconds_until_next_job(job_names text[] default null)
returns double precision
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  -- The claim's index, read from its start: the earliest pending job.
  select extract(epoch from min(j.scheduled_for) - now())::float8
  from dbos.job_queue as j
  where
    j.status = 'pending'
    and (
      seconds_until_next_job.job_names is null
      or j.job_name = any(seconds_until_next_job.job_names)
    );
$$;

comment on function dbos.seconds_until_next_job(text[]) is
'Seconds until the earliest pending job (of job_names when given) is due, by '
'the database clock: 0 or less when one is due now, NULL when none is '
'pending. An idle worker sleeps that long (at most its poll interval), so '
'scheduled jobs and retries start on time without a notification.';

-- Finishing a claimed job: completion, failure with backoff, dead letter.
-- The batch forms are the real ones; the single forms delegate to them.

create function dbos.retry_delay(attempt int, retry_delay_ms int)
returns interval
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  -- Computed in double precision and capped at 24 hours, so attempt 100
  -- (or 2 billion) never overflows.
  select make_interval(
    secs => least(
      retry_delay.retry_delay_ms::float8
      * 2::float8 ^ least(greatest(retry_delay.attempt - 1, 0), 64),
      86400000::float8
    ) / 1000
  );
$$;

comment on function dbos.retry_delay(int, int) is
'Backoff before the next try after attempt number attempt failed: '
'retry_delay_ms * 2^(attempt - 1) milliseconds (1 s, 2 s, 4 s, ... with the '
'default 1000), capped at 24 hours.';

create function dbos.complete_jobs(
  job_ids bigint[],
  worker_id text default null,
  lease_tokens int[] default null
)
returns setof bigint
language plpgsql
set search_path = pg_catalog, pg_temp
-- Rows are looked up by id: never a scan of the table, whatever the statistics.
set enable_seqscan = off
as $$
begin
  return query
  update dbos.job_queue as j
  set
    status = 'completed',
    completed_at = now(),
    lease_expires_at = null
  from unnest(complete_jobs.job_ids, complete_jobs.lease_tokens)
    as f (job_id, lease_token)
  where
    j.id = f.job_id
    and j.status = 'running'
    and (complete_jobs.worker_id is null or j.locked_by = complete_jobs.worker_id)
    and (f.lease_token is null or j.lease_token = f.lease_token)
  returning j.id;
end;
$$;

comment on function dbos.complete_jobs(bigint[], text, int[]) is
'Marks running jobs completed in one statement and returns the ids it '
'completed. A job is skipped (not returned) unless it is running, held by '
'worker_id when given, and under the lease_tokens element when given: a '
'stale worker cannot complete a later claim.';

create function dbos.complete_job(
  job_id bigint,
  worker_id text default null,
  lease_token int default null
)
returns boolean
language sql
set search_path = pg_catalog, pg_temp
as $$
  select exists (
    select
    from dbos.complete_jobs(
      array[complete_job.job_id],
      complete_job.worker_id,
      array[complete_job.lease_token]
    )
  );
$$;

comment on function dbos.complete_job(bigint, text, int) is
'Marks one running job completed. True only when it moved the job (running, '
'held by worker_id and under lease_token when given); otherwise false and '
'nothing changes.';

create function dbos.fail_jobs(
  job_ids bigint[],
  errors text[],
  retry_delay_ms int default 1000,
  worker_id text default null,
  lease_tokens int[] default null
)
returns table (job_id bigint, outcome text)
language plpgsql
set search_path = pg_catalog, pg_temp
-- Rows are looked up by id: never a scan of the table, whatever the statistics.
set enable_seqscan = off
as $$
begin
  if fail_jobs.retry_delay_ms < 0 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'retry_delay_ms must be 0 or more, got %s', fail_jobs.retry_delay_ms);
  end if;
  if cardinality(fail_jobs.errors) <> cardinality(fail_jobs.job_ids) then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'fail_jobs: %s job_ids but %s errors',
        cardinality(fail_jobs.job_ids), cardinality(fail_jobs.errors));
  end if;

  -- Lock the rows first and decide from the locked (latest) versions, so a
  -- cancel landing meanwhile is seen by exactly one of the branches below.
  return query
  with failing as materialized (
    select
      j.id,
      j.attempt,
      j.max_attempts,
      j.cancel_requested,
      coalesce(f.error, 'unknown error') as error
    from dbos.job_queue as j
    inner join unnest(
      fail_jobs.job_ids, fail_jobs.errors, fail_jobs.lease_tokens
    ) as f (job_id, error, lease_token) on j.id = f.job_id
    where
      j.status = 'running'
      and (fail_jobs.worker_id is null or j.locked_by = fail_jobs.worker_id)
      and (f.lease_token is null or j.lease_token = f.lease_token)
    for update of j
  ),

  dead as (
    delete from dbos.job_queue as j
    using failing as f
    where
      j.id = f.id
      and f.attempt >= f.max_attempts
      and not f.cancel_requested
    returning
      j.id, j.job_name, j.payload, f.error, j.attempt, j.max_attempts,
      j.created_at
  ),

  buried as (
    insert into dbos.failed_jobs as d (
      id, job_name, payload, error, attempt, max_attempts, original_created_at
    )
    select
      dead.id,
      dead.job_name,
      dead.payload,
      dead.error,
      dead.attempt,
      dead.max_attempts,
      dead.created_at
    from dead
    returning d.id
  ),

  retried as (
    update dbos.job_queue as j
    set
      status = case when f.cancel_requested then 'cancelled' else 'pending' end,
      error = f.error,
      scheduled_for = case
        when f.cancel_requested then j.scheduled_for
        else now() + dbos.retry_delay(f.attempt, coalesce(fail_jobs.retry_delay_ms, 1000))
      end,
      completed_at = case when f.cancel_requested then now() end,
      locked_by = case when f.cancel_requested then j.locked_by end,
      lease_expires_at = null
    from failing as f
    where
      j.id = f.id
      and (f.attempt < f.max_attempts or f.cancel_requested)
    returning j.id, j.status
  )

  select buried.id, 'dead'::text from buried
  union all
  select retried.id, retried.status from retried;
end;
$$;

comment on function dbos.fail_jobs(bigint[], text[], int, text, int[]) is
'Fails the running attempts of many jobs in one statement (errors[i] for '
'job_ids[i]) and returns each changed job with its outcome: pending (retry '
'after dbos.retry_delay), dead (moved to dbos.failed_jobs) or cancelled. '
'Jobs not running under worker_id / lease_tokens are skipped.';

create function dbos.fail_job(
  job_id bigint,
  error text,
  retry_delay_ms int default 1000,
  worker_id text default null,
  lease_token int default null
)
returns text
language sql
set search_path = pg_catalog, pg_temp
as $$
  select f.outcome
  from dbos.fail_jobs(
    array[fail_job.job_id],
    array[fail_job.error],
    fail_job.retry_delay_ms,
    fail_job.worker_id,
    array[fail_job.lease_token]
  ) as f;
$$;

comment on function dbos.fail_job(bigint, text, int, text, int) is
'Fails the running attempt of a job with error. Returns ''pending'' (retried '
'at now() + retry_delay_ms * 2^(attempt - 1) ms, capped at 24 h), ''dead'' '
'(attempt >= max_attempts: moved to dbos.failed_jobs in this transaction), '
'''cancelled'' (a cancel was requested), or NULL when the job is not running '
'under worker_id / lease_token (nothing changes).';

-- Leases: how a worker keeps its jobs, gives them back, and how the jobs of
-- a dead worker come back.

create function dbos.heartbeat(
  worker_id text,
  job_ids bigint[],
  lease_seconds int default 60,
  lease_tokens int[] default null
)
returns table (job_id bigint, state text)
language plpgsql
set search_path = pg_catalog, pg_temp
-- Rows are looked up by id: never a scan of the table, whatever the statistics.
set enable_seqscan = off
as $$
begin
  if heartbeat.lease_seconds is null or heartbeat.lease_seconds < 1 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'lease_seconds must be at least 1, got %s',
        coalesce(heartbeat.lease_seconds::text, 'null'));
  end if;

  return query
  with extended as (
    update dbos.job_queue as j
    set lease_expires_at = greatest(
      j.lease_expires_at, now() + make_interval(secs => heartbeat.lease_seconds)
    )
    from unnest(heartbeat.job_ids, heartbeat.lease_tokens)
      as f (job_id, lease_token)
    where
      j.id = f.job_id
      and j.status = 'running'
      and j.locked_by = heartbeat.worker_id
      and (f.lease_token is null or j.lease_token = f.lease_token)
    returning j.id, j.cancel_requested
  )

  select
    f.job_id,
    case when e.id is null then 'lost' else 'cancel_requested' end
  from unnest(heartbeat.job_ids) as f (job_id)
  left join extended as e on f.job_id = e.id
  where e.id is null or e.cancel_requested;
end;
$$;

comment on function dbos.heartbeat(text, bigint[], int, int[]) is
'Extends to now() + lease_seconds the leases that worker_id still holds '
'(under lease_tokens when given) and returns only the exceptions: '
'(job_id, ''cancel_requested'') for a job whose cancel was requested, '
'(job_id, ''lost'') for one it no longer holds. No rows: all is well.';

create function dbos.report_progress(
  job_id bigint,
  progress numeric,
  message text default null,
  lease_seconds int default 60,
  lease_token int default null
)
returns text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  is_cancel_requested boolean;
begin
  if report_progress.progress = 'NaN'::numeric then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = 'progress must be a number from 0 to 100, got NaN';
  end if;
  if report_progress.lease_seconds is null or report_progress.lease_seconds < 1 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'lease_seconds must be at least 1, got %s',
        coalesce(report_progress.lease_seconds::text, 'null'));
  end if;

  update dbos.job_queue as j
  set
    -- LEAST and GREATEST skip NULLs, so NULL is handled first.
    progress = case
      when report_progress.progress is null then j.progress
      else round(greatest(0, least(100, report_progress.progress)))::smallint
    end,
    progress_message = coalesce(report_progress.message, j.progress_message),
    lease_expires_at = greatest(
      j.lease_expires_at,
      now() + make_interval(secs => report_progress.lease_seconds)
    )
  where
    j.id = report_progress.job_id
    and j.status = 'running'
    and (
      report_progress.lease_token is null
      or j.lease_token = report_progress.lease_token
    )
  returning j.cancel_requested into is_cancel_requested;

  if not found then
    return 'lost';
  elsif is_cancel_requested then
    return 'cancel_requested';
  end if;
  return 'held';
end;
$$;

comment on function dbos.report_progress(bigint, numeric, text, int, int) is
'Writes progress (clamped to 0-100, rounded; NULL keeps the old value) and '
'message of a running job and extends its lease to at least now() + '
'lease_seconds. Returns ''held'', ''cancel_requested'' (stop soon), or '
'''lost'' (not running under lease_token: nothing written).';

create function dbos.rescue_expired_jobs(retry_delay_ms int default 1000)
returns int
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  rescued int;
begin
  if rescue_expired_jobs.retry_delay_ms < 0 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'retry_delay_ms must be 0 or more, got %s',
        rescue_expired_jobs.retry_delay_ms);
  end if;
  -- One guarded statement: the rows are re-checked and locked with SKIP
  -- LOCKED, so a completion or cancel that lands between the scan and the
  -- write is either waited out (its row is skipped) or seen (the row no
  -- longer matches); a finished job is never overwritten.
  with expired as materialized (
    select
      j.id,
      j.attempt,
      j.max_attempts,
      j.cancel_requested,
      format(
        'lease expired at %s: worker %s stopped heartbeating (attempt %s of %s)',
        j.lease_expires_at, j.locked_by, j.attempt, j.max_attempts
      ) as error
    from dbos.job_queue as j
    where j.status = 'running' and j.lease_expires_at < now()
    order by j.lease_expires_at
    limit 10000
    for update skip locked
  ),

  dead as (
    delete from dbos.job_queue as j
    using expired as e
    where
      j.id = e.id
      and e.attempt >= e.max_attempts
      and not e.cancel_requested
    returning
      j.id, j.job_name, j.payload, e.error, j.attempt, j.max_attempts,
      j.created_at
  ),

  buried as (
    insert into dbos.failed_jobs as d (
      id, job_name, payload, error, attempt, max_attempts, original_created_at
    )
    select
      dead.id,
      dead.job_name,
      dead.payload,
      dead.error,
      dead.attempt,
      dead.max_attempts,
      dead.created_at
    from dead
    returning d.id
  ),

  revived as (
    update dbos.job_queue as j
    set
      status = case when e.cancel_requested then 'cancelled' else 'pending' end,
      error = e.error,
      scheduled_for = case
        when e.cancel_requested then j.scheduled_for
        else now() + dbos.retry_delay(
          e.attempt, coalesce(rescue_expired_jobs.retry_delay_ms, 1000)
        )
      end,
      completed_at = case when e.cancel_requested then now() end,
      locked_by = case when e.cancel_requested then j.locked_by end,
      lease_expires_at = null
    from expired as e
    where
      j.id = e.id
      and (e.attempt < e.max_attempts or e.cancel_requested)
    returning j.id
  )

  select (select count(*) from buried) + (select count(*) from revived)
  into rescued;
  return rescued;
end;
$$;

comment on function dbos.rescue_expired_jobs(int) is
'Running jobs whose lease expired count as a failed attempt (error says the '
'lease expired): back to pending after the backoff of retry_delay_ms, or to '
'dbos.failed_jobs after max_attempts; a job whose cancel was requested ends '
'cancelled. Returns how many jobs it rescued (at most 10000 a call).';

create function dbos.release_jobs(
  worker_id text,
  job_ids bigint[],
  lease_tokens int[] default null
)
returns int
language plpgsql
set search_path = pg_catalog, pg_temp
-- Rows are looked up by id: never a scan of the table, whatever the statistics.
set enable_seqscan = off
as $$
declare
  released int;
  requeued int;
begin
  with released_jobs as (
    update dbos.job_queue as j
    set
      status = case when j.cancel_requested then 'cancelled' else 'pending' end,
      -- Give the attempt back: the job did not fail, its worker stopped.
      attempt = case
        when j.cancel_requested then j.attempt else j.attempt - 1
      end,
      scheduled_for = now(),
      completed_at = case when j.cancel_requested then now() end,
      locked_by = case when j.cancel_requested then j.locked_by end,
      lease_expires_at = null
    from unnest(release_jobs.job_ids, release_jobs.lease_tokens)
      as f (job_id, lease_token)
    where
      j.id = f.job_id
      and j.status = 'running'
      and j.locked_by = release_jobs.worker_id
      and (f.lease_token is null or j.lease_token = f.lease_token)
    returning j.status
  )

  select
    count(*),
    count(*) filter (where released_jobs.status = 'pending')
  into released, requeued
  from released_jobs;

  if requeued > 0 then
    perform dbos.wake_workers();
  end if;
  return released;
end;
$$;

comment on function dbos.release_jobs(text, bigint[], int[]) is
'For a graceful shutdown: running jobs held by worker_id go back to pending, '
'due now, without using up an attempt (a job whose cancel was requested ends '
'cancelled). Returns how many it released; wakes the other workers.';

-- Operators' functions: cancel, replay, retry now, prune.

create function dbos.cancel_job(job_id bigint)
returns text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  current_status text;
begin
  if cancel_job.job_id is null then
    raise exception using
      errcode = 'null_value_not_allowed',
      message = 'cancel_job: job_id must not be null';
  end if;
  update dbos.job_queue as j
  set status = 'cancelled', completed_at = now()
  where j.id = cancel_job.job_id and j.status = 'pending';
  if found then
    return 'cancelled';
  end if;

  update dbos.job_queue as j
  set cancel_requested = true
  where j.id = cancel_job.job_id and j.status = 'running';
  if found then
    -- Tell the holder at once; its heartbeat would tell it later anyway.
    perform pg_notify('dbos_job_cancel', cancel_job.job_id::text);
    return 'cancel_requested';
  end if;

  select j.status into current_status
  from dbos.job_queue as j
  where j.id = cancel_job.job_id;
  if found then
    return current_status;
  end if;
  if exists (select from dbos.failed_jobs as d where d.id = cancel_job.job_id) then
    return 'dead';
  end if;
  raise exception using
    errcode = 'no_data_found',
    message = format('job %s not found', cancel_job.job_id);
end;
$$;

comment on function dbos.cancel_job(bigint) is
'Cancels a job. A pending job becomes cancelled and never runs: returns '
'''cancelled''. A running job is marked (its worker learns it from NOTIFY '
'dbos_job_cancel, its heartbeat or report_progress) and ends cancelled: '
'returns ''cancel_requested''. A finished job is left alone: returns its '
'status (''completed'', ''cancelled'', ''dead''). Unknown id: P0002.';

create function dbos.retry_dead_letter_job(id bigint)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  new_id bigint;
begin
  if retry_dead_letter_job.id is null then
    raise exception using
      errcode = 'null_value_not_allowed',
      message = 'retry_dead_letter_job: id must not be null';
  end if;
  with replayed as (
    delete from dbos.failed_jobs as d
    where d.id = retry_dead_letter_job.id
    returning d.job_name, d.payload, d.max_attempts
  )

  insert into dbos.job_queue as j (job_name, payload, max_attempts)
  select replayed.job_name, replayed.payload, replayed.max_attempts
  from replayed
  returning j.id into new_id;

  if new_id is null then
    raise exception using
      errcode = 'no_data_found',
      message = format(
        'dead-letter job %s not found in dbos.failed_jobs',
        retry_dead_letter_job.id);
  end if;
  perform dbos.wake_workers();
  return new_id;
end;
$$;

comment on function dbos.retry_dead_letter_job(bigint) is
'Replays a dead-lettered job: deletes its dbos.failed_jobs row and enqueues '
'a new job with the same job_name, payload and max_attempts (fresh attempt '
'counter, due now), in one transaction. Returns the new id; unknown id: '
'P0002.';

create function dbos.retry_job(job_id bigint)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  current_status text;
begin
  if retry_job.job_id is null then
    raise exception using
      errcode = 'null_value_not_allowed',
      message = 'retry_job: job_id must not be null';
  end if;
  if exists (select from dbos.failed_jobs as d where d.id = retry_job.job_id) then
    return dbos.retry_dead_letter_job(retry_job.job_id);
  end if;

  update dbos.job_queue as j
  set scheduled_for = now()
  where j.id = retry_job.job_id and j.status = 'pending';
  if found then
    perform dbos.wake_workers();
    return retry_job.job_id;
  end if;

  select j.status into current_status
  from dbos.job_queue as j
  where j.id = retry_job.job_id;
  if found then
    raise exception using
      errcode = 'object_not_in_prerequisite_state',
      message = format(
        'job %s is %s: only a pending or dead-lettered job can be retried',
        retry_job.job_id, current_status);
  end if;
  raise exception using
    errcode = 'no_data_found',
    message = format('job %s not found', retry_job.job_id);
end;
$$;

comment on function dbos.retry_job(bigint) is
'Retry now: a dead-lettered job is replayed (returns the new id, as '
'retry_dead_letter_job); a pending job waiting for its retry or its time is '
'made due now (returns its id). Running or finished jobs: 55000; unknown '
'id: P0002.';

create function dbos.prune_jobs(older_than interval, max_rows int default null)
returns int
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  pruned int;
begin
  if prune_jobs.older_than is null or prune_jobs.older_than < interval '0' then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'older_than must be 0 or a positive interval, got %s',
        coalesce(prune_jobs.older_than::text, 'null'));
  end if;
  if prune_jobs.max_rows < 1 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format('max_rows must be at least 1, got %s', prune_jobs.max_rows);
  end if;

  delete from dbos.job_queue as j
  where j.id in (
    select old.id
    from dbos.job_queue as old
    where
      old.status in ('completed', 'cancelled')
      and old.completed_at < now() - prune_jobs.older_than
    order by old.completed_at
    limit prune_jobs.max_rows
  );
  get diagnostics pruned = row_count;
  return pruned;
end;
$$;

comment on function dbos.prune_jobs(interval, int) is
'Deletes completed and cancelled jobs that finished before now() - '
'older_than, oldest first, at most max_rows of them (NULL: all). Returns '
'how many it deleted. Dead letters are kept.';

-- Reading the queue.

create function dbos.get_job(job_id bigint)
returns setof dbos.job_queue
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select j.*
  from dbos.job_queue as j
  where j.id = get_job.job_id;
$$;

comment on function dbos.get_job(bigint) is
'The job with this id: one row, or none (unknown, pruned, or dead-lettered: '
'see dbos.failed_jobs).';

create function dbos.list_jobs(status text default null, max_rows int default 50)
returns setof dbos.job_queue
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if list_jobs.status not in ('pending', 'running', 'completed', 'cancelled') then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'status must be pending, running, completed or cancelled, got %L',
        list_jobs.status);
  end if;
  if list_jobs.max_rows < 1 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format('max_rows must be at least 1, got %s', list_jobs.max_rows);
  end if;

  return query
  select j.*
  from dbos.job_queue as j
  where list_jobs.status is null or j.status = list_jobs.status
  order by j.id desc
  limit coalesce(list_jobs.max_rows, 50);
end;
$$;

comment on function dbos.list_jobs(text, int) is
'The newest max_rows jobs (default 50), of one status when given.';

create function dbos.list_dead_letter_jobs(max_rows int default 50)
returns setof dbos.failed_jobs
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if list_dead_letter_jobs.max_rows < 1 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'max_rows must be at least 1, got %s', list_dead_letter_jobs.max_rows);
  end if;

  return query
  select d.*
  from dbos.failed_jobs as d
  order by d.failed_at desc, d.id desc
  limit coalesce(list_dead_letter_jobs.max_rows, 50);
end;
$$;

comment on function dbos.list_dead_letter_jobs(int) is
'The newest max_rows dead-lettered jobs (default 50), newest first.';

create view dbos.queue_stats as
select
  j.job_name,
  j.status,
  count(*) as jobs
from dbos.job_queue as j
group by j.job_name, j.status
union all
select
  d.job_name,
  'dead' as status,
  count(*) as jobs
from dbos.failed_jobs as d
group by d.job_name;

comment on view dbos.queue_stats is
'Jobs by job_name and status; dead-lettered jobs have status ''dead''.';
