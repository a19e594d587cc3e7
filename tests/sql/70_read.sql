-- Reading the queue: dbos.get_job, dbos.list_jobs,
-- dbos.list_dead_letter_jobs and the view dbos.queue_stats.

begin;
select plan(22);

delete from dbos.job_queue;
delete from dbos.failed_jobs;

-- Known data: 2 pending, 1 running, 1 completed, 1 cancelled of 'read.a',
-- 1 pending of 'read.b', and 2 dead letters of 'read.a', 1 of 'read.b'.
select array(
  select dbos.enqueue_many(
    array['read.a', 'read.a', 'read.b'],
    array['{"d": 1}', '{"d": 2}', '{"d": 3}']::jsonb[],
    null,
    array[1, 1, 1]
  )
) as dead_jobs \gset
select array(
  select id from dbos.claim_job('w1', array['read.a', 'read.b'], 3) order by id
) as claimed \gset
select array(
  select job_id from dbos.fail_jobs(:'dead_jobs'::bigint[], array['e1', 'e2', 'e3'])
) as failed \gset
-- Dead letters failed at different times: the second one is the newest.
update dbos.failed_jobs as d
set failed_at = now() - make_interval(mins => x.minutes_ago)
from unnest(:'dead_jobs'::bigint[], array[30, 10, 20]) as x (id, minutes_ago)
where d.id = x.id;

-- Claims take the oldest due job, so the jobs to claim are enqueued first.
select dbos.enqueue('read.a', '{"n": 3}') as running_job \gset
select id as claimed from dbos.claim_job('w1', array['read.a']) \gset
select dbos.enqueue('read.a', '{"n": 4}') as completed_job \gset
select id as claimed from dbos.claim_job('w1', array['read.a']) \gset
select dbos.complete_job(:completed_job) as completed \gset
select dbos.enqueue('read.a', '{"n": 1}') as pending_1 \gset
select dbos.enqueue('read.a', '{"n": 2}', now() + interval '1 hour') as pending_2 \gset
select dbos.enqueue('read.a', '{"n": 5}') as cancelled_job \gset
select dbos.cancel_job(:cancelled_job) as cancel_outcome \gset
select dbos.enqueue('read.b', '{"n": 6}') as pending_b \gset

-- get_job
select results_eq(
  $$ select id, job_name, payload, status from dbos.get_job($$ || :running_job || ')',
  format($$ values (%s::bigint, 'read.a'::text, '{"n": 3}'::jsonb, 'running'::text) $$, :running_job),
  'get_job returns the job''s row'
);
select is_empty(
  $$ select from dbos.get_job(-1) $$,
  'get_job of an unknown id returns no row'
);
select is_empty(
  format($$ select from dbos.get_job(%s) $$, (:'dead_jobs'::bigint[])[1]),
  'get_job of a dead-lettered job returns no row'
);
select is(
  (select count(*)::int from dbos.get_job(:pending_b)), 1,
  'get_job returns exactly one row for a known job'
);

-- list_jobs
select results_eq(
  $$ select id from dbos.list_jobs() $$,
  format(
    $$ values (%s::bigint), (%s), (%s), (%s), (%s), (%s) $$,
    :pending_b, :cancelled_job, :pending_2, :pending_1, :completed_job, :running_job
  ),
  'list_jobs returns every job, newest first'
);
select results_eq(
  $$ select id from dbos.list_jobs('pending') $$,
  format($$ values (%s::bigint), (%s), (%s) $$, :pending_b, :pending_2, :pending_1),
  'list_jobs(''pending'') returns the pending jobs, newest first'
);
select results_eq(
  $$ select id from dbos.list_jobs(status => 'running') $$,
  array[:running_job::bigint],
  'list_jobs(status => ''running'') returns the running jobs'
);
select results_eq(
  $$ select id from dbos.list_jobs('completed') $$,
  array[:completed_job::bigint],
  'list_jobs(''completed'') returns the completed jobs'
);
select results_eq(
  $$ select id from dbos.list_jobs('cancelled') $$,
  array[:cancelled_job::bigint],
  'list_jobs(''cancelled'') returns the cancelled jobs'
);
select results_eq(
  $$ select id from dbos.list_jobs(max_rows => 2) $$,
  format($$ values (%s::bigint), (%s) $$, :pending_b, :cancelled_job),
  'list_jobs(max_rows => 2) returns the 2 newest jobs'
);
select results_eq(
  $$ select id from dbos.list_jobs(null, null) $$,
  $$ select id from dbos.list_jobs() $$,
  'list_jobs with NULL arguments takes the defaults'
);
select throws_ok(
  $$ select dbos.list_jobs('failed') $$, '22023', null,
  'list_jobs refuses an unknown status with 22023'
);
select throws_ok(
  $$ select dbos.list_jobs('dead') $$, '22023', null,
  'list_jobs refuses status dead (dead letters are listed by list_dead_letter_jobs) with 22023'
);
select throws_ok(
  $$ select dbos.list_jobs(max_rows => 0) $$, '22023', null,
  'list_jobs refuses max_rows 0 with 22023'
);

-- list_dead_letter_jobs
select results_eq(
  $$ select id, job_name, payload, error from dbos.list_dead_letter_jobs() $$,
  format(
    $$ values (%s::bigint, 'read.a'::text, '{"d": 2}'::jsonb, 'e2'::text), (%s, 'read.b', '{"d": 3}', 'e3'), (%s, 'read.a', '{"d": 1}', 'e1') $$,
    (:'dead_jobs'::bigint[])[2], (:'dead_jobs'::bigint[])[3], (:'dead_jobs'::bigint[])[1]
  ),
  'list_dead_letter_jobs returns the dead letters, most recently failed first'
);
select results_eq(
  $$ select id from dbos.list_dead_letter_jobs(1) $$,
  array[(:'dead_jobs'::bigint[])[2]],
  'list_dead_letter_jobs(1) returns the newest dead letter only'
);
select is(
  (select count(*)::int from dbos.list_dead_letter_jobs(null)), 3,
  'list_dead_letter_jobs with a NULL max_rows takes the default limit'
);
select throws_ok(
  $$ select dbos.list_dead_letter_jobs(0) $$, '22023', null,
  'list_dead_letter_jobs refuses max_rows 0 with 22023'
);
select is(
  (select count(*)::int from dbos.list_jobs(max_rows => 1000)), 6,
  'dead letters are not listed by list_jobs'
);

-- queue_stats
select set_eq(
  $$ select job_name, status, jobs from dbos.queue_stats $$,
  $$
    values
      ('read.a'::text, 'pending'::text, 2::bigint),
      ('read.a', 'running', 1),
      ('read.a', 'completed', 1),
      ('read.a', 'cancelled', 1),
      ('read.a', 'dead', 2),
      ('read.b', 'pending', 1),
      ('read.b', 'dead', 1)
  $$,
  'queue_stats counts jobs by job_name and status, dead letters as status dead'
);

-- Default limits are 50.
select array(
  select dbos.enqueue_many(array_fill('read.many'::text, array[60]), array_fill('{}'::jsonb, array[60]))
) as many_jobs \gset
select is(
  (select count(*)::int from dbos.list_jobs()), 50,
  'list_jobs returns at most 50 jobs by default'
);
select is(
  (select min(id) from dbos.list_jobs()), (:'many_jobs'::bigint[])[11],
  'the default 50 are the newest'
);

select * from finish();
rollback;
