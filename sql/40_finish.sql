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
