-- The dashboard's reads: dashboard_counts, dashboard_throughput,
-- dashboard_oldest_due_at, dashboard_workers, dashboard_list_jobs,
-- dashboard_list_dead_letter_jobs, get_dead_letter_job, and their indexes.

begin;
select plan(55);

delete from dbos.job_queue;
delete from dbos.failed_jobs;

-- Indexes and statistics.
select has_index(
  'dbos', 'job_queue', 'job_queue_job_name_idx', array['job_name', 'id'],
  'the job name index is on (job_name, id)'
);
select has_index(
  'dbos', 'job_queue', 'job_queue_cancelled_idx', array['id'],
  'the cancelled index is on id'
);
select is(
  (select pg_get_expr(indpred, indrelid) from pg_index
    where indexrelid = 'dbos.job_queue_cancelled_idx'::regclass),
  '(status = ''cancelled''::text)',
  'the cancelled index holds only cancelled rows'
);
select has_index(
  'dbos', 'job_queue', 'job_queue_error_idx', array['id'],
  'the error index is on id'
);
select is(
  (select pg_get_expr(indpred, indrelid) from pg_index
    where indexrelid = 'dbos.job_queue_error_idx'::regclass),
  '(error IS NOT NULL)',
  'the error index holds only rows with an error'
);
select has_index(
  'dbos', 'failed_jobs', 'failed_jobs_job_name_idx', array['job_name', 'failed_at', 'id'],
  'the dead-letter job name index is on (job_name, failed_at, id)'
);
select ok(
  exists (
    select from pg_statistic_ext
    where stxnamespace = 'dbos'::regnamespace and stxname = 'job_queue_name_status_stats'
  ),
  'job_queue has (job_name, status) statistics'
);

-- Known data: two pending 'dash.a' (one due, one in an hour), one pending
-- 'dash.b' due an hour ago at priority 5, one running 'dash.a' held by w1, one
-- completed 'dash.b' by w2 with an error from a first attempt, one cancelled
-- 'dash.a', two dead letters of 'dash.a' and one of 'dash.b'.
select dbos.enqueue('dash.a', '{"n": 1}') as running_job \gset
select id as claimed from dbos.claim_job('w1', array['dash.a']) \gset
select dbos.enqueue('dash.b', '{"n": 2}', max_attempts => 2) as completed_job \gset
select id as claimed from dbos.claim_job('w2', array['dash.b']) \gset
select dbos.fail_job(:completed_job, 'SMTP Timeout after 30 s', 0) as outcome \gset
select id as claimed from dbos.claim_job('w2', array['dash.b']) \gset
select dbos.complete_job(:completed_job) as completed \gset
select dbos.enqueue('dash.a', '{"n": 3}') as cancelled_job \gset
select dbos.cancel_job(:cancelled_job) as cancel_outcome \gset
select dbos.enqueue('dash.a', '{"n": 4}') as pending_due \gset
select dbos.enqueue('dash.a', '{"n": 5}', now() + interval '1 hour') as pending_later \gset
select dbos.enqueue(
  'dash.b', '{"n": 6}', now() - interval '1 hour', priority => 5
) as pending_old \gset
insert into dbos.failed_jobs (
  id, job_name, payload, error, attempt, max_attempts, original_created_at, failed_at
)
values
(900001, 'dash.a', '{"d": 1}', 'boom 1', 3, 3, now(), now() - interval '30 minutes'),
(900002, 'dash.a', '{"d": 2}', 'boom 2', 3, 3, now(), now() - interval '10 minutes'),
(900003, 'dash.b', '{"d": 3}', 'boom 3', 3, 3, now(), now());

-- dashboard_counts
select results_eq(
  $$ select job_name, status, jobs, estimated from dbos.dashboard_counts() order by 1, 2 $$,
  $$ values
    ('dash.a'::text, 'cancelled'::text, 1::bigint, false),
    ('dash.a', 'dead', 2, false),
    ('dash.a', 'pending', 2, false),
    ('dash.a', 'running', 1, false),
    ('dash.b', 'completed', 1, false),
    ('dash.b', 'dead', 1, false),
    ('dash.b', 'pending', 1, false) $$,
  'dashboard_counts counts small groups exactly, by job_name and status, dead letters too'
);
select results_eq(
  $$ select job_name, status, jobs, estimated from dbos.dashboard_counts(1) order by 2, 1 $$,
  $$ values
    (null::text, 'completed'::text, 2::bigint, true),
    (null, 'dead', 2, true),
    (null, 'pending', 2, true),
    ('dash.a', 'running', 1, false) $$,
  'without statistics, a group larger than exact_limit has a lower bound: exact_limit + 1'
);
analyze dbos.job_queue;
analyze dbos.failed_jobs;
select results_eq(
  $$ select status, sum(jobs)::int, bool_and(estimated)
     from dbos.dashboard_counts(1) group by status order by status $$,
  $$ values
    ('cancelled'::text, 1, true),
    ('completed', 1, true),
    ('dead', 3, true),
    ('pending', 3, true),
    ('running', 1, false) $$,
  'dashboard_counts estimates the groups larger than exact_limit from the statistics'
);
select results_eq(
  $$ select jobs from dbos.dashboard_counts(1)
     where job_name = 'dash.a' and status = 'pending' $$,
  $$ values (2::bigint) $$,
  'the estimates split a status by job name'
);
select throws_ok(
  $$ select * from dbos.dashboard_counts(0) $$,
  '22023', 'exact_limit must be at least 1, got 0',
  'dashboard_counts refuses an exact_limit below 1'
);
select throws_ok(
  $$ select * from dbos.dashboard_counts(null) $$,
  '22023', 'exact_limit must be at least 1, got null',
  'dashboard_counts refuses a NULL exact_limit'
);

-- dashboard_throughput
select is(
  (select count(*)::int from dbos.dashboard_throughput()), 60,
  'dashboard_throughput has one row per minute of the last hour'
);
select is(
  (select array_agg(minute order by minute) from dbos.dashboard_throughput(3)),
  array[
    date_trunc('minute', now()) - interval '2 minutes',
    date_trunc('minute', now()) - interval '1 minute',
    date_trunc('minute', now())
  ],
  'dashboard_throughput(3) lists the last 3 minutes, oldest first, the current one last'
);
select results_eq(
  $$ select completed, failed from dbos.dashboard_throughput(1) $$,
  $$ values (1::bigint, 1::bigint) $$,
  'the current minute counts the job completed and the job dead-lettered in it'
);
select is(
  (select sum(failed)::int from dbos.dashboard_throughput(60)), 3,
  'the last hour counts every dead letter of the last hour'
);
select is(
  (select sum(completed)::int from dbos.dashboard_throughput(60)), 1,
  'cancelled jobs are not counted as completed'
);
select throws_ok(
  $$ select * from dbos.dashboard_throughput(0) $$,
  '22023', 'minutes must be from 1 to 1440, got 0',
  'dashboard_throughput refuses 0 minutes'
);
select throws_ok(
  $$ select * from dbos.dashboard_throughput(1441) $$,
  '22023', 'minutes must be from 1 to 1440, got 1441',
  'dashboard_throughput refuses more than a day'
);

-- dashboard_oldest_due_at
select is(
  dbos.dashboard_oldest_due_at(),
  (select j.scheduled_for from dbos.job_queue as j where j.id = :pending_old),
  'dashboard_oldest_due_at is the oldest scheduled_for of the due pending jobs, across priorities'
);
update dbos.job_queue set scheduled_for = now() - interval '2 hours' where id = :pending_due;
select is(
  dbos.dashboard_oldest_due_at(), now() - interval '2 hours',
  'dashboard_oldest_due_at finds the oldest job at any priority'
);
update dbos.job_queue set scheduled_for = now() + interval '1 minute'
where id in (:pending_due, :pending_old);
select is(
  dbos.dashboard_oldest_due_at(), null,
  'dashboard_oldest_due_at is NULL when no pending job is due'
);
update dbos.job_queue set scheduled_for = now() where id = :pending_due;
update dbos.job_queue set scheduled_for = now() - interval '1 hour' where id = :pending_old;

-- dashboard_workers
select results_eq(
  $$ select worker_id, running, finished_recently from dbos.dashboard_workers() $$,
  $$ values ('w1'::text, 1::bigint, 0::bigint), ('w2', 0, 1) $$,
  'dashboard_workers lists workers holding jobs and workers that finished jobs lately'
);
select is(
  (select lease_expires_at from dbos.dashboard_workers() where worker_id = 'w1'),
  (select lease_expires_at from dbos.job_queue where id = :running_job),
  'dashboard_workers gives a holder''s latest lease'
);
select is(
  (select last_finished_at from dbos.dashboard_workers() where worker_id = 'w2'),
  (select completed_at from dbos.job_queue where id = :completed_job),
  'dashboard_workers gives when a worker last finished a job'
);
update dbos.job_queue set completed_at = now() - interval '1 hour' where id = :completed_job;
select results_eq(
  $$ select worker_id from dbos.dashboard_workers() $$,
  $$ values ('w1'::text) $$,
  'a worker that finished nothing lately and holds nothing is not listed'
);
select throws_ok(
  $$ select * from dbos.dashboard_workers(null) $$,
  '22023', 'recent must be 0 or a positive interval, got null',
  'dashboard_workers refuses a NULL interval'
);

-- dashboard_list_jobs
select results_eq(
  $$ select id from dbos.dashboard_list_jobs() $$,
  format(
    $$ values (%s::bigint), (%s), (%s), (%s), (%s), (%s) $$,
    :pending_old, :pending_later, :pending_due, :cancelled_job, :completed_job, :running_job
  ),
  'dashboard_list_jobs lists every job, newest first'
);
select results_eq(
  $$ select id from dbos.dashboard_list_jobs('pending') $$,
  format($$ values (%s::bigint), (%s), (%s) $$, :pending_old, :pending_later, :pending_due),
  'dashboard_list_jobs filters by status (pending)'
);
select results_eq(
  $$ select id from dbos.dashboard_list_jobs('running') $$,
  format($$ values (%s::bigint) $$, :running_job),
  'dashboard_list_jobs filters by status (running)'
);
select results_eq(
  $$ select id from dbos.dashboard_list_jobs('completed') $$,
  format($$ values (%s::bigint) $$, :completed_job),
  'dashboard_list_jobs filters by status (completed)'
);
select results_eq(
  $$ select id from dbos.dashboard_list_jobs('cancelled') $$,
  format($$ values (%s::bigint) $$, :cancelled_job),
  'dashboard_list_jobs filters by status (cancelled)'
);
select results_eq(
  $$ select id from dbos.dashboard_list_jobs(job_name => 'dash.b') $$,
  format($$ values (%s::bigint), (%s) $$, :pending_old, :completed_job),
  'dashboard_list_jobs filters by job name'
);
select results_eq(
  $$ select id from dbos.dashboard_list_jobs('pending', 'dash.b') $$,
  format($$ values (%s::bigint) $$, :pending_old),
  'dashboard_list_jobs combines the status and job name filters'
);
select results_eq(
  $$ select id from dbos.dashboard_list_jobs(error_contains => 'smtp timeout') $$,
  format($$ values (%s::bigint) $$, :completed_job),
  'dashboard_list_jobs finds a text in the error, ignoring case'
);
select is_empty(
  $$ select from dbos.dashboard_list_jobs(error_contains => '%') $$,
  'the error search takes the text literally (% is no wildcard)'
);
select results_eq(
  format($$ select id from dbos.dashboard_list_jobs(before_id => %s, max_rows => 2) $$, :pending_due),
  format($$ values (%s::bigint), (%s) $$, :cancelled_job, :completed_job),
  'before_id gives the next max_rows older jobs'
);
select results_eq(
  format($$ select id from dbos.dashboard_list_jobs(after_id => %s, max_rows => 2) $$, :completed_job),
  format($$ values (%s::bigint), (%s) $$, :pending_due, :cancelled_job),
  'after_id gives the max_rows jobs just newer, newest first'
);
select is_empty(
  format($$ select from dbos.dashboard_list_jobs(after_id => %s) $$, :pending_old),
  'after the newest job there is nothing'
);
select throws_ok(
  $$ select * from dbos.dashboard_list_jobs('dead') $$,
  '22023', 'status must be pending, running, completed or cancelled, got ''dead''',
  'dashboard_list_jobs refuses an unknown status'
);
select throws_ok(
  $$ select * from dbos.dashboard_list_jobs(max_rows => 0) $$,
  '22023', 'max_rows must be from 1 to 1000, got 0',
  'dashboard_list_jobs refuses max_rows below 1'
);
select throws_ok(
  $$ select * from dbos.dashboard_list_jobs(max_rows => 1001) $$,
  '22023', 'max_rows must be from 1 to 1000, got 1001',
  'dashboard_list_jobs refuses max_rows above 1000'
);

-- dashboard_list_dead_letter_jobs and get_dead_letter_job
select results_eq(
  $$ select id from dbos.dashboard_list_dead_letter_jobs() $$,
  $$ values (900003::bigint), (900002), (900001) $$,
  'dashboard_list_dead_letter_jobs lists dead letters, newest first'
);
select results_eq(
  $$ select id from dbos.dashboard_list_dead_letter_jobs('dash.a') $$,
  $$ values (900002::bigint), (900001) $$,
  'dashboard_list_dead_letter_jobs filters by job name'
);
select results_eq(
  $$ select id from dbos.dashboard_list_dead_letter_jobs(
       before_failed_at => (select failed_at from dbos.failed_jobs where id = 900003),
       before_id => 900003, max_rows => 1) $$,
  $$ values (900002::bigint) $$,
  'before_failed_at and before_id give the next page'
);
select throws_ok(
  $$ select * from dbos.dashboard_list_dead_letter_jobs(before_id => 900003) $$,
  '22023', 'before_failed_at and before_id go together: give both or neither',
  'dashboard_list_dead_letter_jobs refuses half a page key'
);
select throws_ok(
  $$ select * from dbos.dashboard_list_dead_letter_jobs(max_rows => null) $$,
  '22023', 'max_rows must be from 1 to 1000, got null',
  'dashboard_list_dead_letter_jobs refuses a NULL max_rows'
);
select results_eq(
  $$ select id, job_name, payload, error from dbos.get_dead_letter_job(900002) $$,
  $$ values (900002::bigint, 'dash.a'::text, '{"d": 2}'::jsonb, 'boom 2'::text) $$,
  'get_dead_letter_job returns the dead letter''s row'
);
select is_empty(
  format($$ select from dbos.get_dead_letter_job(%s) $$, :running_job),
  'get_dead_letter_job of a job that is not dead returns no row'
);

-- Volatility and privileges: readers, for the admin only.
select volatility_is(
  'dbos', 'dashboard_counts', array['integer'], 'stable', 'dashboard_counts is stable'
);
select volatility_is(
  'dbos', 'dashboard_list_jobs',
  array['text', 'text', 'text', 'bigint', 'bigint', 'integer'], 'stable',
  'dashboard_list_jobs is stable'
);
select ok(
  has_function_privilege('dbos_admin', 'dbos.dashboard_counts(int)', 'execute')
  and has_function_privilege('dbos_admin', 'dbos.dashboard_throughput(int)', 'execute')
  and has_function_privilege('dbos_admin', 'dbos.dashboard_oldest_due_at()', 'execute')
  and has_function_privilege('dbos_admin', 'dbos.dashboard_workers(interval)', 'execute')
  and has_function_privilege(
    'dbos_admin', 'dbos.dashboard_list_jobs(text, text, text, bigint, bigint, int)', 'execute'
  )
  and has_function_privilege(
    'dbos_admin', 'dbos.dashboard_list_dead_letter_jobs(text, timestamptz, bigint, int)', 'execute'
  )
  and has_function_privilege('dbos_admin', 'dbos.get_dead_letter_job(bigint)', 'execute'),
  'the admin may call every dashboard function'
);
select ok(
  not has_function_privilege('dbos_worker', 'dbos.dashboard_counts(int)', 'execute')
  and not has_function_privilege('dbos_enqueuer', 'dbos.dashboard_list_jobs(text, text, text, bigint, bigint, int)', 'execute')
  and not has_function_privilege('public', 'dbos.get_dead_letter_job(bigint)', 'execute'),
  'the worker, the enqueuer and PUBLIC may not read the dashboard'
);
select is(
  (select bool_and(p.prosecdef) from pg_proc as p
    where p.pronamespace = 'dbos'::regnamespace
      and (p.proname like 'dashboard\_%' or p.proname = 'get_dead_letter_job')),
  true,
  'every dashboard function is SECURITY DEFINER'
);

select * from finish();
rollback;
