-- 0004: the dashboard's reads (sql/75_dashboard.sql): four indexes, a
-- statistics object and seven read-only functions. The indexes are built
-- inside the migration's transaction, which blocks writes to the tables while
-- they build (about a second per million jobs).

-- The dashboard's reads: counts, throughput, workers and filtered lists that
-- stay fast with millions of finished jobs in the table. Every query here is
-- answered from an index or from the planner's statistics, never by reading
-- every finished row.

-- The jobs list filters by job name over all rows, finished ones included;
-- (job_name, id) answers "newest jobs of this name" in id order.
create index job_queue_job_name_idx on dbos.job_queue (job_name, id);

-- Cancelled jobs are few among the finished ones; without this index, listing
-- them would read every completed row to find none.
create index job_queue_cancelled_idx on dbos.job_queue (id)
where status = 'cancelled';

-- The error search reads only the jobs that failed an attempt, newest first.
create index job_queue_error_idx on dbos.job_queue (id)
where error is not null;

-- Dead letters of one name, newest first (and retry_dead_letter_jobs).
create index failed_jobs_job_name_idx on dbos.failed_jobs (
  job_name, failed_at, id
);

-- Counts of (job_name, status) pairs from the last ANALYZE: the dashboard
-- estimates a large group of jobs from them instead of counting it, and the
-- planner learns which names are pending.
create statistics dbos.job_queue_name_status_stats (mcv)
on job_name, status from dbos.job_queue;

create function dbos.dashboard_counts(exact_limit int default 10000)
returns table (job_name text, status text, jobs bigint, estimated boolean)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
security definer
as $$
declare
  seen bigint;
  -- Groups holding more than exact_limit rows: estimated, not counted.
  large text[] := '{}';
begin
  if dashboard_counts.exact_limit is null or dashboard_counts.exact_limit < 1 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'exact_limit must be at least 1, got %s',
        coalesce(dashboard_counts.exact_limit::text, 'null'));
  end if;

  -- Each group is read through its own partial index, and only up to
  -- exact_limit + 1 rows to learn whether it is small.
  select count(*) into seen
  from (
    select 1
    from dbos.job_queue as j
    where j.status = 'pending'
    limit dashboard_counts.exact_limit + 1
  ) as s;
  if seen > dashboard_counts.exact_limit then
    large := large || array['pending'];
  else
    return query
    select j.job_name, j.status, count(*), false
    from dbos.job_queue as j
    where j.status = 'pending'
    group by j.job_name, j.status;
  end if;

  -- Running jobs are exactly those with a lease (job_queue_lease_check).
  select count(*) into seen
  from (
    select 1
    from dbos.job_queue as j
    where j.lease_expires_at is not null
    limit dashboard_counts.exact_limit + 1
  ) as s;
  if seen > dashboard_counts.exact_limit then
    large := large || array['running'];
  else
    return query
    select j.job_name, j.status, count(*), false
    from dbos.job_queue as j
    where j.lease_expires_at is not null
    group by j.job_name, j.status;
  end if;

  select count(*) into seen
  from (
    select 1
    from dbos.job_queue as j
    where j.status in ('completed', 'cancelled')
    limit dashboard_counts.exact_limit + 1
  ) as s;
  if seen > dashboard_counts.exact_limit then
    large := large || array['completed', 'cancelled'];
  else
    return query
    select j.job_name, j.status, count(*), false
    from dbos.job_queue as j
    where j.status in ('completed', 'cancelled')
    group by j.job_name, j.status;
  end if;

  if cardinality(large) > 0 then
    -- The table's rows now (its rows per page at the last ANALYZE times its
    -- pages now, as the planner reckons), split by the (job_name, status)
    -- frequencies of the last ANALYZE; names too rare to be among the most
    -- common pairs are summed in a row with a NULL job_name.
    return query
    with size as (
      select
        case
          when c.reltuples < 0 then null
          when c.relpages = 0 then c.reltuples::float8
          else c.reltuples::float8 / c.relpages
            * (pg_relation_size(c.oid) / current_setting('block_size')::float8)
        end as total_rows
      from pg_class as c
      where c.oid = 'dbos.job_queue'::regclass
    ),

    pairs as (
      select
        e.most_common_vals[i][array_position(e.attnames, 'job_name'::name)] as job_name,
        e.most_common_vals[i][array_position(e.attnames, 'status'::name)] as status,
        e.most_common_freqs[i] as freq
      from pg_stats_ext as e
      cross join generate_subscripts(e.most_common_vals, 1) as i
      where
        e.statistics_schemaname = 'dbos'
        and e.statistics_name = 'job_queue_name_status_stats'
    ),

    statuses as (
      select v.status, v.freq
      from pg_stats as s
      cross join unnest(s.most_common_vals::text::text[], s.most_common_freqs) as v (status, freq)
      where s.schemaname = 'dbos' and s.tablename = 'job_queue' and s.attname = 'status'
    ),

    estimates as (
      select p.job_name, p.status, p.freq
      from pairs as p
      where p.status = any(large)
      union all
      select null, st.status, st.freq - coalesce(sum(p.freq), 0)
      from statuses as st
      left join pairs as p on st.status = p.status
      where st.status = any(large)
      group by st.status, st.freq
    ),

    shown as (
      select e.job_name, e.status, round(e.freq * size.total_rows)::bigint as jobs
      from estimates as e
      cross join size
      where round(e.freq * size.total_rows) >= 1
    )

    select s.job_name, s.status, s.jobs, true
    from shown as s
    union all
    -- A large group the statistics do not know (never analyzed, or grown
    -- since): all that is known is that it has more than exact_limit rows.
    select null, l.status, dashboard_counts.exact_limit + 1::bigint, true
    from unnest(large) as l (status)
    where
      l.status <> 'cancelled'
      and not exists (
        select
        from shown as s
        where
          s.status = l.status
          or (l.status = 'completed' and s.status = 'cancelled')
      );
  end if;

  select count(*) into seen
  from (
    select 1
    from dbos.failed_jobs as d
    limit dashboard_counts.exact_limit + 1
  ) as s;
  if seen <= dashboard_counts.exact_limit then
    return query
    select d.job_name, 'dead'::text, count(*), false
    from dbos.failed_jobs as d
    group by d.job_name;
    return;
  end if;

  return query
  with size as (
    select
      case
        when c.reltuples < 0 then null
        when c.relpages = 0 then c.reltuples::float8
        else c.reltuples::float8 / c.relpages
          * (pg_relation_size(c.oid) / current_setting('block_size')::float8)
      end as total_rows
    from pg_class as c
    where c.oid = 'dbos.failed_jobs'::regclass
  ),

  names as (
    select v.job_name, v.freq
    from pg_stats as s
    cross join unnest(s.most_common_vals::text::text[], s.most_common_freqs) as v (job_name, freq)
    where s.schemaname = 'dbos' and s.tablename = 'failed_jobs' and s.attname = 'job_name'
  ),

  estimates as (
    select n.job_name, n.freq
    from names as n
    union all
    select null, 1 - coalesce(sum(n.freq), 0)
    from names as n
  )

  select e.job_name, 'dead'::text, round(e.freq * size.total_rows)::bigint, true
  from estimates as e
  cross join size
  where round(e.freq * size.total_rows) >= 1;
  if not found then
    return query
    select null::text, 'dead'::text, dashboard_counts.exact_limit + 1::bigint, true;
  end if;
end;
$$;

comment on function dbos.dashboard_counts(int) is
'Jobs by job_name and status (''dead'' for dbos.failed_jobs), read through '
'the partial indexes. A group (pending, running, finished, dead) of at most '
'exact_limit rows is counted exactly (estimated false); a larger one is '
'estimated from the statistics of the last ANALYZE (estimated true), rare '
'names summed in a row with a NULL job_name; a large group the statistics '
'do not know yet gets one row of exact_limit + 1, a lower bound, with a NULL '
'job_name. Never reads every finished row.';

create function dbos.dashboard_throughput(minutes int default 60)
returns table (minute timestamptz, completed bigint, failed bigint)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
security definer
as $$
begin
  if dashboard_throughput.minutes is null
    or dashboard_throughput.minutes not between 1 and 1440 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'minutes must be from 1 to 1440, got %s',
        coalesce(dashboard_throughput.minutes::text, 'null'));
  end if;

  return query
  with span as (
    select
      date_trunc('minute', now())
      - make_interval(mins => dashboard_throughput.minutes - 1) as first_minute
  ),

  done as (
    select date_trunc('minute', j.completed_at) as minute, count(*) as jobs
    from dbos.job_queue as j
    cross join span
    where j.status = 'completed' and j.completed_at >= span.first_minute
    group by 1
  ),

  dead as (
    select date_trunc('minute', d.failed_at) as minute, count(*) as jobs
    from dbos.failed_jobs as d
    cross join span
    where d.failed_at >= span.first_minute
    group by 1
  )

  select m.minute, coalesce(done.jobs, 0), coalesce(dead.jobs, 0)
  from span
  cross join
    generate_series(
      span.first_minute, date_trunc('minute', now()), interval '1 minute'
    ) as m (minute)
  left join done on m.minute = done.minute
  left join dead on m.minute = dead.minute
  order by m.minute;
end;
$$;

comment on function dbos.dashboard_throughput(int) is
'One row per minute of the last minutes (default 60, at most 1440), oldest '
'first, the current minute last: jobs completed in it and jobs '
'dead-lettered (failed for good) in it. Reads the finished and dead-letter '
'indexes by time.';

create function dbos.dashboard_oldest_due_at()
returns timestamptz
language sql
stable
set search_path = pg_catalog, pg_temp
security definer
as $$
  -- The claim index is ordered by priority first: its oldest entry of each
  -- priority is found by one probe, and priorities are few, so this skips
  -- from priority to priority instead of reading every pending row.
  with recursive priorities as (
    (
      select j.priority
      from dbos.job_queue as j
      where j.status = 'pending'
      order by j.priority desc
      limit 1
    )
    union all
    select (
      select j.priority
      from dbos.job_queue as j
      where j.status = 'pending' and j.priority < p.priority
      order by j.priority desc
      limit 1
    )
    from priorities as p
    where p.priority is not null
  ),

  oldest as (
    select min((
      select j.scheduled_for
      from dbos.job_queue as j
      where j.status = 'pending' and j.priority = p.priority
      order by j.priority desc, j.scheduled_for asc
      limit 1
    )) as scheduled_for
    from priorities as p
    where p.priority is not null
  )

  select o.scheduled_for
  from oldest as o
  where o.scheduled_for <= now();
$$;

comment on function dbos.dashboard_oldest_due_at() is
'The scheduled_for of the pending job that has been due the longest (its '
'wait is now() minus it), or NULL when no pending job is due. One index '
'probe per distinct priority of pending jobs.';

create function dbos.dashboard_workers(recent interval default interval '5 minutes')
returns table (
  worker_id text,
  running bigint,
  finished_recently bigint,
  last_finished_at timestamptz,
  lease_expires_at timestamptz
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
security definer
as $$
begin
  if dashboard_workers.recent is null or dashboard_workers.recent < interval '0' then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'recent must be 0 or a positive interval, got %s',
        coalesce(dashboard_workers.recent::text, 'null'));
  end if;

  return query
  with holding as (
    select
      j.locked_by,
      count(*) as jobs,
      max(j.lease_expires_at) as lease_expires_at
    from dbos.job_queue as j
    where j.lease_expires_at is not null
    group by j.locked_by
  ),

  finished as (
    select
      j.locked_by,
      count(*) as jobs,
      max(j.completed_at) as last_finished_at
    from dbos.job_queue as j
    where
      j.status in ('completed', 'cancelled')
      and j.completed_at > now() - dashboard_workers.recent
      and j.locked_by is not null
    group by j.locked_by
  )

  select
    coalesce(h.locked_by, f.locked_by),
    coalesce(h.jobs, 0),
    coalesce(f.jobs, 0),
    f.last_finished_at,
    h.lease_expires_at
  from holding as h
  full join finished as f on h.locked_by = f.locked_by
  order by 1;
end;
$$;

comment on function dbos.dashboard_workers(interval) is
'Workers seen lately, from the jobs themselves (pgstack keeps no worker '
'table): each worker that holds running jobs (how many, and its latest '
'lease: a lease in the past means it stopped heartbeating) or finished jobs '
'in the last recent (default 5 minutes; how many, and when it last did).';

create function dbos.dashboard_list_jobs(
  status text default null,
  job_name text default null,
  error_contains text default null,
  before_id bigint default null,
  after_id bigint default null,
  max_rows int default 50
)
returns setof dbos.job_queue
language plpgsql
stable
set search_path = pg_catalog, pg_temp
-- Every call is planned with its arguments as constants: the filters left
-- NULL fold away, so the planner sees only those given and picks the index
-- they need (the primary key, a partial index of the status, the job name
-- index or the error index). A generic plan, made for any arguments, could
-- use none of them.
set plan_cache_mode = force_custom_plan
security definer
as $$
begin
  if dashboard_list_jobs.status not in ('pending', 'running', 'completed', 'cancelled') then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'status must be pending, running, completed or cancelled, got %L',
        dashboard_list_jobs.status);
  end if;
  if dashboard_list_jobs.max_rows is null
    or dashboard_list_jobs.max_rows not between 1 and 1000 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'max_rows must be from 1 to 1000, got %s',
        coalesce(dashboard_list_jobs.max_rows::text, 'null'));
  end if;

  -- The conditions on the lease and on finished statuses repeat the status
  -- filter in the terms of the lease and finished indexes' predicates, so
  -- that the planner may use those indexes.
  if dashboard_list_jobs.after_id is null then
    return query
    select j.*
    from dbos.job_queue as j
    where
      (dashboard_list_jobs.status is null or j.status = dashboard_list_jobs.status)
      and (
        dashboard_list_jobs.status is null
        or dashboard_list_jobs.status <> 'running'
        or j.lease_expires_at is not null
      )
      and (
        dashboard_list_jobs.status is null
        or dashboard_list_jobs.status not in ('completed', 'cancelled')
        or j.status in ('completed', 'cancelled')
      )
      and (dashboard_list_jobs.job_name is null or j.job_name = dashboard_list_jobs.job_name)
      and (
        dashboard_list_jobs.error_contains is null
        or (
          j.error is not null
          and strpos(lower(j.error), lower(dashboard_list_jobs.error_contains)) > 0
        )
      )
      and (dashboard_list_jobs.before_id is null or j.id < dashboard_list_jobs.before_id)
    order by j.id desc
    limit dashboard_list_jobs.max_rows;
    return;
  end if;

  -- The page before: the oldest max_rows jobs newer than after_id.
  return query
  select p.*
  from (
    select j.*
    from dbos.job_queue as j
    where
      (dashboard_list_jobs.status is null or j.status = dashboard_list_jobs.status)
      and (
        dashboard_list_jobs.status is null
        or dashboard_list_jobs.status <> 'running'
        or j.lease_expires_at is not null
      )
      and (
        dashboard_list_jobs.status is null
        or dashboard_list_jobs.status not in ('completed', 'cancelled')
        or j.status in ('completed', 'cancelled')
      )
      and (dashboard_list_jobs.job_name is null or j.job_name = dashboard_list_jobs.job_name)
      and (
        dashboard_list_jobs.error_contains is null
        or (
          j.error is not null
          and strpos(lower(j.error), lower(dashboard_list_jobs.error_contains)) > 0
        )
      )
      and j.id > dashboard_list_jobs.after_id
    order by j.id asc
    limit dashboard_list_jobs.max_rows
  ) as p
  order by p.id desc;
end;
$$;

comment on function dbos.dashboard_list_jobs(text, text, text, bigint, bigint, int) is
'A page of jobs, newest first: of one status, of one job_name, and whose '
'error contains error_contains (case-insensitive) when given. Keyset pages: '
'before_id gives the max_rows (1 to 1000, default 50) jobs older than it, '
'after_id the max_rows jobs just newer than it. Each filter is served by an '
'index.';

create function dbos.dashboard_list_dead_letter_jobs(
  job_name text default null,
  before_failed_at timestamptz default null,
  before_id bigint default null,
  max_rows int default 50
)
returns setof dbos.failed_jobs
language plpgsql
stable
set search_path = pg_catalog, pg_temp
-- As dashboard_list_jobs: planned with its arguments, so that the filters not
-- given fold away and an index serves the rest.
set plan_cache_mode = force_custom_plan
security definer
as $$
begin
  if dashboard_list_dead_letter_jobs.max_rows is null
    or dashboard_list_dead_letter_jobs.max_rows not between 1 and 1000 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'max_rows must be from 1 to 1000, got %s',
        coalesce(dashboard_list_dead_letter_jobs.max_rows::text, 'null'));
  end if;
  if (dashboard_list_dead_letter_jobs.before_failed_at is null)
    <> (dashboard_list_dead_letter_jobs.before_id is null) then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = 'before_failed_at and before_id go together: give both or neither';
  end if;

  return query
  select d.*
  from dbos.failed_jobs as d
  where
    (
      dashboard_list_dead_letter_jobs.job_name is null
      or d.job_name = dashboard_list_dead_letter_jobs.job_name
    )
    and (
      dashboard_list_dead_letter_jobs.before_failed_at is null
      or (d.failed_at, d.id) < (
        dashboard_list_dead_letter_jobs.before_failed_at,
        dashboard_list_dead_letter_jobs.before_id
      )
    )
  order by d.failed_at desc, d.id desc
  limit dashboard_list_dead_letter_jobs.max_rows;
end;
$$;

comment on function dbos.dashboard_list_dead_letter_jobs(text, timestamptz, bigint, int) is
'A page of dead-lettered jobs, newest first, of one job_name when given. '
'Keyset pages: with before_failed_at and before_id (the last row of the '
'previous page), the max_rows (1 to 1000, default 50) that come after it.';

create function dbos.get_dead_letter_job(id bigint)
returns setof dbos.failed_jobs
language sql
stable
set search_path = pg_catalog, pg_temp
security definer
as $$
  select d.*
  from dbos.failed_jobs as d
  where d.id = get_dead_letter_job.id;
$$;

comment on function dbos.get_dead_letter_job(bigint) is
'The dead-lettered job with this id (the id it had in dbos.job_queue): one '
'row, or none.';

-- The functions read every job: PUBLIC may not call them. (Schema-level
-- default privileges cannot take away PUBLIC's execute right on new
-- functions, so it is revoked here, function by function.)
revoke all on function
dbos.dashboard_counts(int),
dbos.dashboard_throughput(int),
dbos.dashboard_oldest_due_at(),
dbos.dashboard_workers(interval),
dbos.dashboard_list_jobs(text, text, text, bigint, bigint, int),
dbos.dashboard_list_dead_letter_jobs(text, timestamptz, bigint, int),
dbos.get_dead_letter_job(bigint)
from public;

do $$
begin
  if exists (select from pg_catalog.pg_roles as r where r.rolname = 'dbos_admin') then
    grant execute on function
    dbos.dashboard_counts(int),
    dbos.dashboard_throughput(int),
    dbos.dashboard_oldest_due_at(),
    dbos.dashboard_workers(interval),
    dbos.dashboard_list_jobs(text, text, text, bigint, bigint, int),
    dbos.dashboard_list_dead_letter_jobs(text, timestamptz, bigint, int),
    dbos.get_dead_letter_job(bigint)
    to dbos_admin;
  end if;
end;
$$;
