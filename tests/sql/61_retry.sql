-- dbos.retry_dead_letter_job (replay a dead letter) and dbos.retry_job
-- (the CLI's "retry": replay a dead letter or make a pending job due now).

begin;
select plan(20);

-- Dead-letter a job after two failures.
select dbos.enqueue('retry.dead', '{"orderId": "456"}', max_attempts => 2) as dead_job \gset
select id as claimed from dbos.claim_job('w1', array['retry.dead']) \gset
select dbos.fail_job(:dead_job, 'first') as outcome \gset
update dbos.job_queue set scheduled_for = now() where id = :dead_job;
select id as claimed from dbos.claim_job('w1', array['retry.dead']) \gset
select dbos.fail_job(:dead_job, 'second') as outcome \gset

select dbos.retry_dead_letter_job(:dead_job) as replayed_job \gset
select isnt(
  :replayed_job::bigint, :dead_job::bigint,
  'retry_dead_letter_job returns a new job id'
);
select results_eq(
  $$
    select job_name, payload, max_attempts, attempt, status, scheduled_for, error,
      started_at, locked_by, lease_token
    from dbos.job_queue where id = $$ || :replayed_job,
  $$
    values (
      'retry.dead'::text, '{"orderId": "456"}'::jsonb, 2, 0, 'pending'::text, now(), null::text,
      null::timestamptz, null::text, 0
    )
  $$,
  'the replayed job has the same job_name, payload and max_attempts, a fresh attempt counter, due now'
);
select is_empty(
  $$ select from dbos.failed_jobs where id = $$ || :dead_job,
  'retry_dead_letter_job deletes the dead letter'
);
select results_eq(
  $$ select id, attempt from dbos.claim_job('w1', array['retry.dead']) $$,
  format($$ values (%s::bigint, 1) $$, :replayed_job),
  'the replayed job is claimed as attempt 1'
);

select count(*) as jobs_before_errors from dbos.job_queue \gset
select throws_ok(
  format($$ select dbos.retry_dead_letter_job(%s) $$, :dead_job),
  'P0002', null,
  'retry_dead_letter_job of an id already replayed raises P0002'
);
select throws_ok(
  $$ select dbos.retry_dead_letter_job(-1) $$,
  'P0002', null,
  'retry_dead_letter_job of an unknown id raises P0002'
);
select throws_ok(
  format($$ select dbos.retry_dead_letter_job(%s) $$, :replayed_job),
  'P0002', null,
  'retry_dead_letter_job of a live job (not dead-lettered) raises P0002'
);
select is(
  (select count(*) from dbos.job_queue), :jobs_before_errors::bigint,
  'a refused replay enqueues nothing'
);

-- retry_job of a dead letter replays it.
select dbos.enqueue('retry.job-dead', '"p"', max_attempts => 1) as job_dead \gset
select id as claimed from dbos.claim_job('w1', array['retry.job-dead']) \gset
select dbos.fail_job(:job_dead, 'fatal') as outcome \gset
select dbos.retry_job(:job_dead) as job_dead_replayed \gset
select isnt(
  :job_dead_replayed::bigint, :job_dead::bigint,
  'retry_job of a dead-lettered job returns a new id'
);
select results_eq(
  $$ select job_name, payload, max_attempts, attempt, status from dbos.job_queue where id = $$ || :job_dead_replayed,
  $$ values ('retry.job-dead'::text, '"p"'::jsonb, 1, 0, 'pending'::text) $$,
  'retry_job of a dead-lettered job replays it like retry_dead_letter_job'
);
select is_empty(
  $$ select from dbos.failed_jobs where id = $$ || :job_dead,
  'retry_job of a dead-lettered job deletes the dead letter'
);

-- retry_job of a pending job makes it due now, keeping its history.
select dbos.enqueue('retry.waiting', max_attempts => 3) as waiting_job \gset
select id as claimed from dbos.claim_job('w1', array['retry.waiting']) \gset
select dbos.fail_job(:waiting_job, 'flaky', 60000) as outcome \gset
select is(
  dbos.retry_job(:waiting_job), :waiting_job::bigint,
  'retry_job of a job waiting for its retry returns its own id'
);
select results_eq(
  $$ select status, scheduled_for, attempt, error from dbos.job_queue where id = $$ || :waiting_job,
  $$ values ('pending'::text, now(), 1, 'flaky'::text) $$,
  'retry_job makes a waiting retry due now, keeping attempt and error'
);
select dbos.enqueue('retry.future', '{}', now() + interval '1 day') as future_job \gset
select is(
  dbos.retry_job(:future_job), :future_job::bigint,
  'retry_job of a job scheduled in the future returns its id'
);
select is(
  (select scheduled_for from dbos.job_queue where id = :future_job), now(),
  'retry_job makes a scheduled job due now'
);

-- Running and finished jobs cannot be retried.
select dbos.enqueue('retry.running') as running_job \gset
select id as claimed from dbos.claim_job('w1', array['retry.running']) \gset
select throws_ok(
  format($$ select dbos.retry_job(%s) $$, :running_job),
  '55000', null,
  'retry_job of a running job raises 55000'
);
select dbos.complete_job(:running_job) as completed \gset
select throws_ok(
  format($$ select dbos.retry_job(%s) $$, :running_job),
  '55000', null,
  'retry_job of a completed job raises 55000'
);
select is(
  (select status from dbos.job_queue where id = :running_job), 'completed',
  'a refused retry leaves the completed job unchanged'
);
select dbos.enqueue('retry.cancelled') as cancelled_job \gset
select dbos.cancel_job(:cancelled_job) as cancel_outcome \gset
select throws_ok(
  format($$ select dbos.retry_job(%s) $$, :cancelled_job),
  '55000', null,
  'retry_job of a cancelled job raises 55000'
);
select throws_ok(
  $$ select dbos.retry_job(-1) $$,
  'P0002', null,
  'retry_job of an unknown id raises P0002'
);

select * from finish();
rollback;
