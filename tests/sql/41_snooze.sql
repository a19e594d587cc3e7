-- dbos.snooze_job / dbos.snooze_jobs: a running job asks to run again later.
-- It goes back to pending at now() + seconds with its attempt given back,
-- fenced by worker_id and lease_token like complete and fail; a job whose
-- cancel was requested ends cancelled. Inside this transaction now() is
-- constant, so times compare exactly.

begin;
select plan(26);

-- Snooze a running job.
select dbos.enqueue('snooze.job', '{"k": 1}', max_attempts => 2) as job \gset
select lease_token as token from dbos.claim_job('w1', array['snooze.job']) \gset
select dbos.report_progress(:job, 30, 'waiting for the bank', lease_token => :token) as state \gset

select is(
  dbos.snooze_job(:job, 90, 'w1', :token),
  true,
  'snooze_job of a job held by the caller returns true'
);
select results_eq(
  $$
    select status, attempt, scheduled_for, lease_expires_at, locked_by, completed_at, error
    from dbos.job_queue where id = $$ || :job,
  $$
    values (
      'pending'::text, 0, now() + interval '90 seconds', null::timestamptz, null::text,
      null::timestamptz, null::text
    )
  $$,
  'a snoozed job is pending, due in seconds, without lease or holder, its attempt given back, no error'
);
select is_empty(
  $$ select from dbos.claim_job('w1', array['snooze.job']) $$,
  'a snoozed job is not claimed before its time'
);
select is(
  dbos.seconds_until_next_job(array['snooze.job']),
  90::float8,
  'seconds_until_next_job sees the snoozed job''s new time'
);

-- A snooze is not a failure: it never uses up attempts.
update dbos.job_queue set scheduled_for = now() where id = :job;
select lease_token as token from dbos.claim_job('w1', array['snooze.job']) \gset
select dbos.snooze_job(:job, 0, 'w1', :token) as snoozed \gset
select lease_token as token from dbos.claim_job('w1', array['snooze.job']) \gset
select dbos.snooze_job(:job, 0, 'w1', :token) as snoozed \gset
select lease_token as token from dbos.claim_job('w1', array['snooze.job']) \gset
select results_eq(
  $$ select status, attempt, lease_token from dbos.job_queue where id = $$ || :job,
  $$ values ('running'::text, 1, 4) $$,
  'after 3 snoozes a job of max_attempts 2 is still claimed as attempt 1 (each claim takes a new token)'
);
select is(
  dbos.snooze_job(:job, 0.25, 'w1', :token),
  true,
  'snooze_job accepts fractions of a second'
);
select is(
  (select scheduled_for from dbos.job_queue where id = :job),
  now() + interval '250 milliseconds',
  'a snooze of 0.25 s is due 250 ms from now'
);

-- Fencing: only the holder of the current claim may snooze.
update dbos.job_queue set scheduled_for = now() where id = :job;
select lease_token as token from dbos.claim_job('w1', array['snooze.job']) \gset
select is(
  dbos.snooze_job(:job, 10, 'w1', :token - 1),
  false,
  'snooze_job under a stale lease_token returns false'
);
select is(
  dbos.snooze_job(:job, 10, 'w2', :token),
  false,
  'snooze_job by another worker returns false'
);
select results_eq(
  $$ select status, attempt, locked_by, lease_token from dbos.job_queue where id = $$ || :job,
  format($$ values ('running'::text, 1, 'w1'::text, %s) $$, :token),
  'a refused snooze leaves the job running, held, its attempt untouched'
);
select is(
  dbos.snooze_job(:job, 10),
  true,
  'snooze_job without worker_id and lease_token snoozes the running job'
);
select is(
  dbos.snooze_job(:job, 10),
  false,
  'snooze_job of a pending job returns false'
);
select is(
  dbos.snooze_job(-1, 10),
  false,
  'snooze_job of an unknown id returns false'
);

-- A finished job is never snoozed.
select dbos.enqueue('snooze.done') as done_job \gset
select id as claimed from dbos.claim_job('w1', array['snooze.done']) \gset
select dbos.complete_job(:done_job) as completed \gset
select is(
  dbos.snooze_job(:done_job, 10),
  false,
  'snooze_job of a completed job returns false'
);
select results_eq(
  $$ select status, completed_at from dbos.job_queue where id = $$ || :done_job,
  $$ values ('completed'::text, now()) $$,
  'a refused snooze leaves a completed job completed'
);

-- A cancel requested while running: the snooze ends the job cancelled.
select dbos.enqueue('snooze.cancel') as cancel_job \gset
select id as claimed from dbos.claim_job('w1', array['snooze.cancel']) \gset
select dbos.cancel_job(:cancel_job) as cancel_outcome \gset
select is(
  dbos.snooze_job(:cancel_job, 60, 'w1'),
  true,
  'snooze_job of a job whose cancel was requested returns true'
);
select results_eq(
  $$ select status, completed_at, lease_expires_at, attempt from dbos.job_queue where id = $$ || :cancel_job,
  $$ values ('cancelled'::text, now(), null::timestamptz, 1) $$,
  'such a job ends cancelled at now(), without lease, its attempt kept'
);

-- snooze_jobs: many at once, each with its own delay and token.
select dbos.enqueue('snooze.many') as many_1 \gset
select dbos.enqueue('snooze.many') as many_2 \gset
select dbos.enqueue('snooze.many') as many_3 \gset
select array(
  select lease_token from dbos.claim_job('w1', array['snooze.many'], 3) order by id
) as many_tokens \gset
select results_eq(
  format(
    $$
      select * from dbos.snooze_jobs(
        array[%s, %s, %s]::bigint[], array[5, 15, 25], 'w1',
        array[%s, %s, %s + 1]
      ) order by 1
    $$,
    :many_1, :many_2, :many_3,
    (:'many_tokens'::int[])[1], (:'many_tokens'::int[])[2], (:'many_tokens'::int[])[3]
  ),
  format($$ values (%s::bigint), (%s) $$, :many_1, :many_2),
  'snooze_jobs returns the ids it snoozed and skips a stale token'
);
select results_eq(
  format($$ select status, scheduled_for - now() from dbos.job_queue where id in (%s, %s, %s) order by id $$, :many_1, :many_2, :many_3),
  $$ values ('pending'::text, interval '5 seconds'), ('pending', interval '15 seconds'), ('running', interval '0') $$,
  'snooze_jobs gives job_ids[i] the delay seconds[i]; the stale one keeps running'
);

-- Bad delays raise 22023 and change nothing.
select throws_ok(
  format($$ select dbos.snooze_job(%s, -1) $$, :many_3),
  '22023', null,
  'snooze_job refuses a negative delay with 22023'
);
select throws_ok(
  format($$ select dbos.snooze_job(%s, null) $$, :many_3),
  '22023', null,
  'snooze_job refuses a NULL delay with 22023'
);
select throws_ok(
  format($$ select dbos.snooze_job(%s, 'NaN') $$, :many_3),
  '22023', null,
  'snooze_job refuses a NaN delay with 22023'
);
select throws_ok(
  format($$ select dbos.snooze_job(%s, 'Infinity') $$, :many_3),
  '22023', null,
  'snooze_job refuses an infinite delay with 22023 (not an interval overflow)'
);
select throws_ok(
  format($$ select dbos.snooze_jobs(array[%s]::bigint[], array[10, -1]) $$, :many_3),
  '22023', null,
  'snooze_jobs refuses any negative element with 22023'
);
select is(
  (select status from dbos.job_queue where id = :many_3),
  'running',
  'a refused snooze leaves the job running'
);
select throws_ok(
  format($$ select dbos.snooze_jobs(array[%s, %s]::bigint[], array[10]) $$, :many_1, :many_3),
  '22023', null,
  'snooze_jobs refuses seconds of another length than job_ids with 22023 (as fail_jobs does)'
);

select * from finish();
rollback;
