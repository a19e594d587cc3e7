-- Reading the queue.

create function dbos.get_job(job_id bigint)
returns setof dbos.job_queue
language sql
stable
set search_path = pg_catalog, pg_temp
security definer
as $$
  select j.*
  from dbos.job_queue as j
  where j.id = get_job.job_id;
$$;

comment on function dbos.get_job(bigint) is
'The job with this id: one row, or none (unknown, pruned, or dead-lettered: '
'see dbos.failed_jobs).';

create function dbos.list_jobs(status text default null, max_rows int default 50)
returns setof dbos.job_queue
language plpgsql
stable
set search_path = pg_catalog, pg_temp
security definer
as $$
begin
  if list_jobs.status not in ('pending', 'running', 'completed', 'cancelled') then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'status must be pending, running, completed or cancelled, got %L',
        list_jobs.status);
  end if;
  if list_jobs.max_rows < 1 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format('max_rows must be at least 1, got %s', list_jobs.max_rows);
  end if;

  return query
  select j.*
  from dbos.job_queue as j
  where list_jobs.status is null or j.status = list_jobs.status
  order by j.id desc
  limit coalesce(list_jobs.max_rows, 50);
end;
$$;

comment on function dbos.list_jobs(text, int) is
'The newest max_rows jobs (default 50), of one status when given.';

create function dbos.list_dead_letter_jobs(max_rows int default 50)
returns setof dbos.failed_jobs
language plpgsql
stable
set search_path = pg_catalog, pg_temp
security definer
as $$
begin
  if list_dead_letter_jobs.max_rows < 1 then
    raise exception using
      errcode = 'invalid_parameter_value',
      message = format(
        'max_rows must be at least 1, got %s', list_dead_letter_jobs.max_rows);
  end if;

  return query
  select d.*
  from dbos.failed_jobs as d
  order by d.failed_at desc, d.id desc
  limit coalesce(list_dead_letter_jobs.max_rows, 50);
end;
$$;

comment on function dbos.list_dead_letter_jobs(int) is
'The newest max_rows dead-lettered jobs (default 50), newest first.';

create view dbos.queue_stats as
select
  j.job_name,
  j.status,
  count(*) as jobs
from dbos.job_queue as j
group by j.job_name, j.status
union all
select
  d.job_name,
  'dead' as status,
  count(*) as jobs
from dbos.failed_jobs as d
group by d.job_name;

comment on view dbos.queue_stats is
'Jobs by job_name and status; dead-lettered jobs have status ''dead''.';
