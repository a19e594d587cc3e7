-- Calls written for 0001 keep working after 0002: the functions whose
-- parameters grew take the old arguments, positionally, and behave as
-- before (default priority, queue 'default', no dedup key, no timeout, no
-- result).

begin;
select plan(12);

-- Positional enqueue with the four 0001 arguments.
select dbos.enqueue('compat.job', '{"n": 1}', now() - interval '1 minute', 5) as job \gset
select results_eq(
  $$
    select job_name, payload, scheduled_for, max_attempts, priority, queue_name,
      dedup_key, timeout_seconds, result
    from dbos.job_queue where id = $$ || :job,
  $$
    values (
      'compat.job'::text, '{"n": 1}'::jsonb, now() - interval '1 minute', 5, 0,
      'default'::text, null::text, null::int, null::jsonb
    )
  $$,
  'enqueue with the 4 positional arguments of 0001 stores them, the new columns at their defaults'
);

-- Positional enqueue_many with the four 0001 arrays.
select array(
  select dbos.enqueue_many(
    array['compat.many', 'compat.many'],
    array['{"n": 2}', '{"n": 3}']::jsonb[],
    array[now(), now()],
    array[2, 4]
  )
) as many_jobs \gset
select results_eq(
  format(
    $$
      select max_attempts, priority, queue_name from dbos.job_queue
      where id = any(%L::bigint[]) order by id
    $$,
    :'many_jobs'
  ),
  $$ values (2, 0, 'default'::text), (4, 0, 'default') $$,
  'enqueue_many with the 4 positional arrays of 0001 works, new columns at their defaults'
);

-- The 4-argument claim_job of 0001.
select results_eq(
  $$ select id, locked_by, lease_expires_at from dbos.claim_job('w1', array['compat.job'], 1, 30) $$,
  format($$ values (%s::bigint, 'w1'::text, now() + interval '30 seconds') $$, :job),
  'claim_job with the 4 positional arguments of 0001 claims as before'
);
select lease_token as token from dbos.job_queue where id = :job \gset

-- The 3-argument complete_jobs of 0001.
select results_eq(
  format(
    $$ select dbos.complete_jobs(array[%s]::bigint[], 'w1', array[%s]) $$,
    :job, :token
  ),
  array[:job::bigint],
  'complete_jobs with the 3 positional arguments of 0001 completes the job'
);
select results_eq(
  $$ select status, result from dbos.job_queue where id = $$ || :job,
  $$ values ('completed'::text, null::jsonb) $$,
  'a job completed by the 0001 call has no result'
);

-- The 3-argument complete_job of 0001.
select dbos.enqueue('compat.single') as single_job \gset
select lease_token as single_token from dbos.claim_job('w1', array['compat.single']) \gset
select is(
  dbos.complete_job(:single_job, 'w1', :single_token),
  true,
  'complete_job with the 3 positional arguments of 0001 completes the job'
);

-- The 5-argument fail_job of 0001: exponential backoff, dead letter at
-- max_attempts.
select dbos.enqueue('compat.fail', '{}', now(), 2) as fail_job \gset
select lease_token as fail_token from dbos.claim_job('w1', array['compat.fail']) \gset
select is(
  dbos.fail_job(:fail_job, 'boom', 500, 'w1', :fail_token),
  'pending',
  'fail_job with the 5 positional arguments of 0001 retries while attempts remain'
);
select is(
  (select scheduled_for - now() from dbos.job_queue where id = :fail_job),
  interval '500 milliseconds',
  'the 0001 fail_job waits retry_delay_ms, without jitter'
);
update dbos.job_queue set scheduled_for = now() where id = :fail_job;
select lease_token as fail_token from dbos.claim_job('w1', array['compat.fail']) \gset
select is(
  dbos.fail_job(:fail_job, 'boom again', 500, 'w1', :fail_token),
  'dead',
  'the 0001 fail_job dead-letters after max_attempts'
);

-- The 5-argument fail_jobs of 0001.
select dbos.enqueue('compat.fail-many') as fail_many_job \gset
select lease_token as fail_many_token from dbos.claim_job('w1', array['compat.fail-many']) \gset
select results_eq(
  format(
    $$ select job_id, outcome from dbos.fail_jobs(array[%s]::bigint[], array['x'], 1000, 'w1', array[%s]) $$,
    :fail_many_job, :fail_many_token
  ),
  format($$ values (%s::bigint, 'pending'::text) $$, :fail_many_job),
  'fail_jobs with the 5 positional arguments of 0001 works'
);

-- The 2-argument retry_delay of 0001: same values, no jitter.
select is(
  dbos.retry_delay(3, 1000),
  interval '4 seconds',
  'retry_delay with the 2 arguments of 0001 gives the same backoff'
);

-- The 1-argument seconds_until_next_job of 0001.
delete from dbos.job_queue;
select dbos.enqueue('compat.sleep', '{}', now() + interval '42 seconds') as sleep_job \gset
select is(
  dbos.seconds_until_next_job(array['compat.sleep']),
  42::float8,
  'seconds_until_next_job with the 1 argument of 0001 works'
);

select * from finish();
rollback;
