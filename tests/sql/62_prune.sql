-- dbos.prune_jobs: deletes finished (completed, cancelled) jobs older than
-- an interval, oldest first; never live jobs, never dead letters.

begin;
select plan(12);

-- A finished job, finished some time ago.
create function pg_temp.finished_job(job_name text, status text, age interval)
returns bigint
language plpgsql
as $$
declare
  job bigint := dbos.enqueue(job_name);
begin
  if status = 'completed' then
    perform dbos.claim_job('prune-worker', array[job_name]);
    perform dbos.complete_job(job);
  else
    perform dbos.cancel_job(job);
  end if;
  update dbos.job_queue set completed_at = now() - age where id = job;
  return job;
end;
$$;

delete from dbos.job_queue;

select pg_temp.finished_job('prune.old-completed', 'completed', interval '2 days') as old_completed \gset
select pg_temp.finished_job('prune.old-cancelled', 'cancelled', interval '3 days') as old_cancelled \gset
select pg_temp.finished_job('prune.recent', 'completed', interval '1 minute') as recent_completed \gset
select dbos.enqueue('prune.pending', '{}', now() - interval '5 days') as old_pending \gset
update dbos.job_queue set created_at = now() - interval '5 days' where id = :old_pending;
select dbos.enqueue('prune.running') as running_job \gset
select id as claimed from dbos.claim_job('w1', array['prune.running']) \gset
update dbos.job_queue set created_at = now() - interval '5 days', scheduled_for = now() - interval '5 days'
where id = :running_job;
select dbos.enqueue('prune.dead', max_attempts => 1) as dead_job \gset
select id as claimed from dbos.claim_job('w1', array['prune.dead']) \gset
select dbos.fail_job(:dead_job, 'fatal') as outcome \gset
update dbos.failed_jobs set failed_at = now() - interval '5 days' where id = :dead_job;

select is(
  dbos.prune_jobs(interval '1 day'),
  2,
  'prune_jobs returns how many jobs it deleted'
);
select results_eq(
  $$ select id from dbos.job_queue order by id $$,
  format($$ values (%s::bigint), (%s), (%s) $$, :recent_completed, :old_pending, :running_job),
  'prune_jobs deletes only completed and cancelled jobs finished before the interval'
);
select is(
  (select count(*)::int from dbos.failed_jobs where id = :dead_job), 1,
  'prune_jobs keeps dead letters'
);
select is(
  dbos.prune_jobs(interval '1 day'), 0,
  'a second prune deletes nothing'
);
select is(
  dbos.prune_jobs(interval '0'), 1,
  'prune_jobs with a zero interval deletes every job finished before now()'
);
select is(
  (select count(*)::int from dbos.job_queue where status in ('completed', 'cancelled')), 0,
  'no finished job is left'
);

-- max_rows: the oldest first.
select pg_temp.finished_job('prune.batch', 'completed', interval '10 days') as batch_1 \gset
select pg_temp.finished_job('prune.batch', 'completed', interval '30 days') as batch_2 \gset
select pg_temp.finished_job('prune.batch', 'cancelled', interval '20 days') as batch_3 \gset
select is(
  dbos.prune_jobs(interval '1 day', 2), 2,
  'prune_jobs deletes at most max_rows jobs'
);
select results_eq(
  $$ select id from dbos.job_queue where job_name = 'prune.batch' $$,
  array[:batch_1::bigint],
  'prune_jobs with max_rows deletes the oldest finished jobs first'
);
select is(
  dbos.prune_jobs(interval '1 day', null), 1,
  'prune_jobs with a NULL max_rows deletes all that are old enough'
);

select throws_ok(
  $$ select dbos.prune_jobs(interval '-1 day') $$, '22023', null,
  'prune_jobs refuses a negative interval with 22023'
);
select throws_ok(
  $$ select dbos.prune_jobs(null) $$, '22023', null,
  'prune_jobs refuses a NULL interval with 22023'
);
select throws_ok(
  $$ select dbos.prune_jobs(interval '1 day', 0) $$, '22023', null,
  'prune_jobs refuses max_rows 0 with 22023'
);

select * from finish();
rollback;
