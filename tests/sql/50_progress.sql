-- dbos.report_progress: best-effort progress of a running job, which also
-- extends its lease and tells the worker whether it still holds the job.

begin;
select plan(22);

prepare progress_of(bigint) as
select progress, progress_message from dbos.job_queue where id = $1;

select dbos.enqueue('progress.job') as job \gset
select lease_token as token from dbos.claim_job('w1', array['progress.job']) \gset

select is(
  dbos.report_progress(:job, 50, 'halfway', lease_token => :token),
  'held',
  'report_progress returns held for the holder of the current claim'
);
select results_eq(
  'execute progress_of(' || :job || ')',
  $$ values (50::smallint, 'halfway'::text) $$,
  'report_progress writes progress and message'
);

select dbos.report_progress(:job, -5) as state \gset
select results_eq(
  'execute progress_of(' || :job || ')',
  $$ values (0::smallint, 'halfway'::text) $$,
  'report_progress clamps -5 to 0 (and a NULL message keeps the old one)'
);
select dbos.report_progress(:job, 150) as state \gset
select is(
  (select progress from dbos.job_queue where id = :job), 100::smallint,
  'report_progress clamps 150 to 100'
);
select dbos.report_progress(:job, 33.6) as state \gset
select is(
  (select progress from dbos.job_queue where id = :job), 34::smallint,
  'report_progress rounds 33.6 to 34'
);
select dbos.report_progress(:job, 33.4) as state \gset
select is(
  (select progress from dbos.job_queue where id = :job), 33::smallint,
  'report_progress rounds 33.4 to 33'
);

select is(
  dbos.report_progress(:job, null, 'still going'),
  'held',
  'report_progress with a NULL progress returns held'
);
select results_eq(
  'execute progress_of(' || :job || ')',
  $$ values (33::smallint, 'still going'::text) $$,
  'report_progress with a NULL progress keeps the old progress and writes the message'
);

select throws_ok(
  format($$ select dbos.report_progress(%s, 'NaN') $$, :job),
  '22023', null,
  'report_progress refuses NaN with 22023'
);

-- The lease: extended to at least now() + lease_seconds, never shortened.
select is(
  (select lease_expires_at from dbos.job_queue where id = :job),
  now() + interval '60 seconds',
  'report_progress keeps the lease at now() + 60 s by default'
);
select dbos.report_progress(:job, 40, lease_seconds => 300) as state \gset
select is(
  (select lease_expires_at from dbos.job_queue where id = :job),
  now() + interval '300 seconds',
  'report_progress extends the lease to now() + lease_seconds'
);
select dbos.report_progress(:job, 45, lease_seconds => 5) as state \gset
select is(
  (select lease_expires_at from dbos.job_queue where id = :job),
  now() + interval '300 seconds',
  'report_progress never shortens the lease'
);
update dbos.job_queue set lease_expires_at = now() + interval '1 second' where id = :job;
select dbos.report_progress(:job, 46) as state \gset
select is(
  (select lease_expires_at from dbos.job_queue where id = :job),
  now() + interval '60 seconds',
  'report_progress extends a nearly expired lease'
);

-- A cancel was requested: the worker should stop soon.
select dbos.cancel_job(:job) as cancel_outcome \gset
select is(
  dbos.report_progress(:job, 60, 'more', lease_token => :token),
  'cancel_requested',
  'report_progress returns cancel_requested after cancel_job'
);
select is(
  (select progress from dbos.job_queue where id = :job), 60::smallint,
  'report_progress still writes progress of a job whose cancel was requested'
);

-- Lost: not running, or not under this lease_token; nothing is written.
select dbos.release_jobs('w1', array[:job::bigint]) as released \gset
select dbos.enqueue('progress.stale') as stale_job \gset
select lease_token as stale_token from dbos.claim_job('w1', array['progress.stale']) \gset
select dbos.report_progress(:stale_job, 10, 'first claim') as state \gset
select dbos.release_jobs('w1', array[:stale_job::bigint]) as released \gset

select is(
  dbos.report_progress(:stale_job, 90, 'from a released worker'),
  'lost',
  'report_progress returns lost for a pending job'
);
select results_eq(
  'execute progress_of(' || :stale_job || ')',
  $$ values (10::smallint, 'first claim'::text) $$,
  'report_progress writes nothing to a pending job'
);

select lease_token as fresh_token from dbos.claim_job('w1', array['progress.stale']) \gset
select is(
  dbos.report_progress(:stale_job, 90, 'stale', lease_token => :stale_token),
  'lost',
  'report_progress returns lost under a stale lease_token'
);
select results_eq(
  $$ select progress, progress_message, lease_expires_at from dbos.job_queue where id = $$ || :stale_job,
  $$ values (null::smallint, null::text, now() + interval '60 seconds') $$,
  'report_progress under a stale token writes nothing (the new claim starts without progress)'
);
select is(
  dbos.report_progress(:stale_job, 5, 'fresh', lease_token => :fresh_token),
  'held',
  'report_progress under the current token returns held'
);
select is(
  dbos.report_progress(-1, 5),
  'lost',
  'report_progress returns lost for an unknown id'
);
select dbos.complete_job(:stale_job) as completed \gset
select is(
  dbos.report_progress(:stale_job, 100, 'late'),
  'lost',
  'report_progress returns lost for a completed job'
);

select * from finish();
rollback;
