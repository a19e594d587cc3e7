-- Claiming: the one hot read of the queue.

create function dbos.claim_batch(
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
-- JIT compiling costs 100+ ms a call (the disabled plans' costs trigger it).
set jit = off
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

create function dbos.claim_job(
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

create function dbos.seconds_until_next_job(
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

create function dbos.set_queue_limit(queue_name text, concurrency_limit int)
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
