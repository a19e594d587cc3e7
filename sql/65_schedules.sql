-- Periodic jobs: cron schedules kept in dbos.schedules, enqueued by any
-- worker, each tick exactly once.

create function dbos.cron_field(
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

create function dbos.cron_next(
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

create function dbos.schedule(
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

create function dbos.unschedule(schedule_name text)
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

create function dbos.enqueue_due_schedules()
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
