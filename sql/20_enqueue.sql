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
