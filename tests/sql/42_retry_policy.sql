-- Retry policies: dbos.retry_delay's cap (max_retry_delay_ms) and jitter,
-- and fail_job / fail_jobs' trailing max_retry_delay_ms, jitter and
-- permanent (straight to the dead letter). With jitter j, a delay d lies in
-- [d * (1 - j), d * (1 + j)]. Inside this transaction now() is constant.

begin;
select plan(33);

-- retry_delay: the cap.
select results_eq(
  $$
    select dbos.retry_delay(attempt, 1000, 10000)
    from generate_series(1, 6) as attempt order by attempt
  $$,
  $$
    values (interval '1 second'), (interval '2 seconds'), (interval '4 seconds'),
      (interval '8 seconds'), (interval '10 seconds'), (interval '10 seconds')
  $$,
  'retry_delay doubles up to max_retry_delay_ms, then stays there'
);
select is(
  dbos.retry_delay(1, 5000, 2000), interval '2 seconds',
  'a cap below the base delay caps even the first retry'
);
select is(
  dbos.retry_delay(4, 1000, 0), interval '0',
  'a cap of 0 retries at once'
);
select is(
  dbos.retry_delay(2147483647, 2147483647, 2147483647), interval '2147483.647 seconds',
  'the largest attempt, base and cap give the cap (no overflow)'
);
select is(
  dbos.retry_delay(3, 1000, 86400000, 0), interval '4 seconds',
  'jitter 0 gives the exact delay'
);

-- retry_delay: jitter within its bounds, and actually random.
select ok(
  (
    select bool_and(d between interval '2 seconds' and interval '6 seconds')
    from (select dbos.retry_delay(3, 1000, 86400000, 0.5) as d from generate_series(1, 500)) as s
  ),
  'with jitter 0.5 a delay of 4 s always lies within [2 s, 6 s]'
);
select ok(
  (
    select bool_and(d between interval '0' and interval '2 seconds')
    from (select dbos.retry_delay(1, 1000, 86400000, 1) as d from generate_series(1, 500)) as s
  ),
  'with jitter 1 a delay of 1 s always lies within [0, 2 s]'
);
select cmp_ok(
  (
    select count(distinct d)::int
    from (select dbos.retry_delay(3, 1000, 86400000, 0.5) as d from generate_series(1, 50)) as s
  ),
  '>', 1,
  'jitter spreads the delays: 50 draws are not all equal'
);
select ok(
  (
    select bool_and(d <= interval '5 seconds')
    from (select dbos.retry_delay(3, 1000, 5000, 1) as d from generate_series(1, 500)) as s
  ),
  'a jittered delay never exceeds the cap'
);

-- retry_delay with NULL policy arguments (as fail_job: NULL = the default).
select is(
  dbos.retry_delay(1, 1000, 86400000, null), interval '1 second',
  'retry_delay with a NULL jitter delays as without jitter (1 s), not the 24 h cap'
);
select ok(
  dbos.retry_delay(100, 1000, null) >= interval '0',
  'retry_delay with a NULL max_retry_delay_ms never overflows into a negative delay'
);

-- fail_job: the cap.
prepare make_due(bigint) as
update dbos.job_queue set scheduled_for = now() where id = $1;

select dbos.enqueue('policy.cap', max_attempts => 10) as cap_job \gset
select id as claimed from dbos.claim_job('w1', array['policy.cap']) \gset
update dbos.job_queue set attempt = 5 where id = :cap_job;
select is(
  dbos.fail_job(:cap_job, 'boom', 1000, 'w1', null, 3000),
  'pending',
  'fail_job with max_retry_delay_ms retries'
);
select is(
  (select scheduled_for - now() from dbos.job_queue where id = :cap_job),
  interval '3 seconds',
  'fail_job waits at most max_retry_delay_ms (16 s capped to 3 s)'
);
execute make_due(:cap_job);
select id as claimed from dbos.claim_job('w1', array['policy.cap']) \gset
select dbos.fail_job(:cap_job, 'boom', max_retry_delay_ms => null) as outcome \gset
select is(
  (select scheduled_for - now() from dbos.job_queue where id = :cap_job),
  interval '32 seconds',
  'fail_job with a NULL max_retry_delay_ms uses the default cap (24 h): attempt 6 waits 32 s'
);

-- fail_job: jitter.
select dbos.enqueue('policy.jitter', max_attempts => 5) as jitter_job \gset
select id as claimed from dbos.claim_job('w1', array['policy.jitter']) \gset
select dbos.fail_job(:jitter_job, 'boom', 1000, jitter => 0.5) as outcome \gset
select ok(
  (select scheduled_for - now() from dbos.job_queue where id = :jitter_job)
    between interval '500 milliseconds' and interval '1500 milliseconds',
  'fail_job with jitter 0.5 retries attempt 1 within [0.5 s, 1.5 s]'
);
execute make_due(:jitter_job);
select id as claimed from dbos.claim_job('w1', array['policy.jitter']) \gset
select dbos.fail_job(:jitter_job, 'boom', 1000, jitter => null) as outcome \gset
select is(
  (select scheduled_for - now() from dbos.job_queue where id = :jitter_job),
  interval '2 seconds',
  'fail_job with a NULL jitter retries without jitter'
);

-- fail_jobs: jitter spreads the retries of jobs that failed together.
select array(
  select dbos.enqueue_many(
    array_fill('policy.herd'::text, array[40]),
    array_fill('{}'::jsonb, array[40])
  )
) as herd \gset
select count(*) as claimed from dbos.claim_job('w1', array['policy.herd'], 40) \gset
select count(*) as failed
from dbos.fail_jobs(
  :'herd'::bigint[], array_fill('down'::text, array[40]), 10000, jitter => 0.2
) \gset
select ok(
  (
    select bool_and(scheduled_for - now() between interval '8 seconds' and interval '12 seconds')
      and count(distinct scheduled_for) > 1
    from dbos.job_queue where job_name = 'policy.herd'
  ),
  'fail_jobs with jitter 0.2 spreads 40 retries of 10 s over [8 s, 12 s]'
);

-- Bad policies raise 22023 and change nothing.
select dbos.enqueue('policy.bad') as bad_job \gset
select lease_token as bad_token from dbos.claim_job('w1', array['policy.bad']) \gset
select throws_ok(
  format($$ select dbos.fail_job(%s, 'x', jitter => 1.5) $$, :bad_job),
  '22023', null,
  'fail_job refuses a jitter above 1 with 22023'
);
select throws_ok(
  format($$ select dbos.fail_job(%s, 'x', jitter => -0.1) $$, :bad_job),
  '22023', null,
  'fail_job refuses a negative jitter with 22023'
);
select throws_ok(
  format($$ select dbos.fail_job(%s, 'x', jitter => 'NaN') $$, :bad_job),
  '22023', null,
  'fail_job refuses a NaN jitter with 22023'
);
select throws_ok(
  format($$ select dbos.fail_job(%s, 'x', max_retry_delay_ms => -1) $$, :bad_job),
  '22023', null,
  'fail_job refuses a negative max_retry_delay_ms with 22023'
);
select throws_ok(
  format($$ select dbos.fail_jobs(array[%s]::bigint[], array['x'], jitter => 2) $$, :bad_job),
  '22023', null,
  'fail_jobs refuses a jitter above 1 with 22023'
);
select throws_ok(
  format($$ select dbos.fail_jobs(array[%s]::bigint[], array['x'], max_retry_delay_ms => -5) $$, :bad_job),
  '22023', null,
  'fail_jobs refuses a negative max_retry_delay_ms with 22023'
);
select results_eq(
  $$ select status, attempt, error, lease_token from dbos.job_queue where id = $$ || :bad_job,
  format($$ values ('running'::text, 1, null::text, %s) $$, :bad_token),
  'a refused fail_job leaves the job running'
);

-- permanent: straight to the dead letter, whatever the attempts left.
select dbos.enqueue('policy.permanent', '{"card": "declined"}', max_attempts => 5, priority => 3) as permanent_job \gset
select lease_token as permanent_token from dbos.claim_job('w1', array['policy.permanent']) \gset
select is(
  dbos.fail_job(:permanent_job, 'card declined', 1000, 'w1', :permanent_token, permanent => true),
  'dead',
  'fail_job with permanent returns dead on attempt 1 of 5'
);
select results_eq(
  $$ select error, attempt, max_attempts, priority from dbos.failed_jobs where id = $$ || :permanent_job,
  $$ values ('card declined'::text, 1, 5, 3) $$,
  'a permanent failure is dead-lettered with its error and the attempts it used'
);
select is_empty(
  $$ select from dbos.job_queue where id = $$ || :permanent_job,
  'a permanent failure leaves dbos.job_queue'
);

select dbos.enqueue('policy.permanent-stale') as permanent_stale \gset
select lease_token as stale_token from dbos.claim_job('w1', array['policy.permanent-stale']) \gset
select is(
  dbos.fail_job(:permanent_stale, 'x', 1000, 'w1', :stale_token + 1, permanent => true),
  null,
  'a permanent fail_job under a stale lease_token changes nothing (NULL)'
);

select dbos.enqueue('policy.permanent-cancel', max_attempts => 5) as permanent_cancel \gset
select id as claimed from dbos.claim_job('w1', array['policy.permanent-cancel']) \gset
select dbos.cancel_job(:permanent_cancel) as cancel_outcome \gset
select is(
  dbos.fail_job(:permanent_cancel, 'stopping', permanent => true),
  'cancelled',
  'a permanent failure of a job whose cancel was requested ends cancelled, not dead'
);
select is_empty(
  $$ select from dbos.failed_jobs where id = $$ || :permanent_cancel,
  'that job is not in the dead letter'
);

select dbos.enqueue('policy.permanent-many', max_attempts => 3) as permanent_many_1 \gset
select dbos.enqueue('policy.permanent-many', max_attempts => 3) as permanent_many_2 \gset
select count(*) as claimed from dbos.claim_job('w1', array['policy.permanent-many'], 2) \gset
select results_eq(
  format(
    $$
      select job_id, outcome
      from dbos.fail_jobs(array[%s, %s]::bigint[], array['a', 'b'], permanent => true)
      order by job_id
    $$,
    :permanent_many_1, :permanent_many_2
  ),
  format($$ values (%s::bigint, 'dead'::text), (%s, 'dead') $$, :permanent_many_1, :permanent_many_2),
  'fail_jobs with permanent dead-letters every job'
);

select dbos.enqueue('policy.permanent-null', max_attempts => 3) as permanent_null \gset
select id as claimed from dbos.claim_job('w1', array['policy.permanent-null']) \gset
select is(
  dbos.fail_job(:permanent_null, 'x', permanent => null),
  'pending',
  'fail_job with a NULL permanent retries as with the default (false)'
);
select isnt(
  (select status from dbos.job_queue where id = :permanent_null),
  'running',
  'fail_job with a NULL permanent never leaves the failed attempt running'
);

select * from finish();
rollback;
