-- The batch writes look their rows up by the ids they are given, whatever the
-- statistics say. Right after a bulk enqueue and ANALYZE, the statistics say
-- no job is running; a plan trusting them read every running row for each
-- batch (seconds per call with 20,000 running jobs). Here 8,000 running jobs
-- and stale statistics: each call on 1,000 jobs may read a few rows per id,
-- never the table. Reads are counted with this transaction's own statistics.

begin;
select plan(6);

select count(*) from dbos.enqueue_many(
  array_fill('plans.job'::text, array[8000]), array_fill('{}'::jsonb, array[8000])
);
analyze dbos.job_queue;
-- Each call planned for its own arrays (a custom plan), as PL/pgSQL does for
-- the first calls and whenever that looks cheaper.
set local plan_cache_mode = force_custom_plan;
select count(*) from dbos.claim_job('plans.w', array['plans.job'], 8000, 600);

-- Rows of dbos.job_queue read so far by this transaction (index and seq scans).
create function pg_temp.rows_read()
returns bigint
language sql
as $$
  select coalesce(s.idx_tup_fetch, 0) + coalesce(s.seq_tup_read, 0)
  from pg_catalog.pg_stat_xact_user_tables as s
  where s.relid = 'dbos.job_queue'::regclass
$$;

-- Rows read by a statement, given the job ids it may use as :ids.
create function pg_temp.rows_read_by(statement text, ids bigint[])
returns bigint
language plpgsql
as $$
declare
  before bigint := pg_temp.rows_read();
begin
  execute statement using ids;
  return pg_temp.rows_read() - before;
end;
$$;

-- A thousand running jobs per call, each call its own.
create temp table batches as
select
  n,
  array(
    select j.id from dbos.job_queue as j
    where j.status = 'running'
    order by j.id
    offset n * 1000 limit 1000
  ) as ids
from generate_series(0, 5) as n;

select cmp_ok(
  pg_temp.rows_read_by(
    $$ select count(*) from dbos.complete_jobs($1, 'plans.w') $$,
    (select ids from batches where n = 0)
  ),
  '<=', 2500::bigint,
  'complete_jobs reads the rows of its ids, not every running job'
);

select cmp_ok(
  pg_temp.rows_read_by(
    $$ select count(*) from dbos.fail_jobs($1, array_fill('boom'::text, array[1000]), 1000, 'plans.w') $$,
    (select ids from batches where n = 1)
  ),
  '<=', 5000::bigint,
  'fail_jobs reads the rows of its ids, not every running job'
);

select cmp_ok(
  pg_temp.rows_read_by(
    $$ select count(*) from dbos.snooze_jobs($1, array_fill(60::float8, array[1000]), 'plans.w') $$,
    (select ids from batches where n = 2)
  ),
  '<=', 2500::bigint,
  'snooze_jobs reads the rows of its ids, not every running job'
);

select cmp_ok(
  pg_temp.rows_read_by(
    $$ select count(*) from dbos.heartbeat('plans.w', $1, 600) $$,
    (select ids from batches where n = 3)
  ),
  '<=', 2500::bigint,
  'heartbeat reads the rows of its ids, not every running job'
);

select cmp_ok(
  pg_temp.rows_read_by(
    $$ select dbos.release_jobs('plans.w', $1) $$,
    (select ids from batches where n = 4)
  ),
  '<=', 2500::bigint,
  'release_jobs reads the rows of its ids, not every running job'
);

-- What the calls did is what they were asked to: 1,000 completed, 1,000
-- retried later, 1,000 snoozed, 1,000 released; 4,000 still running.
select results_eq(
  $$ select status, count(*) from dbos.job_queue group by status order by status $$,
  $$ values ('completed'::text, 1000::bigint), ('pending', 3000), ('running', 4000) $$,
  'each call changed its own thousand jobs'
);

select * from finish();
rollback;
