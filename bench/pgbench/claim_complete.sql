-- One claim of :batch jobs (FOR UPDATE SKIP LOCKED, then marked running) and
-- one completion update of the same jobs: two transactions, as a worker does.
-- jobs/s = tps * :batch.
with claimed as (
  select id
  from bench_jobs
  where status = 'pending'
  order by id
  limit :batch
  for update skip locked
), started as (
  update bench_jobs
  set status = 'running', started_at = now()
  from claimed
  where bench_jobs.id = claimed.id
  returning bench_jobs.id
)
select coalesce(array_agg(id), '{}') as ids from started
\gset
update bench_jobs
set status = 'completed', completed_at = now()
where id = any(:ids::bigint[]);
