-- Arguments that used to be accepted silently and now raise (or now mean
-- the default): report_progress's lease_seconds and NULL progress,
-- rescue_expired_jobs's retry_delay_ms, and NULL ids of the operators'
-- functions. A refused call changes nothing.

begin;
select plan(13);

select dbos.enqueue('checks.job') as job \gset
select lease_token as token from dbos.claim_job('w1', array['checks.job']) \gset
select dbos.report_progress(:job, 40, 'working', lease_token => :token) as state \gset

-- report_progress: NULL progress and message keep the old values.
select is(
  dbos.report_progress(:job, null, null, lease_token => :token),
  'held',
  'report_progress with a NULL progress and message returns held'
);
select results_eq(
  $$ select progress, progress_message from dbos.job_queue where id = $$ || :job,
  $$ values (40::smallint, 'working'::text) $$,
  'report_progress with a NULL progress and message keeps both old values'
);

-- report_progress: a bad lease_seconds raises 22023.
select throws_ok(
  format($$ select dbos.report_progress(%s, 50, lease_seconds => 0) $$, :job),
  '22023', null,
  'report_progress refuses lease_seconds 0 with 22023'
);
select throws_ok(
  format($$ select dbos.report_progress(%s, 50, lease_seconds => -10) $$, :job),
  '22023', null,
  'report_progress refuses a negative lease_seconds with 22023'
);
select throws_ok(
  format($$ select dbos.report_progress(%s, 50, lease_seconds => null) $$, :job),
  '22023', null,
  'report_progress refuses a NULL lease_seconds with 22023'
);
select results_eq(
  $$ select progress, lease_expires_at from dbos.job_queue where id = $$ || :job,
  $$ values (40::smallint, now() + interval '60 seconds') $$,
  'a refused report_progress writes neither progress nor lease'
);

-- rescue_expired_jobs: a negative retry_delay_ms raises 22023.
update dbos.job_queue set lease_expires_at = now() - interval '1 second' where id = :job;
select throws_ok(
  $$ select dbos.rescue_expired_jobs(-1) $$,
  '22023', null,
  'rescue_expired_jobs refuses a negative retry_delay_ms with 22023'
);
select is(
  (select status from dbos.job_queue where id = :job),
  'running',
  'a refused rescue rescues nothing'
);
select is(
  dbos.rescue_expired_jobs(null),
  1,
  'rescue_expired_jobs with a NULL retry_delay_ms rescues'
);
select is(
  (select scheduled_for - now() from dbos.job_queue where id = :job),
  interval '1 second',
  'rescue_expired_jobs with a NULL retry_delay_ms waits the default 1 s'
);

-- NULL ids raise 22004 naming the argument.
select throws_ok(
  $$ select dbos.cancel_job(null) $$,
  '22004', 'cancel_job: job_id must not be null',
  'cancel_job of a NULL id raises 22004'
);
select throws_ok(
  $$ select dbos.retry_job(null) $$,
  '22004', 'retry_job: job_id must not be null',
  'retry_job of a NULL id raises 22004'
);
select throws_ok(
  $$ select dbos.retry_dead_letter_job(null) $$,
  '22004', 'retry_dead_letter_job: id must not be null',
  'retry_dead_letter_job of a NULL id raises 22004'
);

select * from finish();
rollback;
