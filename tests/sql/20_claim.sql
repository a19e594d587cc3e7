-- dbos.claim_job: which jobs it takes, in which order, and what a claim
-- writes; dbos.seconds_until_next_job: how long an idle worker may sleep.

begin;
select plan(29);

-- Only due jobs of the asked names.
select dbos.enqueue('claim.due') as due_job \gset
select dbos.enqueue('claim.due', '{}', now() + interval '1 second') as future_job \gset
select dbos.enqueue('claim.other') as other_job \gset

select is_empty(
  $$ select from dbos.claim_job('w1', array['claim.nobody']) $$,
  'claim_job finds nothing when no job of the asked names is due'
);
select results_eq(
  $$ select id from dbos.claim_job('w1', array['claim.due'], 10) $$,
  array[:due_job::bigint],
  'claim_job takes due jobs of the asked names only, never future ones'
);
select is(
  (select status from dbos.job_queue where id = :future_job),
  'pending',
  'a job scheduled in the future stays pending'
);
select is(
  (select status from dbos.job_queue where id = :other_job),
  'pending',
  'a job of another name stays pending'
);
select is_empty(
  $$ select from dbos.claim_job('w2', array['claim.due'], 10) $$,
  'a running job is not claimed again'
);
select results_eq(
  $$ select id from dbos.claim_job('w2') $$,
  array[:other_job::bigint],
  'claim_job without job_names takes a due job of any name'
);
select is_empty(
  $$ select from dbos.claim_job('w2', '{}'::text[]) $$,
  'claim_job with an empty job_names array takes nothing'
);

-- What a claim writes.
delete from dbos.job_queue;
select dbos.enqueue('claim.row', '{"k": 1}', now() - interval '10 minutes') as row_job \gset
update dbos.job_queue set progress = 40, progress_message = 'old attempt' where id = :row_job;

select results_eq(
  $$
    select
      id, job_name, payload, status, attempt, started_at, scheduled_for,
      locked_by, lease_expires_at, lease_token, completed_at,
      progress, progress_message
    from dbos.claim_job('worker-a', lease_seconds => 30)
  $$,
  format(
    $$
      values (
        %s::bigint, 'claim.row'::text, '{"k": 1}'::jsonb, 'running'::text, 1,
        now(), now(), 'worker-a'::text, now() + interval '30 seconds', 1,
        null::timestamptz, null::smallint, null::text
      )
    $$,
    :row_job
  ),
  'claim_job returns the job running, attempt + 1, started now, scheduled_for = claim time, held by the worker under a lease of lease_seconds, token 1, progress reset'
);
select results_eq(
  $$
    select status, attempt, started_at, scheduled_for, locked_by, lease_expires_at, lease_token
    from dbos.job_queue where id = $$ || :row_job,
  $$ values ('running'::text, 1, now(), now(), 'worker-a'::text, now() + interval '30 seconds', 1) $$,
  'claim_job writes the returned state to the row'
);

-- The default lease is 60 seconds; every claim takes a new lease_token.
select dbos.enqueue('claim.token') as token_job \gset
select is(
  (select lease_expires_at from dbos.claim_job('worker-a', array['claim.token'])),
  now() + interval '60 seconds',
  'claim_job leases for 60 seconds by default'
);
select is(
  dbos.release_jobs('worker-a', array[:token_job::bigint]),
  1,
  'the first claim is released'
);
select results_eq(
  $$ select attempt, lease_token from dbos.claim_job('worker-a', array['claim.token']) $$,
  $$ values (1, 2) $$,
  'a second claim of the same job, even by the same worker, has lease_token 2'
);

-- FIFO: oldest scheduled_for first, then id.
delete from dbos.job_queue;
select dbos.enqueue('claim.fifo', '{"n": "late"}', now() - interval '1 minute') as late_job \gset
select dbos.enqueue('claim.fifo', '{"n": "early-1"}', now() - interval '2 minutes') as early_job_1 \gset
select dbos.enqueue('claim.fifo', '{"n": "early-2"}', now() - interval '2 minutes') as early_job_2 \gset
select dbos.enqueue('claim.fifo', '{"n": "now"}') as now_job \gset

select results_eq(
  $$ select id from dbos.claim_job('w1') $$,
  array[:early_job_1::bigint],
  'claim_job takes the oldest scheduled_for first'
);
select results_eq(
  $$ select id from dbos.claim_job('w1') $$,
  array[:early_job_2::bigint],
  'claim_job breaks a tie of scheduled_for by id'
);
select results_eq(
  $$ select id from dbos.claim_job('w1', batch_size => 5) order by id $$,
  array[:late_job::bigint, :now_job::bigint],
  'claim_job takes the rest in one batch'
);

-- batch_size caps the claim.
delete from dbos.job_queue;
select array(select dbos.enqueue_many(
  array['claim.batch', 'claim.batch', 'claim.batch', 'claim.batch', 'claim.batch'],
  array['{}', '{}', '{}', '{}', '{}']::jsonb[],
  array[
    now() - interval '5 seconds', now() - interval '4 seconds',
    now() - interval '3 seconds', now() - interval '2 seconds',
    now() - interval '1 second'
  ]
)) as batch_jobs \gset
select results_eq(
  $$ select count(*)::int from dbos.claim_job('w1', batch_size => 3) $$,
  array[3],
  'claim_job takes at most batch_size jobs'
);
select results_eq(
  $$ select scheduled_for from dbos.job_queue where status = 'pending' order by scheduled_for $$,
  $$ values (now() - interval '2 seconds'), (now() - interval '1 second') $$,
  'a batch takes the oldest jobs and leaves the newest pending'
);
select is(
  (select count(*)::int from dbos.claim_job('w1', batch_size => 10)),
  2,
  'claim_job takes fewer than batch_size when fewer are due'
);

-- Bad arguments.
select throws_ok(
  $$ select dbos.claim_job(null) $$, '22023', null,
  'claim_job refuses a NULL worker_id with 22023'
);
select throws_ok(
  $$ select dbos.claim_job('') $$, '22023', null,
  'claim_job refuses an empty worker_id with 22023'
);
select throws_ok(
  $$ select dbos.claim_job('w1', batch_size => 0) $$, '22023', null,
  'claim_job refuses batch_size 0 with 22023'
);
select throws_ok(
  $$ select dbos.claim_job('w1', batch_size => null) $$, '22023', null,
  'claim_job refuses a NULL batch_size with 22023'
);
select throws_ok(
  $$ select dbos.claim_job('w1', lease_seconds => 0) $$, '22023', null,
  'claim_job refuses lease_seconds 0 with 22023'
);
select throws_ok(
  $$ select dbos.claim_job('w1', lease_seconds => null) $$, '22023', null,
  'claim_job refuses a NULL lease_seconds with 22023'
);

-- seconds_until_next_job
delete from dbos.job_queue;
select is(
  dbos.seconds_until_next_job(),
  null,
  'seconds_until_next_job is NULL when no job is pending'
);
select dbos.enqueue('claim.sleep', '{}', now() + interval '90 seconds') as sleep_job \gset
select dbos.enqueue('claim.sleep-other', '{}', now() + interval '30 seconds') as sleep_other_job \gset
select is(
  dbos.seconds_until_next_job(array['claim.sleep']),
  90::float8,
  'seconds_until_next_job counts the seconds until the earliest pending job of job_names'
);
select is(
  dbos.seconds_until_next_job(),
  30::float8,
  'seconds_until_next_job without job_names looks at every name'
);
select dbos.enqueue('claim.sleep', '{}', now() - interval '5 seconds') as sleep_due_job \gset
select cmp_ok(
  dbos.seconds_until_next_job(array['claim.sleep']),
  '<=',
  0::float8,
  'seconds_until_next_job is 0 or less when a job is due'
);
select id as claimed_sleep_job from dbos.claim_job('w1', array['claim.sleep']) \gset
select is(
  dbos.seconds_until_next_job(array['claim.sleep']),
  90::float8,
  'seconds_until_next_job ignores running jobs'
);

select * from finish();
rollback;
