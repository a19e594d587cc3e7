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

comment on function dbos.heartbeat(text, bigint[], int, int[]) is
'Extends to now() + lease_seconds (never past a job''s timeout) the leases '
'that worker_id still holds '
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

create function dbos.rescue_expired_jobs(retry_delay_ms int default 1000)
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

create function dbos.release_jobs(
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

comment on function dbos.release_jobs(text, bigint[], int[]) is
'For a graceful shutdown: running jobs held by worker_id go back to pending, '
'due now, without using up an attempt (a job whose cancel was requested ends '
'cancelled). Returns how many it released; wakes the other workers.';
