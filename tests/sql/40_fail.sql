-- dbos.fail_job, dbos.fail_jobs and dbos.retry_delay: retry with exponential
-- backoff, the dead letter after max_attempts, cancel, and stale workers.
-- Inside this transaction now() is constant, so delays compare exactly.

begin;
select plan(48);

-- A retry is made due again by moving scheduled_for back to now().
prepare make_due(bigint) as
update dbos.job_queue set scheduled_for = now() where id = $1;

-- retry_delay: 1 s, 2 s, 4 s, ... capped at 24 hours.
select results_eq(
  $$
    select dbos.retry_delay(attempt, 1000)
    from generate_series(1, 5) as attempt order by attempt
  $$,
  $$
    values (interval '1 second'), (interval '2 seconds'), (interval '4 seconds'),
      (interval '8 seconds'), (interval '16 seconds')
  $$,
  'retry_delay doubles from 1 s with the default base of 1000 ms'
);
select results_eq(
  $$
    select dbos.retry_delay(attempt, 250)
    from generate_series(1, 3) as attempt order by attempt
  $$,
  $$ values (interval '250 milliseconds'), (interval '500 milliseconds'), (interval '1 second') $$,
  'retry_delay doubles from a custom base of 250 ms'
);
select is(
  dbos.retry_delay(100, 1000), interval '24 hours',
  'retry_delay of attempt 100 is capped at 24 hours (no overflow)'
);
select is(
  dbos.retry_delay(2147483647, 2147483647), interval '24 hours',
  'retry_delay of the largest attempt and base is capped at 24 hours'
);
select is(
  dbos.retry_delay(18, 1000), interval '24 hours',
  'retry_delay reaches the cap exactly (2^17 s is more than a day)'
);
select is(
  dbos.retry_delay(17, 1000), interval '65536 seconds',
  'retry_delay just below the cap is not capped'
);
select is(
  dbos.retry_delay(0, 1000), interval '1 second',
  'retry_delay of attempt 0 is the base delay'
);
select is(
  dbos.retry_delay(3, 0), interval '0',
  'retry_delay with base 0 retries at once'
);

-- fail_job with the default base: 1 s, 2 s, 4 s after attempts 1, 2, 3.
select dbos.enqueue('fail.backoff', '{"k": 1}', max_attempts => 5) as job \gset

select lease_token as token from dbos.claim_job('w1', array['fail.backoff']) \gset
select is(
  dbos.fail_job(:job, 'boom 1', worker_id => 'w1', lease_token => :token),
  'pending',
  'fail_job returns pending while attempts remain'
);
select results_eq(
  $$
    select status, attempt, error, scheduled_for - now(), locked_by, lease_expires_at, completed_at
    from dbos.job_queue where id = $$ || :job,
  $$ values ('pending'::text, 1, 'boom 1'::text, interval '1 second', null::text, null::timestamptz, null::timestamptz) $$,
  'after attempt 1 fails the job is pending, due in 1 s, with the error, without holder or lease'
);
select is_empty(
  $$ select from dbos.claim_job('w1', array['fail.backoff']) $$,
  'a job waiting for its retry is not claimed before its time'
);

execute make_due(:job);
select lease_token as token from dbos.claim_job('w1', array['fail.backoff']) \gset
select is(
  dbos.fail_job(:job, 'boom 2', worker_id => 'w1', lease_token => :token),
  'pending',
  'fail_job returns pending after attempt 2'
);
select is(
  (select scheduled_for - now() from dbos.job_queue where id = :job),
  interval '2 seconds',
  'after attempt 2 fails the retry is due in 2 s'
);

execute make_due(:job);
select lease_token as token from dbos.claim_job('w1', array['fail.backoff']) \gset
select is(
  dbos.fail_job(:job, 'boom 3', worker_id => 'w1', lease_token => :token),
  'pending',
  'fail_job returns pending after attempt 3'
);
select results_eq(
  $$ select attempt, error, scheduled_for - now() from dbos.job_queue where id = $$ || :job,
  $$ values (3, 'boom 3'::text, interval '4 seconds') $$,
  'after attempt 3 fails the retry is due in 4 s, with the latest error'
);

-- A custom base: 250 ms, 500 ms, 1000 ms.
select dbos.enqueue('fail.custom', max_attempts => 4) as custom_job \gset

select id as claimed from dbos.claim_job('w1', array['fail.custom']) \gset
select dbos.fail_job(:custom_job, 'slow 1', 250) as outcome \gset
select is(
  (select scheduled_for - now() from dbos.job_queue where id = :custom_job),
  interval '250 milliseconds',
  'with retry_delay_ms 250 the first retry is due in 250 ms'
);
execute make_due(:custom_job);
select id as claimed from dbos.claim_job('w1', array['fail.custom']) \gset
select dbos.fail_job(:custom_job, 'slow 2', 250) as outcome \gset
select is(
  (select scheduled_for - now() from dbos.job_queue where id = :custom_job),
  interval '500 milliseconds',
  'with retry_delay_ms 250 the second retry is due in 500 ms'
);
execute make_due(:custom_job);
select id as claimed from dbos.claim_job('w1', array['fail.custom']) \gset
select dbos.fail_job(:custom_job, 'slow 3', 250) as outcome \gset
select is(
  (select scheduled_for - now() from dbos.job_queue where id = :custom_job),
  interval '1000 milliseconds',
  'with retry_delay_ms 250 the third retry is due in 1000 ms'
);

-- A NULL retry_delay_ms means the default 1000 ms.
select dbos.enqueue('fail.null-base') as null_base_job \gset
select id as claimed from dbos.claim_job('w1', array['fail.null-base']) \gset
select dbos.fail_job(:null_base_job, 'x', null) as outcome \gset
select is(
  (select scheduled_for - now() from dbos.job_queue where id = :null_base_job),
  interval '1 second',
  'fail_job with a NULL retry_delay_ms waits the default 1 s'
);

-- The cap: attempt 100 never overflows.
select dbos.enqueue('fail.cap', max_attempts => 200) as cap_job \gset
select id as claimed from dbos.claim_job('w1', array['fail.cap']) \gset
update dbos.job_queue set attempt = 100 where id = :cap_job;
select is(
  dbos.fail_job(:cap_job, 'again'),
  'pending',
  'fail_job of attempt 100 retries'
);
select is(
  (select scheduled_for - now() from dbos.job_queue where id = :cap_job),
  interval '24 hours',
  'fail_job of attempt 100 waits the capped 24 hours'
);

-- The dead letter after max_attempts.
select dbos.enqueue('fail.dead', '{"order": 7}', max_attempts => 2) as dead_job \gset
update dbos.job_queue set created_at = now() - interval '1 hour' where id = :dead_job;

select id as claimed from dbos.claim_job('w1', array['fail.dead']) \gset
select is(
  dbos.fail_job(:dead_job, 'first', worker_id => 'w1'),
  'pending',
  'fail_job retries attempt 1 of 2'
);
execute make_due(:dead_job);
select id as claimed from dbos.claim_job('w1', array['fail.dead']) \gset
select is(
  dbos.fail_job(:dead_job, 'second', worker_id => 'w1'),
  'dead',
  'fail_job dead-letters after max_attempts'
);
select is_empty(
  $$ select from dbos.job_queue where id = $$ || :dead_job,
  'a dead-lettered job is removed from dbos.job_queue'
);
select results_eq(
  $$
    select id, job_name, payload, error, attempt, max_attempts, original_created_at, failed_at
    from dbos.failed_jobs where id = $$ || :dead_job,
  format(
    $$
      values (
        %s::bigint, 'fail.dead'::text, '{"order": 7}'::jsonb, 'second'::text, 2, 2,
        now() - interval '1 hour', now()
      )
    $$,
    :dead_job
  ),
  'the dead letter keeps the id, job_name, payload, last error, attempt, max_attempts and created_at'
);
select is(
  dbos.fail_job(:dead_job, 'third'),
  null,
  'fail_job of a dead-lettered job returns NULL'
);

select dbos.enqueue('fail.once', max_attempts => 1) as once_job \gset
select id as claimed from dbos.claim_job('w1', array['fail.once']) \gset
select is(
  dbos.fail_job(:once_job, 'only try'),
  'dead',
  'a job with max_attempts 1 is dead-lettered at its first failure'
);
select is(
  dbos.fail_job(:once_job, 'only try'),
  null,
  'failing it again returns NULL (nothing running)'
);

-- Stale workers change nothing.
select dbos.enqueue('fail.stale') as stale_job \gset
select lease_token as stale_token from dbos.claim_job('w1', array['fail.stale']) \gset
select dbos.release_jobs('w1', array[:stale_job::bigint]) as released \gset
select lease_token as fresh_token from dbos.claim_job('w1', array['fail.stale']) \gset

select is(
  dbos.fail_job(:stale_job, 'late', worker_id => 'w1', lease_token => :stale_token),
  null,
  'fail_job under a stale lease_token returns NULL'
);
select is(
  dbos.fail_job(:stale_job, 'late', worker_id => 'w2', lease_token => :fresh_token),
  null,
  'fail_job by another worker returns NULL'
);
select results_eq(
  $$ select status, attempt, error, locked_by, lease_token from dbos.job_queue where id = $$ || :stale_job,
  format($$ values ('running'::text, 1, null::text, 'w1'::text, %s) $$, :fresh_token),
  'a refused fail_job leaves the job running, its error and attempt untouched'
);
select is(
  dbos.fail_job(:stale_job, 'in time', worker_id => 'w1', lease_token => :fresh_token),
  'pending',
  'fail_job by the holder of the current claim is accepted'
);
select is(
  dbos.fail_job(:stale_job, 'again'),
  null,
  'fail_job of a pending job returns NULL'
);
select is(
  (select error from dbos.job_queue where id = :stale_job),
  'in time',
  'failing a pending job does not overwrite its error'
);
select is(
  dbos.fail_job(-1, 'nobody'),
  null,
  'fail_job of an unknown id returns NULL'
);

-- A NULL error is stored as 'unknown error'.
select dbos.enqueue('fail.no-error') as no_error_job \gset
select id as claimed from dbos.claim_job('w1', array['fail.no-error']) \gset
select dbos.fail_job(:no_error_job, null) as outcome \gset
select is(
  (select error from dbos.job_queue where id = :no_error_job),
  'unknown error',
  'fail_job stores a NULL error as ''unknown error'''
);

-- A cancel was requested: the job ends cancelled, even on its last attempt.
select dbos.enqueue('fail.cancel', max_attempts => 1) as cancelled_job \gset
select id as claimed from dbos.claim_job('w1', array['fail.cancel']) \gset
select dbos.cancel_job(:cancelled_job) as cancel_outcome \gset
select is(
  dbos.fail_job(:cancelled_job, 'stopped', worker_id => 'w1'),
  'cancelled',
  'fail_job of a job whose cancel was requested returns cancelled'
);
select results_eq(
  $$ select status, completed_at, lease_expires_at, error, attempt from dbos.job_queue where id = $$ || :cancelled_job,
  $$ values ('cancelled'::text, now(), null::timestamptz, 'stopped'::text, 1) $$,
  'the job ends cancelled at now(), without lease, with the error, not dead-lettered'
);
select is_empty(
  $$ select from dbos.failed_jobs where id = $$ || :cancelled_job,
  'a cancelled job is not in the dead letter'
);

-- fail_jobs: many at once, each with its outcome.
select dbos.enqueue('fail.many', max_attempts => 3) as many_retry \gset
select dbos.enqueue('fail.many', max_attempts => 1) as many_dead \gset
select dbos.enqueue('fail.many', max_attempts => 3) as many_cancel \gset
select dbos.enqueue('fail.many', max_attempts => 3) as many_stale \gset
select array(
  select lease_token from dbos.claim_job('w1', array['fail.many'], 4) order by id
) as many_tokens \gset
select dbos.cancel_job(:many_cancel) as cancel_outcome \gset

select results_eq(
  format(
    $$
      select job_id, outcome
      from dbos.fail_jobs(
        array[%1$s, %2$s, %3$s, %4$s]::bigint[],
        array['e1', 'e2', 'e3', 'e4'],
        500,
        'w1',
        array[%5$s, %6$s, %7$s, %8$s + 1]
      )
      order by job_id
    $$,
    :many_retry, :many_dead, :many_cancel, :many_stale,
    (:'many_tokens'::int[])[1], (:'many_tokens'::int[])[2],
    (:'many_tokens'::int[])[3], (:'many_tokens'::int[])[4]
  ),
  format(
    $$ values (%s::bigint, 'pending'::text), (%s, 'dead'), (%s, 'cancelled') $$,
    :many_retry, :many_dead, :many_cancel
  ),
  'fail_jobs returns each changed job with its outcome and skips a stale token'
);
select results_eq(
  $$ select error, scheduled_for - now() from dbos.job_queue where id = $$ || :many_retry,
  $$ values ('e1'::text, interval '500 milliseconds') $$,
  'fail_jobs stores errors[i] for job_ids[i] and waits retry_delay_ms'
);
select is(
  (select error from dbos.failed_jobs where id = :many_dead),
  'e2',
  'fail_jobs dead-letters with the job''s own error'
);
select is(
  (select status from dbos.job_queue where id = :many_stale),
  'running',
  'fail_jobs leaves the job under a stale token running'
);
select is(
  (select count(*)::int from dbos.fail_jobs(array[:many_stale::bigint], array['x'], worker_id => 'w2')),
  0,
  'fail_jobs by another worker changes nothing'
);
select throws_ok(
  format($$ select dbos.fail_jobs(array[%s::bigint], array['a', 'b']) $$, :many_stale),
  '22023', null,
  'fail_jobs refuses errors of another length than job_ids with 22023'
);
select throws_ok(
  format($$ select dbos.fail_jobs(array[%s::bigint], array['a'], -1) $$, :many_stale),
  '22023', null,
  'fail_jobs refuses a negative retry_delay_ms with 22023'
);
select throws_ok(
  format($$ select dbos.fail_job(%s, 'a', -1) $$, :many_stale),
  '22023', null,
  'fail_job refuses a negative retry_delay_ms with 22023'
);
select is_empty(
  $$ select dbos.fail_jobs('{}'::bigint[], '{}'::text[]) $$,
  'fail_jobs of empty arrays changes nothing'
);

select * from finish();
rollback;
