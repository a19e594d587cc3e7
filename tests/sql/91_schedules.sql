-- Periodic jobs: dbos.schedule (upsert; re-declaring an unchanged schedule
-- keeps its next tick, a changed cron recomputes it), dbos.unschedule, and
-- dbos.enqueue_due_schedules (one job per due schedule, scheduled_for = the
-- tick, next_run_at advanced past now(): missed ticks run once).
-- Inside this transaction now() is constant; a tick is made due by moving
-- next_run_at back.

begin;
select plan(40);

prepare schedule_row(text) as
select cron, timezone, job_name, payload, queue_name, priority, max_attempts, next_run_at, last_run_at
from dbos.schedules where schedule_name = $1;

-- schedule: create, with the defaults.
select is(
  dbos.schedule('nightly-report', '0 3 * * *', 'report.build'),
  dbos.cron_next('0 3 * * *', now()),
  'schedule returns the next tick of the cron from now'
);
select results_eq(
  'execute schedule_row(''nightly-report'')',
  $$
    values (
      '0 3 * * *'::text, 'UTC'::text, 'report.build'::text, '{}'::jsonb, 'default'::text, 0, 3,
      dbos.cron_next('0 3 * * *', now()), null::timestamptz
    )
  $$,
  'schedule stores the schedule with the defaults: UTC, payload {}, queue default, priority 0, 3 attempts, never run'
);
select is(
  (select created_at from dbos.schedules where schedule_name = 'nightly-report'),
  now(),
  'schedule stores when the schedule was created'
);

select dbos.schedule(
  'ny-digest', '30 8 * * mon-fri', 'digest.send', '{"list": "all"}',
  'America/New_York', 'mail', 5, 7
) as ny_next \gset
select results_eq(
  'execute schedule_row(''ny-digest'')',
  $$
    values (
      '30 8 * * mon-fri'::text, 'America/New_York'::text, 'digest.send'::text,
      '{"list": "all"}'::jsonb, 'mail'::text, 5, 7,
      dbos.cron_next('30 8 * * mon-fri', now(), 'America/New_York'), null::timestamptz
    )
  $$,
  'schedule stores every argument given, the next tick read in the time zone'
);

select dbos.schedule('nulls', '@hourly', 'nulls.job', null, null, null, null, null) as nulls_next \gset
select results_eq(
  $$ select timezone, payload, queue_name, priority, max_attempts from dbos.schedules where schedule_name = 'nulls' $$,
  $$ values ('UTC'::text, '{}'::jsonb, 'default'::text, 0, 3) $$,
  'schedule takes the defaults for NULL optional arguments'
);

-- Re-declaring an unchanged schedule keeps its next tick.
update dbos.schedules set next_run_at = now() - interval '5 minutes' where schedule_name = 'nightly-report';
select is(
  dbos.schedule('nightly-report', '0 3 * * *', 'report.build'),
  now() - interval '5 minutes',
  'schedule of an unchanged schedule returns its kept next tick'
);
select is(
  (select next_run_at from dbos.schedules where schedule_name = 'nightly-report'),
  now() - interval '5 minutes',
  're-declaring an unchanged schedule (as every worker does at start) keeps its next tick'
);
select is(
  dbos.schedule('nightly-report', '0 3 * * *', 'report.build-v2', '{"v": 2}', 'UTC', 'reports', 9, 1),
  now() - interval '5 minutes',
  'a schedule whose job changed but not its cron or time zone keeps its next tick'
);
select results_eq(
  $$ select job_name, payload, queue_name, priority, max_attempts from dbos.schedules where schedule_name = 'nightly-report' $$,
  $$ values ('report.build-v2'::text, '{"v": 2}'::jsonb, 'reports'::text, 9, 1) $$,
  're-declaring a schedule updates its job, payload, queue, priority and attempts'
);
select is(
  dbos.schedule('nightly-report', '0 4 * * *', 'report.build-v2', '{"v": 2}', 'UTC', 'reports', 9, 1),
  dbos.cron_next('0 4 * * *', now()),
  'a changed cron recomputes the next tick from now'
);
update dbos.schedules set next_run_at = now() - interval '5 minutes' where schedule_name = 'nightly-report';
select is(
  dbos.schedule('nightly-report', '0 4 * * *', 'report.build-v2', '{"v": 2}', 'Europe/Paris', 'reports', 9, 1),
  dbos.cron_next('0 4 * * *', now(), 'Europe/Paris'),
  'a changed time zone recomputes the next tick from now'
);
select is(
  (select count(*)::int from dbos.schedules where schedule_name = 'nightly-report'),
  1,
  'schedule upserts: one row per schedule name'
);

-- Bad schedules raise and store nothing.
select throws_ok(
  $$ select dbos.schedule('bad', '61 * * * *', 'bad.job') $$, '22023', null,
  'schedule refuses a bad cron with 22023'
);
select throws_ok(
  $$ select dbos.schedule('bad', '* * * *', 'bad.job') $$, '22023', null,
  'schedule refuses a cron of 4 fields with 22023'
);
select throws_ok(
  $$ select dbos.schedule('bad', '* * * * *', 'bad.job', '{}', 'Nowhere/Atlantis') $$, '22023', null,
  'schedule refuses an unknown time zone with 22023'
);
select throws_ok(
  $$ select dbos.schedule('', '* * * * *', 'bad.job') $$, '22023', null,
  'schedule refuses an empty schedule_name with 22023'
);
select throws_ok(
  $$ select dbos.schedule(null, '* * * * *', 'bad.job') $$, '22023', null,
  'schedule refuses a NULL schedule_name with 22023'
);
select throws_ok(
  $$ select dbos.schedule('bad', '* * * * *', '') $$, '22023', null,
  'schedule refuses an empty job_name with 22023'
);
select throws_ok(
  format($$ select dbos.schedule('bad', '* * * * *', %L) $$, repeat('j', 256)), '22023', null,
  'schedule refuses a job_name of 256 characters with 22023'
);
select throws_ok(
  $$ select dbos.schedule('bad', '* * * * *', 'bad.job', max_attempts => 0) $$, null, null,
  'schedule refuses max_attempts 0'
);
select is_empty(
  $$ select from dbos.schedules where schedule_name = 'bad' $$,
  'a refused schedule stores nothing'
);
select throws_ok(
  $$ select dbos.schedule('bad-queue', '* * * * *', 'bad.job', queue_name => '') $$, '22023', null,
  'schedule refuses an empty queue_name with 22023 (enqueue would refuse every tick)'
);
select throws_ok(
  $$ select dbos.schedule('nulls', 'not a cron', 'nulls.job') $$, '22023', null,
  'schedule refuses a bad cron for an existing schedule with 22023'
);
select is(
  (select cron from dbos.schedules where schedule_name = 'nulls'),
  '@hourly',
  'a refused re-declaration leaves the schedule unchanged'
);

-- enqueue_due_schedules: nothing due, nothing enqueued.
select count(*) as jobs_before from dbos.job_queue \gset
select is(dbos.enqueue_due_schedules(), 0, 'enqueue_due_schedules enqueues nothing when no tick is due');
select is(
  (select count(*) from dbos.job_queue), :jobs_before::bigint,
  'no job is enqueued before its tick'
);

-- No stored schedule can make every tick fail.
update dbos.schedules set next_run_at = now() - interval '1 minute';
select lives_ok(
  $$ select dbos.enqueue_due_schedules() $$,
  'enqueue_due_schedules succeeds when every stored schedule is due (no schedule blocks the others)'
);

-- One due tick: one job at the tick, the schedule moves on.
delete from dbos.schedules;
select dbos.schedule('every-5', '*/5 * * * *', 'tick.job', '{"k": 1}', 'UTC', 'ticks', 4, 2) as first_tick \gset
update dbos.schedules set next_run_at = date_trunc('minute', now()) - interval '10 minutes' where schedule_name = 'every-5';
select date_trunc('minute', now()) - interval '10 minutes' as due_tick \gset
select is(dbos.enqueue_due_schedules(), 1, 'enqueue_due_schedules enqueues one job for a due schedule');
select results_eq(
  $$ select job_name, payload, scheduled_for, queue_name, priority, max_attempts, status from dbos.job_queue where job_name = 'tick.job' $$,
  format(
    $$ values ('tick.job'::text, '{"k": 1}'::jsonb, %L::timestamptz, 'ticks'::text, 4, 2, 'pending'::text) $$,
    :'due_tick'
  ),
  'the job has the schedule''s job_name, payload, queue, priority and attempts, scheduled_for = the tick'
);
select results_eq(
  $$ select last_run_at, next_run_at from dbos.schedules where schedule_name = 'every-5' $$,
  format(
    $$ values (%L::timestamptz, dbos.cron_next('*/5 * * * *', now())) $$,
    :'due_tick'
  ),
  'the schedule records the tick as last_run_at and moves to its next tick after now()'
);
select is(dbos.enqueue_due_schedules(), 0, 'calling enqueue_due_schedules again enqueues nothing: each tick once');
select results_eq(
  $$ select count(*)::int from dbos.claim_job('w1', array['tick.job'], 10) $$,
  array[1],
  'the enqueued job is due and claimed'
);

-- Downtime: missed ticks run once, then the schedule resumes.
delete from dbos.job_queue;
update dbos.schedules set next_run_at = now() - interval '3 hours' where schedule_name = 'every-5';
select is(dbos.enqueue_due_schedules(), 1, 'after 3 hours of downtime a schedule of every 5 minutes enqueues one job');
select ok(
  (select next_run_at > now() from dbos.schedules where schedule_name = 'every-5'),
  'after downtime the next tick is after now(), not one of the missed ticks'
);

-- Several schedules: only the due ones.
delete from dbos.job_queue;
delete from dbos.schedules;
select dbos.schedule('due-a', '@hourly', 'due.a') as next_a \gset
select dbos.schedule('due-b', '@daily', 'due.b') as next_b \gset
select dbos.schedule('not-due', '@hourly', 'not.due') as next_c \gset
update dbos.schedules set next_run_at = now() - interval '1 minute' where schedule_name in ('due-a', 'due-b');
select is(dbos.enqueue_due_schedules(), 2, 'enqueue_due_schedules enqueues one job per due schedule');
select results_eq(
  $$ select job_name from dbos.job_queue order by job_name $$,
  $$ values ('due.a'::text), ('due.b') $$,
  'only due schedules enqueue a job'
);
select is(
  (select next_run_at from dbos.schedules where schedule_name = 'not-due'),
  :'next_c'::timestamptz,
  'a schedule not due keeps its next tick'
);

-- unschedule: removes the schedule, not its jobs.
select is(dbos.unschedule('due-a'), true, 'unschedule of an existing schedule returns true');
select is(dbos.unschedule('due-a'), false, 'unschedule of an unknown schedule returns false');
select is(
  (select count(*)::int from dbos.job_queue where job_name = 'due.a'),
  1,
  'jobs already enqueued by a removed schedule stay'
);

select * from finish();
rollback;
