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
'NOTIFY channel dbos_job_queue (empty payload): jobs were enqueued or came '
'back. A wake-up hint only; workers also poll, so correctness never depends '
'on it.';

create function dbos.enqueue_many(
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

create function dbos.enqueue(
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
