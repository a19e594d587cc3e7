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
