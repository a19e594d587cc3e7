-- dbos.rescue_expired_jobs: a running job whose lease expired counts as a
-- failed attempt. Leases are expired by moving lease_expires_at into the past.

begin;
select plan(17);

prepare expire(bigint) as
update dbos.job_queue set lease_expires_at = now() - interval '1 second' where id = $1;

delete from dbos.job_queue;

select dbos.enqueue('rescue.retry', '{"n": 1}') as retry_job \gset
select dbos.enqueue('rescue.dead', '{"n": 2}') as dead_job \gset
select dbos.enqueue('rescue.cancel') as cancel_job \gset
select dbos.enqueue('rescue.alive') as alive_job \gset
select dbos.enqueue('rescue.done') as done_job \gset
select dbos.enqueue('rescue.waiting', '{}', now() + interval '1 hour') as waiting_job \gset
select array(select id from dbos.claim_job('w1', batch_size => 10) order by id) as claimed \gset

-- retry: attempt 1 of 3; dead: its last attempt; cancel: cancel requested;
-- alive: lease still valid; done: completed.
update dbos.job_queue set attempt = 3 where id = :dead_job;
select dbos.cancel_job(:cancel_job) as cancel_outcome \gset
select dbos.complete_job(:done_job) as completed \gset
execute expire(:retry_job);
execute expire(:dead_job);
execute expire(:cancel_job);

select is(
  dbos.rescue_expired_jobs(),
  3,
  'rescue_expired_jobs returns how many jobs it rescued'
);
select results_eq(
  $$
    select status, attempt, scheduled_for - now(), locked_by, lease_expires_at, completed_at
    from dbos.job_queue where id = $$ || :retry_job,
  $$ values ('pending'::text, 1, interval '1 second', null::text, null::timestamptz, null::timestamptz) $$,
  'an expired job goes back to pending after the backoff of its attempt, without holder or lease'
);
select matches(
  (select error from dbos.job_queue where id = :retry_job),
  '^lease expired at .*: worker w1 stopped heartbeating \(attempt 1 of 3\)$',
  'the error of a rescued job says the lease expired, the worker and the attempt'
);
select is_empty(
  $$ select from dbos.job_queue where id = $$ || :dead_job,
  'an expired job on its last attempt leaves dbos.job_queue'
);
select results_eq(
  $$ select job_name, payload, attempt, max_attempts from dbos.failed_jobs where id = $$ || :dead_job,
  $$ values ('rescue.dead'::text, '{"n": 2}'::jsonb, 3, 3) $$,
  'an expired job on its last attempt is dead-lettered with its id, name, payload and attempts'
);
select matches(
  (select error from dbos.failed_jobs where id = :dead_job),
  '^lease expired',
  'the dead letter''s error says the lease expired'
);
select results_eq(
  $$ select status, completed_at, lease_expires_at from dbos.job_queue where id = $$ || :cancel_job,
  $$ values ('cancelled'::text, now(), null::timestamptz) $$,
  'an expired job whose cancel was requested ends cancelled'
);
select results_eq(
  $$ select status, locked_by, lease_expires_at from dbos.job_queue where id = $$ || :alive_job,
  $$ values ('running'::text, 'w1'::text, now() + interval '60 seconds') $$,
  'a job whose lease has not expired is untouched'
);
select results_eq(
  $$ select status, completed_at from dbos.job_queue where id = $$ || :done_job,
  $$ values ('completed'::text, now()) $$,
  'a completed job is untouched'
);
select results_eq(
  $$ select status, scheduled_for from dbos.job_queue where id = $$ || :waiting_job,
  $$ values ('pending'::text, now() + interval '1 hour') $$,
  'a pending job is untouched'
);
select is(
  dbos.rescue_expired_jobs(),
  0,
  'a second rescue finds nothing'
);

-- The rescued job runs again; its next expiry waits 2 s, then a custom base.
update dbos.job_queue set scheduled_for = now() where id = :retry_job;
select lease_token as token from dbos.claim_job('w2', array['rescue.retry']) \gset
select is(:token, 2, 'the rescued job is claimed again under a new lease_token');
execute expire(:retry_job);
select is(dbos.rescue_expired_jobs(), 1, 'rescue_expired_jobs rescues the second attempt');
select is(
  (select scheduled_for - now() from dbos.job_queue where id = :retry_job),
  interval '2 seconds',
  'the second expiry waits 2 s'
);

select dbos.enqueue('rescue.custom') as custom_job \gset
select id as claimed_custom from dbos.claim_job('w3', array['rescue.custom']) \gset
execute expire(:custom_job);
select is(dbos.rescue_expired_jobs(250), 1, 'rescue_expired_jobs takes a custom retry_delay_ms');
select is(
  (select scheduled_for - now() from dbos.job_queue where id = :custom_job),
  interval '250 milliseconds',
  'with retry_delay_ms 250 the rescued job waits 250 ms'
);

-- A worker that comes back after the rescue cannot complete the old claim.
select is(
  dbos.complete_job(:custom_job, 'w3'),
  false,
  'the worker of a rescued job can no longer complete it'
);

select * from finish();
rollback;
