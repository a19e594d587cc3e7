-- Privileges: PUBLIC gets nothing; each role is granted the functions it may
-- call and, for the admin, read access to the tables.
begin;
select plan(17);

select schema_privs_are('dbos', 'public', array[]::text[], 'PUBLIC has no right on schema dbos');
select table_privs_are('dbos', 'job_queue', 'public', array[]::text[], 'PUBLIC cannot touch job_queue');
select ok(
  not has_function_privilege('public', 'dbos.enqueue(text, jsonb, timestamptz, int, int, text, text, int)', 'execute'),
  'PUBLIC cannot execute enqueue'
);
select is_empty(
  $$
    select p.oid::regprocedure::text from pg_proc as p
    where p.pronamespace = 'dbos'::regnamespace
      and has_function_privilege('public', p.oid, 'execute')
  $$,
  'PUBLIC may execute no dbos function (each migration revokes its new ones)'
);
select has_role('dbos_enqueuer', 'role dbos_enqueuer exists');
select has_role('dbos_worker', 'role dbos_worker exists');
select has_role('dbos_admin', 'role dbos_admin exists');

select schema_privs_are('dbos', 'dbos_enqueuer', array['USAGE'], 'the enqueuer may use schema dbos');
select table_privs_are('dbos', 'job_queue', 'dbos_enqueuer', array[]::text[], 'the enqueuer has no table right');
select ok(
  has_function_privilege('dbos_enqueuer', 'dbos.enqueue(text, jsonb, timestamptz, int, int, text, text, int)', 'execute')
  and has_function_privilege('dbos_enqueuer', 'dbos.get_job(bigint)', 'execute'),
  'the enqueuer may enqueue and read a job'
);
select ok(
  not has_function_privilege('dbos_enqueuer', 'dbos.claim_job(text, text[], int, int, text[])', 'execute')
  and not has_function_privilege('dbos_enqueuer', 'dbos.cancel_job(bigint)', 'execute'),
  'the enqueuer may not claim or cancel'
);

select ok(
  has_function_privilege('dbos_worker', 'dbos.claim_job(text, text[], int, int, text[])', 'execute')
  and has_function_privilege('dbos_worker', 'dbos.complete_jobs(bigint[], text, int[], jsonb[])', 'execute')
  and has_function_privilege('dbos_worker', 'dbos.rescue_expired_jobs(int)', 'execute'),
  'the worker may claim, complete and rescue'
);
select ok(
  not has_function_privilege('dbos_worker', 'dbos.cancel_job(bigint)', 'execute')
  and not has_function_privilege('dbos_worker', 'dbos.retry_dead_letter_job(bigint)', 'execute')
  and not has_function_privilege('dbos_worker', 'dbos.set_queue_limit(text, int)', 'execute'),
  'the worker may not cancel, replay or set limits'
);
select table_privs_are('dbos', 'job_queue', 'dbos_worker', array[]::text[], 'the worker has no right on job_queue');

select table_privs_are('dbos', 'job_queue', 'dbos_admin', array['SELECT'], 'the admin may read job_queue');
select ok(
  has_function_privilege('dbos_admin', 'dbos.cancel_job(bigint)', 'execute')
  and has_function_privilege('dbos_admin', 'dbos.prune_jobs(interval, int)', 'execute')
  and has_function_privilege('dbos_admin', 'dbos.retry_dead_letter_job(bigint)', 'execute'),
  'the admin may cancel, prune and replay'
);
select ok(
  not has_function_privilege('dbos_admin', 'dbos.claim_batch(text, text[], text[], text[], int, int)', 'execute'),
  'nobody but claim_job calls claim_batch'
);

select * from finish();
rollback;
