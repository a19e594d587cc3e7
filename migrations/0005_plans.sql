-- 0005: plans that stay fast whatever the statistics (sql/30_claim.sql,
-- sql/40_finish.sql, sql/50_leases.sql).
--
-- The batch writes (complete, fail, snooze, heartbeat, release) joined the
-- job table to their id arrays as the planner saw fit. Right after a bulk
-- enqueue and ANALYZE, the statistics say no job is running, and the planner
-- read the whole table for every batch (seconds per call on 20,000 running
-- jobs). Each now also looks its rows up by id (= any of the ids given) and
-- joins by hash, never by a nested loop over the arrays. The settings that
-- disable plans gave those plans costs above jit_above_cost, so every call
-- was JIT-compiled (100 to 400 ms): JIT is off in these functions.


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
-- Rows are looked up by id (the pkey, for the ids given), never by a scan of the
-- table, and joined to the arrays by hash, whatever the statistics say: a
-- table just filled by a bulk enqueue looks to the planner as if no job ran.
set enable_seqscan = off
set enable_nestloop = off
-- JIT compiling costs 100+ ms a call (the disabled plans' costs trigger it).
set jit = off
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
    and j.id = any(complete_jobs.job_ids)
    and j.status = 'running'
    and (complete_jobs.worker_id is null or j.locked_by = complete_jobs.worker_id)
    and (f.lease_token is null or j.lease_token = f.lease_token)
  returning j.id;
  if frees_slot then
    perform dbos.wake_workers();
  end if;
end;
$$;

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
-- Rows are looked up by id (the pkey, for the ids given), never by a scan of the
-- table, and joined to the arrays by hash, whatever the statistics say: a
-- table just filled by a bulk enqueue looks to the planner as if no job ran.
set enable_seqscan = off
set enable_nestloop = off
-- JIT compiling costs 100+ ms a call (the disabled plans' costs trigger it).
set jit = off
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
      j.id = any(fail_jobs.job_ids)
      and j.status = 'running'
      and (fail_jobs.worker_id is null or j.locked_by = fail_jobs.worker_id)
      and (f.lease_token is null or j.lease_token = f.lease_token)
    for update of j
  ),

  dead as (
    delete from dbos.job_queue as j
    using failing as f
    where
      j.id = f.id
      and j.id = any(fail_jobs.job_ids)
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
      and j.id = any(fail_jobs.job_ids)
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
-- Rows are looked up by id (the pkey, for the ids given), never by a scan of the
-- table, and joined to the arrays by hash, whatever the statistics say: a
-- table just filled by a bulk enqueue looks to the planner as if no job ran.
set enable_seqscan = off
set enable_nestloop = off
-- JIT compiling costs 100+ ms a call (the disabled plans' costs trigger it).
set jit = off
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
    and j.id = any(snooze_jobs.job_ids)
    and j.status = 'running'
    and (snooze_jobs.worker_id is null or j.locked_by = snooze_jobs.worker_id)
    and (f.lease_token is null or j.lease_token = f.lease_token)
  returning j.id;
end;
$$;

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
-- Rows are looked up by id (the pkey, for the ids given), never by a scan of the
-- table, and joined to the arrays by hash, whatever the statistics say: a
-- table just filled by a bulk enqueue looks to the planner as if no job ran.
set enable_seqscan = off
set enable_nestloop = off
-- JIT compiling costs 100+ ms a call (the disabled plans' costs trigger it).
set jit = off
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
      and j.id = any(heartbeat.job_ids)
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

create or replace function dbos.release_jobs(
  worker_id text,
  job_ids bigint[],
  lease_tokens int[] default null
)
returns int
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
-- Rows are looked up by id (the pkey, for the ids given), never by a scan of the
-- table, and joined to the arrays by hash, whatever the statistics say: a
-- table just filled by a bulk enqueue looks to the planner as if no job ran.
set enable_seqscan = off
set enable_nestloop = off
-- JIT compiling costs 100+ ms a call (the disabled plans' costs trigger it).
set jit = off
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
      and j.id = any(release_jobs.job_ids)
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

alter function dbos.claim_batch(text, text[], text[], text[], int, int)
set jit = off;
