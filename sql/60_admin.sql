-- Operators' functions: cancel, replay, retry now, prune.

create function dbos.cancel_job(job_id bigint)
returns text
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
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

create function dbos.retry_dead_letter_jobs(job_name text)
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

create function dbos.cancel_pending_jobs(job_name text)
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

create function dbos.retry_job(job_id bigint)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
security definer
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
security definer
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
