-- The bare table behind the pgbench limit: a job's columns and the one
-- partial index a claim needs, nothing else (no triggers, no NOTIFY, no log).
create table bench_jobs (
  id bigint generated always as identity primary key,
  job_name text not null,
  payload jsonb not null default '{}',
  status text not null default 'pending',
  created_at timestamptz not null default now(),
  started_at timestamptz,
  completed_at timestamptz
);

create index bench_jobs_pending on bench_jobs (id) where status = 'pending';
