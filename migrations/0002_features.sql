-- 0002: what users of the best queues expect. Priorities, named queues with
-- concurrency limits, unique jobs (dedup keys), periodic jobs (cron),
-- timeouts, results, snooze, retry policies, bulk operations.
--
-- Every existing call keeps working: new parameters come after the old ones,
-- with defaults, and new columns have defaults. Functions whose parameters
-- grew are dropped and created again in this transaction, so no overload
-- makes a call ambiguous; workers of 0001 keep working during the upgrade.
-- Note: the claim index is rebuilt (priority first), which blocks writes to
-- dbos.job_queue while it builds.

alter table dbos.job_queue
add column priority int not null default 0,
add column queue_name text not null default 'default',
add column dedup_key text,
add column timeout_seconds int,
add column result jsonb,
add constraint job_queue_queue_name_check
check (length(queue_name) between 1 and 255),
add constraint job_queue_dedup_key_check
check (length(dedup_key) between 1 and 255),
add constraint job_queue_timeout_seconds_check check (timeout_seconds >= 1);

alter table dbos.failed_jobs
add column priority int not null default 0,
add column queue_name text not null default 'default',
add column dedup_key text,
add column timeout_seconds int;

drop index dbos.job_queue_claim_idx;

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

drop function dbos.enqueue(text, jsonb, timestamptz, int);
drop function dbos.enqueue_many(text[], jsonb[], timestamptz[], int[]);
drop function dbos.claim_job(text, text[], int, int);
drop function dbos.seconds_until_next_job(text[]);
drop function dbos.complete_job(bigint, text, int);
drop function dbos.complete_jobs(bigint[], text, int[]);
drop function dbos.fail_job(bigint, text, int, text, int);
drop function dbos.fail_jobs(bigint[], text[], int, text, int[]);
drop function dbos.retry_delay(int, int);

create or replace function dbos.wake_workers()
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
'NOTIFY channel dbos_job_queue (empty payload): jobs were enqueued or came '
'back. A wake-up hint only; workers also poll, so correctness never depends '
'on it.';

create or replace function dbos.enqueue_many(
  job_names text[],
  payloads jsonb[],
  scheduled_for timestamptz[] default null,
  max_attempts int[] default null,
  priorities int[] default null,
  queue_names text[] default null,
  dedup_keys text[] default null,
  timeout_seconds int[] default null
)
returns setof bigint
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
as $$
declare
  job_count int := cardinality(enqueue_many.job_names);
  bad record;
  item record;
  new_id bigint;
  ids bigint[];
begin
  if enqueue_many.job_names is null or enqueue_many.payloads is null then
    raise exception using
      errcode = 'null_value_not_allowed',
      message = 'enqueue_many: job_names and payloads must not be null';
  end if;
  if cardinality(enqueue_many.payloads) <> job_count
    or cardinality(enqueue_many.scheduled_for) <> job_count
    or cardinality(enqueue_many.max_attempts) <> job_count
    or cardinality(enqueue_many.priorities) <> job_count
    or cardinality(enqueue_many.queue_names) <> job_count
    or cardinality(enqueue_many.dedup_keys) <> job_count
    or cardinality(enqueue_many.timeout_seconds) <> job_count then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'enqueue_many: arrays differ in length (job_names %s, payloads %s, '
        'scheduled_for %s, max_attempts %s, priorities %s, queue_names %s, '
        'dedup_keys %s, timeout_seconds %s)',
        job_count, cardinality(enqueue_many.payloads),
        coalesce(cardinality(enqueue_many.scheduled_for)::text, 'null'),
        coalesce(cardinality(enqueue_many.max_attempts)::text, 'null'),
        coalesce(cardinality(enqueue_many.priorities)::text, 'null'),
        coalesce(cardinality(enqueue_many.queue_names)::text, 'null'),
        coalesce(cardinality(enqueue_many.dedup_keys)::text, 'null'),
        coalesce(cardinality(enqueue_many.timeout_seconds)::text, 'null'));
  end if;
  if job_count = 0 then
    return;
  end if;

  -- One pass finds the first bad job; NULL elements mean "the default".
  select
    u.ordinality,
    u.job_name,
    u.scheduled_for,
    u.max_attempts,
    u.queue_name,
    u.dedup_key,
    u.timeout_seconds
  into bad
  from unnest(
    enqueue_many.job_names,
    enqueue_many.scheduled_for,
    enqueue_many.max_attempts,
    enqueue_many.queue_names,
    enqueue_many.dedup_keys,
    enqueue_many.timeout_seconds
  ) with ordinality as u (
    job_name, scheduled_for, max_attempts, queue_name, dedup_key,
    timeout_seconds, ordinality
  )
  where u.job_name is null
    or length(u.job_name) not between 1 and 255
    or u.max_attempts < 1
    or u.scheduled_for not between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59+00'
    or length(u.queue_name) not between 1 and 255
    or length(u.dedup_key) not between 1 and 255
    or u.timeout_seconds < 1
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
    elsif bad.scheduled_for not between '0001-01-01 00:00:00+00'
      and '9999-12-31 23:59:59+00' then
      raise exception using
        errcode = 'invalid_datetime_format',
        message = format(
          'scheduled_for must be a time from year 1 to 9999, got %s',
          bad.scheduled_for),
        detail = format('job %s of %s', bad.ordinality, job_count);
    elsif length(bad.queue_name) not between 1 and 255 then
      raise exception using
        errcode = 'invalid_parameter_value',
        message = format(
          'queue_name must be 1 to 255 characters, got %s characters: %L',
          length(bad.queue_name), left(bad.queue_name, 80)),
        detail = format('job %s of %s', bad.ordinality, job_count);
    elsif length(bad.dedup_key) not between 1 and 255 then
      raise exception using
        errcode = 'invalid_parameter_value',
        message = format(
          'dedup_key must be 1 to 255 characters, got %s characters: %L',
          length(bad.dedup_key), left(bad.dedup_key, 80)),
        detail = format('job %s of %s', bad.ordinality, job_count);
    else
      raise exception using
        errcode = 'invalid_parameter_value',
        message = format(
          'timeout_seconds must be at least 1, got %s', bad.timeout_seconds),
        detail = format('job %s of %s', bad.ordinality, job_count);
    end if;
  end if;

  if enqueue_many.dedup_keys is null
    or not exists (
      select from unnest(enqueue_many.dedup_keys) as k (dedup_key)
      where k.dedup_key is not null
    ) then
    -- One statement; rows are inserted in the arrays' order, so the ids
    -- come back in that order too.
    return query
    insert into dbos.job_queue as j (
      job_name, payload, scheduled_for, max_attempts, priority, queue_name,
      timeout_seconds
    )
    select
      u.job_name,
      -- An SQL NULL payload is stored as the JSON value null.
      coalesce(u.payload, 'null'::jsonb),
      coalesce(u.scheduled_for, now()),
      coalesce(u.max_attempts, 3),
      coalesce(u.priority, 0),
      coalesce(u.queue_name, 'default'),
      u.timeout_seconds
    from unnest(
      enqueue_many.job_names,
      enqueue_many.payloads,
      enqueue_many.scheduled_for,
      enqueue_many.max_attempts,
      enqueue_many.priorities,
      enqueue_many.queue_names,
      enqueue_many.timeout_seconds
    ) as u (
      job_name, payload, scheduled_for, max_attempts, priority, queue_name,
      timeout_seconds
    )
    returning j.id;
  else
    -- With dedup keys, job by job: a key held by a pending or running job
    -- returns that job's id. The unique index settles concurrent enqueues
    -- of one key; when its holder finishes between our insert and our
    -- look-up, we simply insert again. Keys are taken in sorted order, so
    -- two calls sharing keys wait for each other instead of deadlocking;
    -- the ids still come back in the order given.
    ids := array_fill(null::bigint, array[job_count]);
    for item in
      select
        u.ordinality,
        coalesce(u.payload, 'null'::jsonb) as payload,
        coalesce(u.scheduled_for, now()) as scheduled_for,
        coalesce(u.max_attempts, 3) as max_attempts,
        coalesce(u.priority, 0) as priority,
        coalesce(u.queue_name, 'default') as queue_name,
        u.job_name,
        u.dedup_key,
        u.timeout_seconds
      from unnest(
        enqueue_many.job_names,
        enqueue_many.payloads,
        enqueue_many.scheduled_for,
        enqueue_many.max_attempts,
        enqueue_many.priorities,
        enqueue_many.queue_names,
        enqueue_many.dedup_keys,
        enqueue_many.timeout_seconds
      ) with ordinality as u (
        job_name, payload, scheduled_for, max_attempts, priority, queue_name,
        dedup_key, timeout_seconds, ordinality
      )
      order by u.dedup_key nulls last, u.ordinality
    loop
      loop
        insert into dbos.job_queue as j (
          job_name, payload, scheduled_for, max_attempts, priority,
          queue_name, dedup_key, timeout_seconds
        )
        values (
          item.job_name, item.payload, item.scheduled_for, item.max_attempts,
          item.priority, item.queue_name, item.dedup_key, item.timeout_seconds
        )
        on conflict (dedup_key)
        where dedup_key is not null and status in ('pending', 'running')
        do nothing
        returning j.id into new_id;
        exit when new_id is not null;
        select j.id into new_id
        from dbos.job_queue as j
        where
          j.dedup_key = item.dedup_key
          and j.status in ('pending', 'running');
        exit when new_id is not null;
      end loop;
      ids[item.ordinality] := new_id;
    end loop;
    return query select unnest(ids);
  end if;

  -- Even for a job due later: an idle worker sleeps until the next job it
  -- knows of, and re-reads that time when woken.
  perform dbos.wake_workers();
end;
$$;

comment on function dbos.enqueue_many(
  text[], jsonb[], timestamptz[], int[], int[], text[], text[], int[]
) is
'Enqueues many jobs in one call and returns their ids in the order given. '
'job_names and payloads have one element per job; each other array is NULL '
'(all defaults: now, 3 attempts, priority 0, queue ''default'', no dedup key, '
'no timeout) or has one element per job, a NULL element meaning the '
'default. A job whose dedup_key is held by a pending or running job is not '
'inserted: that job''s id is returned. Bad input raises (22004, 22023, '
'22007) naming the job; nothing is inserted. Wakes the workers (one '
'NOTIFY per transaction).';

create or replace function dbos.enqueue(
  job_name text,
  payload jsonb default '{}',
  scheduled_for timestamptz default now(),
  max_attempts int default 3,
  priority int default 0,
  queue_name text default 'default',
  dedup_key text default null,
  timeout_seconds int default null
)
returns bigint
language sql
set search_path = pg_catalog, pg_temp
security definer
as $$
  select dbos.enqueue_many(
    array[enqueue.job_name],
    array[enqueue.payload],
    array[enqueue.scheduled_for],
    array[enqueue.max_attempts],
    array[enqueue.priority],
    array[enqueue.queue_name],
    array[enqueue.dedup_key],
    array[enqueue.timeout_seconds]
  );
$$;

comment on function dbos.enqueue(
  text, jsonb, timestamptz, int, int, text, text, int
) is
'Enqueues one job and returns its id. Runs at scheduled_for (default now), '
'at most max_attempts times (default 3), higher priority first (default 0), '
'in queue queue_name (default ''default''), failing an attempt that runs '
'longer than timeout_seconds (default none). While a pending or running job '
'holds dedup_key, returns that job''s id instead. NULL arguments take the '
'defaults, except payload: an SQL NULL is stored as the JSON value null. In '
'the caller''s transaction: it commits or rolls back with the caller''s own '
'writes.';

create or replace function dbos.claim_batch(
  worker_id text,
  job_names text[],
  queue_names text[],
  excluded_queues text[],
  batch_size int,
  lease_seconds int
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
      and (claim_batch.job_names is null or j.job_name = any(claim_batch.job_names))
      and (
        claim_batch.queue_names is null
        or j.queue_name = any(claim_batch.queue_names)
      )
      and j.queue_name <> all(claim_batch.excluded_queues)
    order by j.priority desc, j.scheduled_for asc, j.id asc
    limit claim_batch.batch_size
    for update skip locked
  )

  update dbos.job_queue as j
  set
    status = 'running',
    attempt = j.attempt + 1,
    started_at = now(),
    scheduled_for = now(),
    locked_by = claim_batch.worker_id,
    -- A job with a timeout is never leased past it.
    lease_expires_at = now() + make_interval(
      secs => least(claim_batch.lease_seconds, j.timeout_seconds)
    ),
    lease_token = j.lease_token + 1,
    -- Progress belongs to an attempt.
    progress = null,
    progress_message = null
  from due
  where j.id = due.id
  returning j.*;
end;
$$;

comment on function dbos.claim_batch(text, text[], text[], text[], int, int) is
'claim_job''s one statement, without the queue limits: claims up to '
'batch_size due pending jobs of job_names and queue_names (NULL: any), not '
'in excluded_queues, in claim order. Call claim_job instead.';

create or replace function dbos.claim_job(
  worker_id text,
  job_names text[] default null,
  batch_size int default 1,
  lease_seconds int default 60,
  queue_names text[] default null
)
returns setof dbos.job_queue
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
as $$
declare
  limited text[];
  limited_queue text;
  queue_limit int;
  running int;
  claimed int;
  wanted int := claim_job.batch_size;
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

  select coalesce(array_agg(q.queue_name order by q.queue_name), '{}')
  into limited
  from dbos.queues as q
  where
    q.concurrency_limit is not null
    and (claim_job.queue_names is null or q.queue_name = any(claim_job.queue_names));

  -- Unlimited queues: one statement, whatever the number of workers.
  return query
  select *
  from dbos.claim_batch(
    claim_job.worker_id, claim_job.job_names, claim_job.queue_names,
    limited, wanted, claim_job.lease_seconds
  );
  get diagnostics claimed = row_count;
  wanted := wanted - claimed;

  -- Limited queues, in name order (so claimers never deadlock): the queue's
  -- row is locked, so claimers of one limited queue take turns, and each
  -- counts the running jobs after the previous one committed.
  foreach limited_queue in array limited loop
    exit when wanted = 0;
    select q.concurrency_limit into queue_limit
    from dbos.queues as q
    where q.queue_name = limited_queue
    for update;
    -- Running jobs are exactly those with a lease (job_queue_lease_check):
    -- this reads the lease index, not the table.
    select count(*) into running
    from dbos.job_queue as j
    where j.lease_expires_at is not null and j.queue_name = limited_queue;
    if queue_limit - running > 0 then
      return query
      select *
      from dbos.claim_batch(
        claim_job.worker_id, claim_job.job_names, array[limited_queue],
        '{}', least(wanted, queue_limit - running), claim_job.lease_seconds
      );
      get diagnostics claimed = row_count;
      wanted := wanted - claimed;
    end if;
  end loop;
end;
$$;

comment on function dbos.claim_job(text, text[], int, int, text[]) is
'Claims up to batch_size due pending jobs (only job_names and queue_names '
'when given), highest priority first, then oldest scheduled_for, then id, '
'with FOR UPDATE SKIP LOCKED: each is running, attempt + 1, held by '
'worker_id under a lease of lease_seconds (never past its timeout) and a new '
'lease_token. Concurrent callers never get the same job, and a queue with a '
'concurrency limit (dbos.set_queue_limit) never has more running jobs than '
'its limit. Limited queues are claimed after the others.';

create or replace function dbos.seconds_until_next_job(
  job_names text[] default null,
  queue_names text[] default null
)
returns double precision
language sql
stable
set search_path = pg_catalog, pg_temp
security definer
as $$
  -- Queues at their limit (or paused) cannot be claimed from: their jobs do
  -- not count, or an idle worker would wake for them again and again.
  with full_queues as (
    select q.queue_name
    from dbos.queues as q
    where q.concurrency_limit <= (
      select count(*)
      from dbos.job_queue as r
      where r.lease_expires_at is not null and r.queue_name = q.queue_name
    )
  )

  select extract(epoch from min(j.scheduled_for) - now())::float8
  from dbos.job_queue as j
  where
    j.status = 'pending'
    and (
      seconds_until_next_job.job_names is null
      or j.job_name = any(seconds_until_next_job.job_names)
    )
    and (
      seconds_until_next_job.queue_names is null
      or j.queue_name = any(seconds_until_next_job.queue_names)
    )
    and j.queue_name not in (select f.queue_name from full_queues as f);
$$;

comment on function dbos.seconds_until_next_job(text[], text[]) is
'Seconds until the earliest pending job (of job_names and queue_names when '
'given, and not in a queue at its limit) is due, by the database clock: 0 '
'or less when one is due now, NULL when none is pending. An idle worker '
'sleeps that long (at most its poll interval), so scheduled jobs and '
'retries start on time without a notification.';

create or replace function dbos.set_queue_limit(queue_name text, concurrency_limit int)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
as $$
begin
  if coalesce(length(set_queue_limit.queue_name), 0) not between 1 and 255 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'queue_name must be 1 to 255 characters, got %L',
        set_queue_limit.queue_name);
  end if;
  if set_queue_limit.concurrency_limit < 0 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'concurrency_limit must be 0 or more (or NULL for none), got %s',
        set_queue_limit.concurrency_limit);
  end if;
  insert into dbos.queues as q (queue_name, concurrency_limit)
  values (set_queue_limit.queue_name, set_queue_limit.concurrency_limit)
  on conflict on constraint queues_pkey do update
    set
      concurrency_limit = excluded.concurrency_limit,
      updated_at = now();
  perform dbos.wake_workers();
end;
$$;

comment on function dbos.set_queue_limit(text, int) is
'Sets how many jobs of queue queue_name may run at once across all workers: '
'1 makes a serial queue, 0 pauses it, NULL removes the limit. Enforced by '
'claim_job.';

create or replace function dbos.retry_delay(
  attempt int,
  retry_delay_ms int,
  max_retry_delay_ms int default 86400000,
  jitter double precision default 0
)
returns interval
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
  -- Computed in double precision and capped, so attempt 100 (or 2 billion)
  -- never overflows. Jitter spreads the retries of jobs that failed together.
  -- NULL arguments take the defaults.
  select make_interval(
    secs => least(
      coalesce(retry_delay.retry_delay_ms, 1000)::float8
      * 2::float8 ^ least(greatest(coalesce(retry_delay.attempt, 1) - 1, 0), 64)
      * (1 + coalesce(retry_delay.jitter, 0) * (2 * random() - 1)),
      coalesce(retry_delay.max_retry_delay_ms, 86400000)::float8
    ) / 1000
  );
$$;

comment on function dbos.retry_delay(int, int, int, double precision) is
'Backoff before the next try after attempt number attempt failed: '
'retry_delay_ms * 2^(attempt - 1) milliseconds (1 s, 2 s, 4 s, ... with the '
'default 1000), times a random factor in [1 - jitter, 1 + jitter], capped at '
'max_retry_delay_ms (default 24 hours).';

create or replace function dbos.frees_limited_queue(job_ids bigint[])
returns boolean
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  -- First the cheap question (usually no queue has a limit), then the jobs'.
  select case
    when not exists (
      select from dbos.queues as q where q.concurrency_limit is not null
    ) then false
    else exists (
      select
      from dbos.job_queue as j
      inner join dbos.queues as q on j.queue_name = q.queue_name
      where
        j.id = any(frees_limited_queue.job_ids)
        and q.concurrency_limit is not null
    )
  end;
$$;

comment on function dbos.frees_limited_queue(bigint[]) is
'Whether any of these jobs belongs to a queue with a concurrency limit: '
'finishing it frees a slot, so the workers are woken (idle workers do not '
'poll a full queue).';

create or replace function dbos.complete_jobs(
  job_ids bigint[],
  worker_id text default null,
  lease_tokens int[] default null,
  results jsonb[] default null
)
returns setof bigint
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
-- Rows are looked up by id: never a scan of the table, whatever the statistics.
set enable_seqscan = off
as $$
declare
  frees_slot boolean := dbos.frees_limited_queue(complete_jobs.job_ids);
begin
  if cardinality(complete_jobs.results) <> cardinality(complete_jobs.job_ids) then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'complete_jobs: %s job_ids but %s results',
        cardinality(complete_jobs.job_ids), cardinality(complete_jobs.results));
  end if;
  return query
  update dbos.job_queue as j
  set
    status = 'completed',
    completed_at = now(),
    lease_expires_at = null,
    result = f.result
  from unnest(
    complete_jobs.job_ids, complete_jobs.lease_tokens, complete_jobs.results
  ) as f (job_id, lease_token, result)
  where
    j.id = f.job_id
    and j.status = 'running'
    and (complete_jobs.worker_id is null or j.locked_by = complete_jobs.worker_id)
    and (f.lease_token is null or j.lease_token = f.lease_token)
  returning j.id;
  if frees_slot then
    perform dbos.wake_workers();
  end if;
end;
$$;

comment on function dbos.complete_jobs(bigint[], text, int[], jsonb[]) is
'Marks running jobs completed in one statement, storing results[i] (the '
'handler''s return value, NULL for none) as the result of job_ids[i], and '
'returns the ids it completed. A job is skipped (not returned) unless it is '
'running, held by worker_id when given, and under the lease_tokens element '
'when given: a stale worker cannot complete a later claim.';

create or replace function dbos.complete_job(
  job_id bigint,
  worker_id text default null,
  lease_token int default null,
  result jsonb default null
)
returns boolean
language sql
set search_path = pg_catalog, pg_temp
security definer
as $$
  select exists (
    select
    from dbos.complete_jobs(
      array[complete_job.job_id],
      complete_job.worker_id,
      array[complete_job.lease_token],
      array[complete_job.result]
    )
  );
$$;

comment on function dbos.complete_job(bigint, text, int, jsonb) is
'Marks one running job completed, with result as its result. True only when '
'it moved the job (running, held by worker_id and under lease_token when '
'given); otherwise false and nothing changes.';

create or replace function dbos.fail_jobs(
  job_ids bigint[],
  errors text[],
  retry_delay_ms int default 1000,
  worker_id text default null,
  lease_tokens int[] default null,
  max_retry_delay_ms int default 86400000,
  jitter double precision default 0,
  permanent boolean default false
)
returns table (job_id bigint, outcome text)
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
-- Rows are looked up by id: never a scan of the table, whatever the statistics.
set enable_seqscan = off
as $$
declare
  frees_slot boolean := dbos.frees_limited_queue(fail_jobs.job_ids);
begin
  if fail_jobs.retry_delay_ms < 0 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'retry_delay_ms must be 0 or more, got %s', fail_jobs.retry_delay_ms);
  end if;
  if fail_jobs.max_retry_delay_ms < 0 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'max_retry_delay_ms must be 0 or more, got %s',
        fail_jobs.max_retry_delay_ms);
  end if;
  if fail_jobs.jitter not between 0 and 1 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format('jitter must be from 0 to 1, got %s', fail_jobs.jitter);
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
      and (f.attempt >= f.max_attempts or coalesce(fail_jobs.permanent, false))
      and not f.cancel_requested
    returning
      j.id, j.job_name, j.payload, f.error, j.attempt, j.max_attempts,
      j.created_at, j.priority, j.queue_name, j.dedup_key, j.timeout_seconds
  ),

  buried as (
    insert into dbos.failed_jobs as d (
      id, job_name, payload, error, attempt, max_attempts, original_created_at,
      priority, queue_name, dedup_key, timeout_seconds
    )
    select
      dead.id,
      dead.job_name,
      dead.payload,
      dead.error,
      dead.attempt,
      dead.max_attempts,
      dead.created_at,
      dead.priority,
      dead.queue_name,
      dead.dedup_key,
      dead.timeout_seconds
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
        else now() + dbos.retry_delay(
          f.attempt,
          coalesce(fail_jobs.retry_delay_ms, 1000),
          coalesce(fail_jobs.max_retry_delay_ms, 86400000),
          coalesce(fail_jobs.jitter, 0)
        )
      end,
      completed_at = case when f.cancel_requested then now() end,
      locked_by = case when f.cancel_requested then j.locked_by end,
      lease_expires_at = null
    from failing as f
    where
      j.id = f.id
      and (
        (f.attempt < f.max_attempts and not coalesce(fail_jobs.permanent, false))
        or f.cancel_requested
      )
    returning j.id, j.status
  )

  select buried.id, 'dead'::text from buried
  union all
  select retried.id, retried.status from retried;
  if frees_slot then
    perform dbos.wake_workers();
  end if;
end;
$$;

comment on function dbos.fail_jobs(
  bigint[], text[], int, text, int[], int, double precision, boolean
) is
'Fails the running attempts of many jobs in one statement (errors[i] for '
'job_ids[i]) and returns each changed job with its outcome: pending (retry '
'after dbos.retry_delay with retry_delay_ms, max_retry_delay_ms and '
'jitter), dead (attempts used up, or permanent: moved to dbos.failed_jobs) '
'or cancelled (its cancel was requested). Jobs not running under worker_id '
'/ lease_tokens are skipped.';

create or replace function dbos.fail_job(
  job_id bigint,
  error text,
  retry_delay_ms int default 1000,
  worker_id text default null,
  lease_token int default null,
  max_retry_delay_ms int default 86400000,
  jitter double precision default 0,
  permanent boolean default false
)
returns text
language sql
set search_path = pg_catalog, pg_temp
security definer
as $$
  select f.outcome
  from dbos.fail_jobs(
    array[fail_job.job_id],
    array[fail_job.error],
    fail_job.retry_delay_ms,
    fail_job.worker_id,
    array[fail_job.lease_token],
    fail_job.max_retry_delay_ms,
    fail_job.jitter,
    fail_job.permanent
  ) as f;
$$;

comment on function dbos.fail_job(
  bigint, text, int, text, int, int, double precision, boolean
) is
'Fails the running attempt of a job with error. Returns ''pending'' (retried '
'at now() + retry_delay_ms * 2^(attempt - 1) ms, capped at '
'max_retry_delay_ms, default 24 h, with +/- jitter), ''dead'' (attempt >= '
'max_attempts, or permanent: moved to dbos.failed_jobs in this '
'transaction), ''cancelled'' (its cancel was requested), or NULL when the '
'job is not running under worker_id / lease_token (nothing changes).';

create or replace function dbos.snooze_jobs(
  job_ids bigint[],
  seconds double precision[],
  worker_id text default null,
  lease_tokens int[] default null
)
returns setof bigint
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
-- Rows are looked up by id: never a scan of the table, whatever the statistics.
set enable_seqscan = off
as $$
declare
  bad double precision;
begin
  if cardinality(snooze_jobs.seconds) <> cardinality(snooze_jobs.job_ids) then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'snooze_jobs: %s job_ids but %s seconds',
        cardinality(snooze_jobs.job_ids), cardinality(snooze_jobs.seconds));
  end if;
  select s.seconds into bad
  from unnest(snooze_jobs.seconds) as s (seconds)
  where
    s.seconds is null
    or s.seconds < 0
    or s.seconds in ('NaN'::float8, 'Infinity'::float8)
    -- A snooze ends before year 10000, like every scheduled_for.
    or s.seconds > 100000000000
  limit 1;
  if found then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'snooze seconds must be a finite number of seconds, 0 or more, got %s',
        coalesce(bad::text, 'null'));
  end if;

  return query
  update dbos.job_queue as j
  set
    status = case when j.cancel_requested then 'cancelled' else 'pending' end,
    -- A snooze is not a failure: the attempt is given back.
    attempt = case when j.cancel_requested then j.attempt else j.attempt - 1 end,
    scheduled_for = now() + make_interval(secs => f.seconds),
    completed_at = case when j.cancel_requested then now() end,
    locked_by = case when j.cancel_requested then j.locked_by end,
    lease_expires_at = null
  from unnest(snooze_jobs.job_ids, snooze_jobs.seconds, snooze_jobs.lease_tokens)
    as f (job_id, seconds, lease_token)
  where
    j.id = f.job_id
    and j.status = 'running'
    and (snooze_jobs.worker_id is null or j.locked_by = snooze_jobs.worker_id)
    and (f.lease_token is null or j.lease_token = f.lease_token)
  returning j.id;
end;
$$;

comment on function dbos.snooze_jobs(bigint[], double precision[], text, int[])
is
'Puts running jobs back to pending, to run again seconds[i] from now, '
'without using up an attempt (their handlers asked to run later); a job '
'whose cancel was requested ends cancelled. Returns the ids it changed; '
'jobs not running under worker_id / lease_tokens are skipped.';

create or replace function dbos.snooze_job(
  job_id bigint,
  seconds double precision,
  worker_id text default null,
  lease_token int default null
)
returns boolean
language sql
set search_path = pg_catalog, pg_temp
security definer
as $$
  select exists (
    select
    from dbos.snooze_jobs(
      array[snooze_job.job_id],
      array[snooze_job.seconds],
      snooze_job.worker_id,
      array[snooze_job.lease_token]
    )
  );
$$;

comment on function dbos.snooze_job(bigint, double precision, text, int) is
'Puts one running job back to pending, to run again seconds from now, '
'without using up an attempt. True when it changed the job.';

create or replace function dbos.heartbeat(
  worker_id text,
  job_ids bigint[],
  lease_seconds int default 60,
  lease_tokens int[] default null
)
returns table (job_id bigint, state text)
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
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
    -- Extended, never shortened, and never past the job's timeout.
    set lease_expires_at = least(
      greatest(
        j.lease_expires_at, now() + make_interval(secs => heartbeat.lease_seconds)
      ),
      j.started_at + make_interval(secs => j.timeout_seconds)
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
'Extends to now() + lease_seconds (never past a job''s timeout) the leases '
'that worker_id still holds '
'(under lease_tokens when given) and returns only the exceptions: '
'(job_id, ''cancel_requested'') for a job whose cancel was requested, '
'(job_id, ''lost'') for one it no longer holds. No rows: all is well.';

create or replace function dbos.report_progress(
  job_id bigint,
  progress numeric,
  message text default null,
  lease_seconds int default 60,
  lease_token int default null
)
returns text
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
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
    lease_expires_at = least(
      greatest(
        j.lease_expires_at,
        now() + make_interval(secs => report_progress.lease_seconds)
      ),
      j.started_at + make_interval(secs => j.timeout_seconds)
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

create or replace function dbos.rescue_expired_jobs(retry_delay_ms int default 1000)
returns int
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
as $$
declare
  expired_ids bigint[];
  expired_tokens int[];
  expired_errors text[];
  rescued int;
begin
  if rescue_expired_jobs.retry_delay_ms < 0 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'retry_delay_ms must be 0 or more, got %s',
        rescue_expired_jobs.retry_delay_ms);
  end if;

  -- The expired claims are locked with SKIP LOCKED and re-checked when
  -- locked, so a completion or cancel that lands meanwhile is either waited
  -- out (its row is skipped) or seen (the row no longer matches). Then they
  -- fail like any attempt, through fail_jobs, fenced by the tokens read
  -- here: a finished job is never overwritten.
  select
    array_agg(e.id),
    array_agg(e.lease_token),
    array_agg(
      case
        when e.started_at + make_interval(secs => e.timeout_seconds) <= now()
          then format(
            'timed out: still running after its timeout of %s s '
            '(worker %s, attempt %s of %s)',
            e.timeout_seconds, e.locked_by, e.attempt, e.max_attempts
          )
        else format(
          'lease expired at %s: worker %s stopped heartbeating '
          '(attempt %s of %s)',
          e.lease_expires_at, e.locked_by, e.attempt, e.max_attempts
        )
      end
    )
  into expired_ids, expired_tokens, expired_errors
  from (
    select
      j.id,
      j.lease_token,
      j.started_at,
      j.timeout_seconds,
      j.locked_by,
      j.attempt,
      j.max_attempts,
      j.lease_expires_at
    from dbos.job_queue as j
    where j.status = 'running' and j.lease_expires_at < now()
    order by j.lease_expires_at
    limit 10000
    for update skip locked
  ) as e;

  if expired_ids is null then
    return 0;
  end if;
  select count(*) into rescued
  from dbos.fail_jobs(
    expired_ids,
    expired_errors,
    coalesce(rescue_expired_jobs.retry_delay_ms, 1000),
    null,
    expired_tokens
  );
  return rescued;
end;
$$;

comment on function dbos.rescue_expired_jobs(int) is
'Running jobs whose lease expired count as a failed attempt (error says the '
'lease expired, or that the job ran past its timeout_seconds): back to '
'pending after the backoff of retry_delay_ms, or to '
'dbos.failed_jobs after max_attempts; a job whose cancel was requested ends '
'cancelled. Returns how many jobs it rescued (at most 10000 a call).';

create or replace function dbos.retry_dead_letter_job(id bigint)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
as $$
declare
  dead dbos.failed_jobs;
begin
  if retry_dead_letter_job.id is null then
    raise exception using
      errcode = 'null_value_not_allowed',
      message = 'retry_dead_letter_job: id must not be null';
  end if;
  delete from dbos.failed_jobs as d
  where d.id = retry_dead_letter_job.id
  returning d.* into dead;
  if not found then
    raise exception using
      errcode = 'no_data_found',
      message = format(
        'dead-letter job %s not found in dbos.failed_jobs',
        retry_dead_letter_job.id);
  end if;
  -- Through enqueue: validation, the dedup key and the wake-up included.
  return dbos.enqueue(
    dead.job_name, dead.payload, now(), dead.max_attempts, dead.priority,
    dead.queue_name, dead.dedup_key, dead.timeout_seconds
  );
end;
$$;

comment on function dbos.retry_dead_letter_job(bigint) is
'Replays a dead-lettered job: deletes its dbos.failed_jobs row and enqueues '
'a new job with the same job_name, payload, max_attempts, priority, queue, '
'dedup key and timeout (fresh attempt counter, due now), in one '
'transaction. Returns the new id; unknown id: P0002.';

create or replace function dbos.retry_dead_letter_jobs(job_name text)
returns setof bigint
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
as $$
declare
  dead_id bigint;
begin
  -- SKIP LOCKED: two operators replaying at once never replay a job twice.
  for dead_id in
    select d.id
    from dbos.failed_jobs as d
    where d.job_name = retry_dead_letter_jobs.job_name
    order by d.failed_at, d.id
    for update skip locked
  loop
    return next dbos.retry_dead_letter_job(dead_id);
  end loop;
end;
$$;

comment on function dbos.retry_dead_letter_jobs(text) is
'Replays every dead-lettered job of job_name (oldest first) as '
'retry_dead_letter_job does; returns the new ids.';

create or replace function dbos.cancel_pending_jobs(job_name text)
returns int
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
as $$
declare
  cancelled int;
begin
  update dbos.job_queue as j
  set status = 'cancelled', completed_at = now()
  where j.job_name = cancel_pending_jobs.job_name and j.status = 'pending';
  get diagnostics cancelled = row_count;
  return cancelled;
end;
$$;

comment on function dbos.cancel_pending_jobs(text) is
'Cancels every pending job of job_name (running ones are left alone: use '
'cancel_job). Returns how many it cancelled.';

create or replace function dbos.cron_field(
  field text,
  low int,
  high int,
  field_name text,
  names text[] default null
)
returns int[]
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  part text;
  parts text[];
  step int;
  first_value int;
  last_value int;
  result int[] := '{}';
  spec text := lower(cron_field.field);
begin
  -- Names (jan..dec, sun..sat) become their numbers; names[1] is `low`.
  if cron_field.names is not null then
    for i in 1..cardinality(cron_field.names) loop
      spec := replace(spec, cron_field.names[i], (cron_field.low + i - 1)::text);
    end loop;
  end if;
  foreach part in array string_to_array(spec, ',') loop
    parts := regexp_match(part, '^(\*|\d{1,2}(?:-\d{1,2})?)(?:/(\d{1,2}))?$');
    if parts is null then
      raise exception using
        errcode = 'invalid_parameter_value',
        message = format(
          'invalid cron %s field %L', cron_field.field_name, cron_field.field);
    end if;
    step := coalesce(parts[2]::int, 1);
    if parts[1] = '*' then
      first_value := cron_field.low;
      last_value := cron_field.high;
    elsif position('-' in parts[1]) > 0 then
      first_value := split_part(parts[1], '-', 1)::int;
      last_value := split_part(parts[1], '-', 2)::int;
    else
      first_value := parts[1]::int;
      -- "5/15" means from 5 to the end, every 15.
      last_value := case when parts[2] is null then first_value else cron_field.high end;
    end if;
    if first_value < cron_field.low or last_value > cron_field.high
      or first_value > last_value or step < 1 then
      raise exception using
        errcode = 'invalid_parameter_value',
        message = format(
          'cron %s field %L is out of range %s-%s',
          cron_field.field_name, cron_field.field, cron_field.low, cron_field.high);
    end if;
    result := result || array(
      select generate_series(first_value, last_value, step)
    );
  end loop;
  return array(select distinct v.value from unnest(result) as v (value) order by 1);
end;
$$;

comment on function dbos.cron_field(text, int, int, text, text[]) is
'One field of a cron expression (*, n, a-b, */s, a-b/s, lists, names) as '
'the sorted values it allows between low and high. Used by cron_next.';

create or replace function dbos.cron_next(
  cron text,
  after timestamptz,
  timezone text default 'UTC'
)
returns timestamptz
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  expression text := lower(trim(cron_next.cron));
  fields text[];
  minutes int[];
  hours int[];
  days int[];
  months int[];
  weekdays int[];
  any_day boolean;
  any_weekday boolean;
  day_matches boolean;
  local_time timestamp;
  give_up timestamp;
begin
  expression := case expression
    when '@yearly' then '0 0 1 1 *'
    when '@annually' then '0 0 1 1 *'
    when '@monthly' then '0 0 1 * *'
    when '@weekly' then '0 0 * * 0'
    when '@daily' then '0 0 * * *'
    when '@midnight' then '0 0 * * *'
    when '@hourly' then '0 * * * *'
    else expression
  end;
  fields := regexp_split_to_array(expression, '\s+');
  if cardinality(fields) <> 5 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'cron expression %L must have 5 fields (minute hour day month weekday) '
        'or be a macro such as @hourly',
        cron_next.cron);
  end if;
  minutes := dbos.cron_field(fields[1], 0, 59, 'minute');
  hours := dbos.cron_field(fields[2], 0, 23, 'hour');
  days := dbos.cron_field(fields[3], 1, 31, 'day-of-month');
  months := dbos.cron_field(
    fields[4], 1, 12, 'month',
    array['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct',
      'nov', 'dec']
  );
  -- 0 and 7 are both Sunday.
  weekdays := array(
    select distinct d.value % 7
    from unnest(dbos.cron_field(
      fields[5], 0, 7, 'day-of-week',
      array['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']
    )) as d (value)
  );
  -- As in cron: when both day fields are restricted (neither starts with
  -- '*'), either may match; otherwise both must.
  any_day := fields[3] like '*%';
  any_weekday := fields[5] like '*%';

  local_time := date_trunc('minute', cron_next.after at time zone cron_next.timezone)
    + interval '1 minute';
  give_up := local_time + interval '5 years';
  while local_time < give_up loop
    if not extract(month from local_time)::int = any(months) then
      local_time := date_trunc('month', local_time) + interval '1 month';
      continue;
    end if;
    day_matches := case
      when any_day or any_weekday
        then extract(day from local_time)::int = any(days)
        and extract(dow from local_time)::int = any(weekdays)
      else extract(day from local_time)::int = any(days)
        or extract(dow from local_time)::int = any(weekdays)
    end;
    if not day_matches then
      local_time := date_trunc('day', local_time) + interval '1 day';
      continue;
    end if;
    if not extract(hour from local_time)::int = any(hours) then
      local_time := date_trunc('hour', local_time) + interval '1 hour';
      continue;
    end if;
    if not extract(minute from local_time)::int = any(minutes) then
      local_time := local_time + interval '1 minute';
      continue;
    end if;
    return local_time at time zone cron_next.timezone;
  end loop;
  raise exception using
    errcode = 'invalid_parameter_value',
    message = format('cron expression %L never matches', cron_next.cron);
end;
$$;

comment on function dbos.cron_next(text, timestamptz, text) is
'The first minute after `after` that the cron expression (minute hour '
'day-of-month month day-of-week, or @hourly, @daily, @weekly, @monthly, '
'@yearly) matches, read in timezone (default UTC). Bad expressions raise '
'22023 naming the field.';

create or replace function dbos.schedule(
  schedule_name text,
  cron text,
  job_name text,
  payload jsonb default '{}',
  timezone text default 'UTC',
  queue_name text default 'default',
  priority int default 0,
  max_attempts int default 3
)
returns timestamptz
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
as $$
declare
  next_run timestamptz;
begin
  if coalesce(length(schedule.schedule_name), 0) not between 1 and 255 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'schedule_name must be 1 to 255 characters, got %L', schedule.schedule_name);
  end if;
  if coalesce(length(schedule.job_name), 0) not between 1 and 255 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'job_name must be 1 to 255 characters, got %L', schedule.job_name);
  end if;
  if coalesce(length(coalesce(schedule.queue_name, 'default')), 0) not between 1 and 255 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'queue_name must be 1 to 255 characters, got %L', schedule.queue_name);
  end if;
  if schedule.max_attempts < 1 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'max_attempts must be at least 1, got %s', schedule.max_attempts);
  end if;
  -- Validates the expression and the time zone, raising on bad ones.
  next_run := dbos.cron_next(schedule.cron, now(), coalesce(schedule.timezone, 'UTC'));

  -- Re-declaring an unchanged schedule (every worker does, at start) keeps
  -- its next tick; a changed expression starts from now.
  insert into dbos.schedules as s (
    schedule_name, cron, timezone, job_name, payload, queue_name, priority,
    max_attempts, next_run_at
  )
  values (
    schedule.schedule_name, schedule.cron, coalesce(schedule.timezone, 'UTC'),
    schedule.job_name, coalesce(schedule.payload, '{}'),
    coalesce(schedule.queue_name, 'default'), coalesce(schedule.priority, 0),
    coalesce(schedule.max_attempts, 3), next_run
  )
  on conflict on constraint schedules_pkey do update
    set
      cron = excluded.cron,
      timezone = excluded.timezone,
      job_name = excluded.job_name,
      payload = excluded.payload,
      queue_name = excluded.queue_name,
      priority = excluded.priority,
      max_attempts = excluded.max_attempts,
      next_run_at = case
        when s.cron = excluded.cron and s.timezone = excluded.timezone
          then s.next_run_at
        else excluded.next_run_at
      end
  returning s.next_run_at into next_run;
  return next_run;
end;
$$;

comment on function dbos.schedule(
  text, text, text, jsonb, text, text, int, int
) is
'Creates or updates the periodic job schedule_name: a job_name job with '
'payload, enqueued at every tick of cron (in timezone). Returns the next '
'tick. Declaring an unchanged schedule again keeps its next tick.';

create or replace function dbos.unschedule(schedule_name text)
returns boolean
language sql
set search_path = pg_catalog, pg_temp
security definer
as $$
  with removed as (
    delete from dbos.schedules as s
    where s.schedule_name = unschedule.schedule_name
    returning 1
  )

  select exists (select from removed);
$$;

comment on function dbos.unschedule(text) is
'Removes a periodic job; true when it existed. Jobs already enqueued stay.';

create or replace function dbos.enqueue_due_schedules()
returns int
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
as $$
declare
  due record;
  enqueued int := 0;
begin
  -- SKIP LOCKED and the advance of next_run_at in this transaction: however
  -- many workers call this at once, each tick is enqueued once. After
  -- downtime, the missed ticks of a schedule run once, then it resumes.
  for due in
    select s.*
    from dbos.schedules as s
    where s.next_run_at <= now()
    order by s.next_run_at
    for update skip locked
  loop
    perform dbos.enqueue(
      due.job_name, due.payload, due.next_run_at, due.max_attempts,
      due.priority, due.queue_name
    );
    update dbos.schedules as s
    set
      last_run_at = due.next_run_at,
      next_run_at = dbos.cron_next(due.cron, now(), due.timezone)
    where s.schedule_name = due.schedule_name;
    enqueued := enqueued + 1;
  end loop;
  return enqueued;
end;
$$;

comment on function dbos.enqueue_due_schedules() is
'Enqueues one job for each schedule whose tick is due (scheduled_for = the '
'tick) and moves it to its next tick, in one transaction; returns how many '
'it enqueued. Each tick is enqueued once however many workers call it; '
'missed ticks after downtime run once.';
