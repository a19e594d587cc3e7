-- Finishing a claimed job: completion, failure with backoff, dead letter,
-- snooze. The batch forms are the real ones; the single forms delegate.

create function dbos.retry_delay(
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

create function dbos.frees_limited_queue(job_ids bigint[])
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

create function dbos.complete_jobs(
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

comment on function dbos.complete_jobs(bigint[], text, int[], jsonb[]) is
'Marks running jobs completed in one statement, storing results[i] (the '
'handler''s return value, NULL for none) as the result of job_ids[i], and '
'returns the ids it completed. A job is skipped (not returned) unless it is '
'running, held by worker_id when given, and under the lease_tokens element '
'when given: a stale worker cannot complete a later claim.';

create function dbos.complete_job(
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

create function dbos.fail_jobs(
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

comment on function dbos.fail_jobs(
  bigint[], text[], int, text, int[], int, double precision, boolean
) is
'Fails the running attempts of many jobs in one statement (errors[i] for '
'job_ids[i]) and returns each changed job with its outcome: pending (retry '
'after dbos.retry_delay with retry_delay_ms, max_retry_delay_ms and '
'jitter), dead (attempts used up, or permanent: moved to dbos.failed_jobs) '
'or cancelled (its cancel was requested). Jobs not running under worker_id '
'/ lease_tokens are skipped.';

create function dbos.fail_job(
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

create function dbos.snooze_jobs(
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

comment on function dbos.snooze_jobs(bigint[], double precision[], text, int[])
is
'Puts running jobs back to pending, to run again seconds[i] from now, '
'without using up an attempt (their handlers asked to run later); a job '
'whose cancel was requested ends cancelled. Returns the ids it changed; '
'jobs not running under worker_id / lease_tokens are skipped.';

create function dbos.snooze_job(
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
