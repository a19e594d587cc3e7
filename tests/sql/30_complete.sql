-- dbos.complete_job and dbos.complete_jobs: only the holder of the current
-- claim completes a running job.

begin;
select plan(19);

select dbos.enqueue('complete.one') as job \gset

select is(
  dbos.complete_job(:job),
  false,
  'complete_job returns false for a pending job'
);
select is(
  (select status from dbos.job_queue where id = :job),
  'pending',
  'complete_job leaves a pending job pending'
);

-- First claim (token 1), released; second claim by the same worker (token 2).
select lease_token as first_token from dbos.claim_job('w1', array['complete.one']) \gset
select dbos.release_jobs('w1', array[:job::bigint]) as released \gset
select lease_token as token from dbos.claim_job('w1', array['complete.one']) \gset

select is(
  dbos.complete_job(:job, 'w2', :token),
  false,
  'complete_job returns false for a job held by another worker'
);
select is(
  dbos.complete_job(:job, 'w1', :first_token),
  false,
  'complete_job returns false under a stale lease_token, even from the same worker'
);
select results_eq(
  $$ select status, locked_by, lease_expires_at, completed_at from dbos.job_queue where id = $$ || :job,
  $$ values ('running'::text, 'w1'::text, now() + interval '60 seconds', null::timestamptz) $$,
  'a refused completion leaves the job running under its lease'
);
select is(
  dbos.complete_job(:job, 'w1', :token),
  true,
  'complete_job returns true for the holder of the current claim'
);
select results_eq(
  $$ select status, completed_at, lease_expires_at, locked_by from dbos.job_queue where id = $$ || :job,
  $$ values ('completed'::text, now(), null::timestamptz, 'w1'::text) $$,
  'complete_job sets completed, completed_at, drops the lease and keeps who finished it'
);
select is(
  dbos.complete_job(:job, 'w1', :token),
  false,
  'complete_job returns false for a job already completed'
);
select is(
  dbos.complete_job(-1),
  false,
  'complete_job returns false for an unknown id'
);

-- Without worker_id and lease_token, any running job completes.
select dbos.enqueue('complete.anyone') as anyone_job \gset
select id as claimed_anyone from dbos.claim_job('w1', array['complete.anyone']) \gset
select is(
  dbos.complete_job(:anyone_job),
  true,
  'complete_job without worker_id or lease_token completes a running job'
);

-- A retried job that succeeds keeps the error of its last failure.
select dbos.enqueue('complete.retried') as retried_job \gset
select id as claimed_retried from dbos.claim_job('w1', array['complete.retried']) \gset
select dbos.fail_job(:retried_job, 'first try broke', 0) as outcome \gset
select id as reclaimed_retried from dbos.claim_job('w1', array['complete.retried']) \gset
select is(
  dbos.complete_job(:retried_job, 'w1'),
  true,
  'complete_job completes the second attempt'
);
select results_eq(
  $$ select status, attempt, error from dbos.job_queue where id = $$ || :retried_job,
  $$ values ('completed'::text, 2, 'first try broke'::text) $$,
  'a completed job keeps the error of its last failure and its attempt count'
);

-- complete_jobs: many at once, returning the ids it completed.
select array(
  select dbos.enqueue_many(
    array['complete.many', 'complete.many', 'complete.many'],
    array['{}', '{}', '{}']::jsonb[]
  )
) as many_jobs \gset
select array(
  select lease_token from dbos.claim_job('w1', array['complete.many'], 3) order by id
) as many_tokens \gset

select is_empty(
  format(
    $$ select dbos.complete_jobs(%L, 'w2', %L) $$, :'many_jobs', :'many_tokens'
  ),
  'complete_jobs completes nothing for another worker'
);
select results_eq(
  format(
    $$ select dbos.complete_jobs(%L, 'w1', array[%s, %s + 1, %s]) order by 1 $$,
    :'many_jobs',
    (:'many_tokens'::int[])[1], (:'many_tokens'::int[])[2], (:'many_tokens'::int[])[3]
  ),
  format(
    $$ values (%s::bigint), (%s) $$,
    (:'many_jobs'::bigint[])[1], (:'many_jobs'::bigint[])[3]
  ),
  'complete_jobs returns only the jobs it completed, skipping a wrong lease_token'
);
select is(
  (select status from dbos.job_queue where id = (:'many_jobs'::bigint[])[2]),
  'running',
  'the job skipped by complete_jobs stays running'
);
select results_eq(
  format($$ select dbos.complete_jobs(%L) $$, :'many_jobs'),
  array[(:'many_jobs'::bigint[])[2]],
  'complete_jobs without worker_id and lease_tokens completes the running ones only'
);
select is(
  (select count(*)::int from dbos.job_queue
    where id = any(:'many_jobs'::bigint[]) and status = 'completed' and completed_at = now()),
  3,
  'complete_jobs set every job completed at now()'
);
select is_empty(
  $$ select dbos.complete_jobs('{}'::bigint[]) $$,
  'complete_jobs of an empty array completes nothing'
);

-- A running job whose cancel was requested may still complete.
select dbos.enqueue('complete.cancel') as cancel_job \gset
select id as claimed_cancel from dbos.claim_job('w1', array['complete.cancel']) \gset
select dbos.cancel_job(:cancel_job) as cancel_outcome \gset
select is(
  dbos.complete_job(:cancel_job, 'w1'),
  true,
  'complete_job completes a running job whose cancel was requested (it finished anyway)'
);

select * from finish();
rollback;
