-- dbos.cancel_job: a pending job is cancelled at once, a running one is
-- marked and ends cancelled when its worker fails, loses or releases it.

begin;
select plan(24);

-- Pending: cancelled, never claimed.
select dbos.enqueue('cancel.pending') as pending_job \gset
select dbos.enqueue('cancel.pending', '{}', now() + interval '1 hour') as future_job \gset

select is(
  dbos.cancel_job(:pending_job), 'cancelled',
  'cancel_job of a pending job returns cancelled'
);
select results_eq(
  $$ select status, completed_at, cancel_requested from dbos.job_queue where id = $$ || :pending_job,
  $$ values ('cancelled'::text, now(), false) $$,
  'a cancelled pending job is cancelled, finished at now()'
);
select is(
  dbos.cancel_job(:future_job), 'cancelled',
  'cancel_job of a job scheduled in the future returns cancelled'
);
update dbos.job_queue set scheduled_for = now() - interval '1 hour' where id = :future_job;
select is_empty(
  $$ select from dbos.claim_job('w1', array['cancel.pending'], 10) $$,
  'a cancelled job is never claimed, even once its time has come'
);
select is(
  dbos.cancel_job(:pending_job), 'cancelled',
  'cancelling a cancelled job again returns cancelled'
);

-- Running: marked; the holder is told and the job ends cancelled.
select dbos.enqueue('cancel.running') as running_job \gset
select lease_token as token from dbos.claim_job('w1', array['cancel.running']) \gset

select is(
  dbos.cancel_job(:running_job), 'cancel_requested',
  'cancel_job of a running job returns cancel_requested'
);
select results_eq(
  $$ select status, cancel_requested, locked_by, completed_at from dbos.job_queue where id = $$ || :running_job,
  $$ values ('running'::text, true, 'w1'::text, null::timestamptz) $$,
  'a running job whose cancel is requested keeps running, marked, until its worker stops'
);
select is(
  dbos.cancel_job(:running_job), 'cancel_requested',
  'cancelling it again returns cancel_requested'
);
select results_eq(
  format($$ select job_id, state from dbos.heartbeat('w1', array[%s]::bigint[]) $$, :running_job),
  format($$ values (%s::bigint, 'cancel_requested'::text) $$, :running_job),
  'its worker hears cancel_requested from heartbeat'
);
select is(
  dbos.report_progress(:running_job, 10, lease_token => :token), 'cancel_requested',
  'its worker hears cancel_requested from report_progress'
);
select is(
  dbos.fail_job(:running_job, 'stopped on cancel', worker_id => 'w1'), 'cancelled',
  'a job whose cancel was requested ends cancelled when its worker fails it'
);
select results_eq(
  $$ select status, completed_at from dbos.job_queue where id = $$ || :running_job,
  $$ values ('cancelled'::text, now()) $$,
  'the failed job is cancelled, finished at now()'
);
select is(
  dbos.cancel_job(:running_job), 'cancelled',
  'cancel_job of a job that ended cancelled returns cancelled'
);

select dbos.enqueue('cancel.rescued') as rescued_job \gset
select id as claimed_rescued from dbos.claim_job('w1', array['cancel.rescued']) \gset
select dbos.cancel_job(:rescued_job) as cancel_outcome \gset
update dbos.job_queue set lease_expires_at = now() - interval '1 second' where id = :rescued_job;
select dbos.rescue_expired_jobs() as rescued \gset
select is(
  (select status from dbos.job_queue where id = :rescued_job), 'cancelled',
  'a job whose cancel was requested ends cancelled when its lease expires'
);

select dbos.enqueue('cancel.released') as released_job \gset
select id as claimed_released from dbos.claim_job('w1', array['cancel.released']) \gset
select dbos.cancel_job(:released_job) as cancel_outcome \gset
select dbos.release_jobs('w1', array[:released_job]::bigint[]) as released \gset
select is(
  (select status from dbos.job_queue where id = :released_job), 'cancelled',
  'a job whose cancel was requested ends cancelled when its worker releases it'
);

-- Finished jobs are left alone.
select dbos.enqueue('cancel.completed') as completed_job \gset
select id as claimed_completed from dbos.claim_job('w1', array['cancel.completed']) \gset
select dbos.complete_job(:completed_job) as completed \gset
update dbos.job_queue set completed_at = now() - interval '1 minute' where id = :completed_job;
select is(
  dbos.cancel_job(:completed_job), 'completed',
  'cancel_job of a completed job returns completed'
);
select results_eq(
  $$ select status, completed_at, cancel_requested from dbos.job_queue where id = $$ || :completed_job,
  $$ values ('completed'::text, now() - interval '1 minute', false) $$,
  'cancel_job leaves a completed job unchanged'
);

select dbos.enqueue('cancel.dead', max_attempts => 1) as dead_job \gset
select id as claimed_dead from dbos.claim_job('w1', array['cancel.dead']) \gset
select dbos.fail_job(:dead_job, 'fatal') as outcome \gset
select is(
  dbos.cancel_job(:dead_job), 'dead',
  'cancel_job of a dead-lettered job returns dead'
);
select is(
  (select count(*)::int from dbos.failed_jobs where id = :dead_job), 1,
  'cancel_job leaves the dead letter in place'
);

select throws_ok(
  $$ select dbos.cancel_job(-1) $$, 'P0002', null,
  'cancel_job of an unknown id raises P0002'
);
select throws_ok(
  $$ select dbos.cancel_job(null) $$, '22004', 'cancel_job: job_id must not be null',
  'cancel_job of a NULL id raises 22004 naming the argument'
);

-- A cancel of a pending job in the middle of a retry wait.
select dbos.enqueue('cancel.retrying') as retrying_job \gset
select id as claimed_retrying from dbos.claim_job('w1', array['cancel.retrying']) \gset
select dbos.fail_job(:retrying_job, 'flaky') as outcome \gset
select is(
  dbos.cancel_job(:retrying_job), 'cancelled',
  'cancel_job of a job waiting for its retry returns cancelled'
);
select results_eq(
  $$ select status, attempt, error from dbos.job_queue where id = $$ || :retrying_job,
  $$ values ('cancelled'::text, 1, 'flaky'::text) $$,
  'a cancelled retry keeps its attempt count and last error'
);
select is(
  dbos.fail_job(:retrying_job, 'late'), null,
  'fail_job of a cancelled job returns NULL'
);

select * from finish();
rollback;
