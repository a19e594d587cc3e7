-- dbos.release_jobs: a worker shutting down gives its running jobs back,
-- due now, without using up an attempt.

begin;
select plan(11);

select dbos.enqueue('release.a') as job_a \gset
select dbos.enqueue('release.b', max_attempts => 5) as job_b \gset
select dbos.enqueue('release.other') as other_job \gset
select dbos.enqueue('release.cancel') as cancel_job \gset
select id as claimed_a from dbos.claim_job('w1', array['release.a']) \gset
select id as claimed_b from dbos.claim_job('w1', array['release.b']) \gset
select id as claimed_other from dbos.claim_job('w2', array['release.other']) \gset
select id as claimed_cancel from dbos.claim_job('w1', array['release.cancel']) \gset

-- Job b is on its second attempt.
update dbos.job_queue set attempt = 2, scheduled_for = now() - interval '1 minute' where id = :job_b;

select is(
  dbos.release_jobs('w1', array[:job_a, :job_b, :other_job]::bigint[]),
  2,
  'release_jobs returns how many jobs it released'
);
select results_eq(
  format(
    $$
      select id, status, attempt, scheduled_for, locked_by, lease_expires_at, completed_at
      from dbos.job_queue where id in (%s, %s) order by id
    $$,
    :job_a, :job_b
  ),
  format(
    $$
      values
        (%s::bigint, 'pending'::text, 0, now(), null::text, null::timestamptz, null::timestamptz),
        (%s, 'pending', 1, now(), null, null, null)
    $$,
    :job_a, :job_b
  ),
  'released jobs are pending, due now, their attempt given back, without holder or lease'
);
select results_eq(
  $$ select status, locked_by from dbos.job_queue where id = $$ || :other_job,
  $$ values ('running'::text, 'w2'::text) $$,
  'release_jobs leaves another worker''s job running'
);
select results_eq(
  $$ select id from dbos.claim_job('w3', array['release.a']) $$,
  array[:job_a::bigint],
  'a released job can be claimed again at once'
);
select is(
  (select attempt from dbos.job_queue where id = :job_a),
  1,
  'the next claim of a released job is its attempt 1 again'
);

-- A stale token releases nothing.
select is(
  dbos.release_jobs('w3', array[:job_a]::bigint[], array[1]),
  0,
  'release_jobs under a stale lease_token releases nothing'
);
select is(
  (select status from dbos.job_queue where id = :job_a),
  'running',
  'the job under a stale token stays running'
);
select is(
  dbos.release_jobs('w3', array[:job_a]::bigint[], array[2]),
  1,
  'release_jobs under the current lease_token releases the job'
);

-- A job whose cancel was requested ends cancelled.
select dbos.cancel_job(:cancel_job) as cancel_outcome \gset
select is(
  dbos.release_jobs('w1', array[:cancel_job]::bigint[]),
  1,
  'release_jobs counts a job whose cancel was requested'
);
select results_eq(
  $$ select status, attempt, completed_at, lease_expires_at from dbos.job_queue where id = $$ || :cancel_job,
  $$ values ('cancelled'::text, 1, now(), null::timestamptz) $$,
  'a released job whose cancel was requested ends cancelled, keeping its attempt'
);
select is(
  dbos.release_jobs('w1', array[:job_a, :cancel_job, -1]::bigint[]),
  0,
  'release_jobs of pending, cancelled and unknown jobs releases nothing'
);

select * from finish();
rollback;
