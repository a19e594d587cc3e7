-- Timeouts: a job's timeout_seconds bounds each attempt. claim_job never
-- leases past it (lease = least(lease_seconds, timeout)), heartbeat and
-- report_progress never extend past started_at + timeout, and
-- rescue_expired_jobs fails such an attempt with "timed out: ...".
-- Inside this transaction now() is constant: a long run is simulated by
-- moving started_at (and the lease) back.

begin;
select plan(27);

prepare lease_of(bigint) as
select lease_expires_at from dbos.job_queue where id = $1;

-- enqueue: storing and validating timeout_seconds.
select dbos.enqueue('timeout.stored', timeout_seconds => 10) as stored_job \gset
select dbos.enqueue('timeout.none') as none_job \gset
select dbos.enqueue('timeout.null', timeout_seconds => null) as null_job \gset
select results_eq(
  format($$ select timeout_seconds from dbos.job_queue where id in (%s, %s, %s) order by id $$, :stored_job, :none_job, :null_job),
  $$ values (10), (null::int), (null) $$,
  'enqueue stores timeout_seconds; none by default or for NULL'
);
select count(*) as jobs_before_errors from dbos.job_queue \gset
select throws_ok(
  $$ select dbos.enqueue('timeout.bad', timeout_seconds => 0) $$,
  '22023', null,
  'enqueue refuses timeout_seconds 0 with 22023'
);
select throws_ok(
  $$ select dbos.enqueue('timeout.bad', timeout_seconds => -5) $$,
  '22023', null,
  'enqueue refuses a negative timeout_seconds with 22023'
);
select throws_ok(
  $$
    select dbos.enqueue_many(
      array['timeout.bad', 'timeout.bad'], array['{}', '{}']::jsonb[],
      timeout_seconds => array[30, 0]
    )
  $$,
  '22023', null,
  'enqueue_many refuses a timeout_seconds element below 1 with 22023'
);
select throws_ok(
  $$
    select dbos.enqueue_many(
      array['timeout.bad', 'timeout.bad'], array['{}', '{}']::jsonb[],
      timeout_seconds => array[30]
    )
  $$,
  '22023', null,
  'enqueue_many refuses timeout_seconds of another length than job_names with 22023'
);
select is(
  (select count(*) from dbos.job_queue), :jobs_before_errors::bigint,
  'a refused enqueue inserts nothing'
);
select array(
  select dbos.enqueue_many(
    array['timeout.many', 'timeout.many'], array['{}', '{}']::jsonb[],
    timeout_seconds => array[5, null]
  )
) as many_jobs \gset
select results_eq(
  format($$ select timeout_seconds from dbos.job_queue where id = any(%L::bigint[]) order by id $$, :'many_jobs'),
  $$ values (5), (null::int) $$,
  'enqueue_many stores timeout_seconds[i] for job i, a NULL element meaning none'
);

-- claim_job: the lease never goes past the timeout.
select is(
  (select lease_expires_at from dbos.claim_job('w1', array['timeout.stored'], 1, 60)),
  now() + interval '10 seconds',
  'claim_job leases a job of timeout 10 s for 10 s, not lease_seconds 60'
);
select dbos.enqueue('timeout.long', timeout_seconds => 300) as long_job \gset
select is(
  (select lease_expires_at from dbos.claim_job('w1', array['timeout.long'], 1, 60)),
  now() + interval '60 seconds',
  'claim_job leases a job of timeout 300 s for lease_seconds (60 s)'
);
select is(
  (select lease_expires_at from dbos.claim_job('w1', array['timeout.none'], 1, 60)),
  now() + interval '60 seconds',
  'claim_job leases a job without timeout for lease_seconds'
);

-- heartbeat: extended, but never past started_at + timeout.
update dbos.job_queue
set started_at = now() - interval '280 seconds', lease_expires_at = now() + interval '5 seconds'
where id = :long_job;
select is_empty(
  format($$ select * from dbos.heartbeat('w1', array[%s]::bigint[], 60) $$, :long_job),
  'heartbeat of a job near its timeout still holds it (no exception row)'
);
select results_eq(
  'execute lease_of(' || :long_job || ')',
  $$ values (now() + interval '20 seconds') $$,
  'heartbeat extends the lease only to started_at + timeout (20 s left), not now() + 60 s'
);
update dbos.job_queue set started_at = now() - interval '30 seconds' where id = :long_job;
select is_empty(
  format($$ select * from dbos.heartbeat('w1', array[%s]::bigint[], 60) $$, :long_job),
  'heartbeat of a job far from its timeout holds it'
);
select results_eq(
  'execute lease_of(' || :long_job || ')',
  $$ values (now() + interval '60 seconds') $$,
  'far from its timeout, heartbeat extends the lease to now() + lease_seconds'
);
select is_empty(
  format($$ select * from dbos.heartbeat('w1', array[%s]::bigint[], 60) $$, :none_job),
  'heartbeat of a job without timeout holds it'
);
update dbos.job_queue set lease_expires_at = now() + interval '1 second' where id = :none_job;
select count(*) as beat from dbos.heartbeat('w1', array[:none_job]::bigint[], 600) \gset
select results_eq(
  'execute lease_of(' || :none_job || ')',
  $$ values (now() + interval '600 seconds') $$,
  'a job without timeout is extended to now() + lease_seconds, however long'
);

-- report_progress: the same bound.
update dbos.job_queue
set started_at = now() - interval '295 seconds', lease_expires_at = now() + interval '1 second'
where id = :long_job;
select is(
  dbos.report_progress(:long_job, 90, 'almost', 120),
  'held',
  'report_progress of a job near its timeout returns held'
);
select results_eq(
  'execute lease_of(' || :long_job || ')',
  $$ values (now() + interval '5 seconds') $$,
  'report_progress extends the lease only to started_at + timeout (5 s left)'
);

-- rescue_expired_jobs: a run past its timeout fails the attempt.
delete from dbos.job_queue;
select dbos.enqueue('timeout.rescue', '{}', max_attempts => 2, timeout_seconds => 30) as rescue_job \gset
select id as claimed from dbos.claim_job('w1', array['timeout.rescue']) \gset
update dbos.job_queue
set started_at = now() - interval '31 seconds', lease_expires_at = now() - interval '1 second'
where id = :rescue_job;
select is(dbos.rescue_expired_jobs(), 1, 'rescue_expired_jobs rescues a job past its timeout');
select results_eq(
  $$
    select status, attempt, scheduled_for - now(), left(error, 11), lease_expires_at
    from dbos.job_queue where id = $$ || :rescue_job,
  $$ values ('pending'::text, 1, interval '1 second', 'timed out: '::text, null::timestamptz) $$,
  'a timed-out attempt is retried after the backoff, with an error starting "timed out: "'
);
select matches(
  (select error from dbos.job_queue where id = :rescue_job),
  'timeout of 30 s.*worker w1.*attempt 1 of 2',
  'the timeout error names the timeout, the worker and the attempt'
);

-- The next attempt gets a fresh timeout window.
update dbos.job_queue set scheduled_for = now() where id = :rescue_job;
select results_eq(
  $$ select started_at, lease_expires_at from dbos.claim_job('w1', array['timeout.rescue'], 1, 600) $$,
  $$ values (now(), now() + interval '30 seconds') $$,
  'each attempt has its own timeout: the retry is leased until its own started_at + 30 s'
);

-- On the last attempt, a timeout dead-letters the job, keeping the timeout.
update dbos.job_queue
set started_at = now() - interval '40 seconds', lease_expires_at = now() - interval '10 seconds'
where id = :rescue_job;
select is(dbos.rescue_expired_jobs(), 1, 'rescue_expired_jobs rescues the last attempt too');
select results_eq(
  $$ select left(error, 11), attempt, timeout_seconds from dbos.failed_jobs where id = $$ || :rescue_job,
  $$ values ('timed out: '::text, 2, 30) $$,
  'a timed-out last attempt is dead-lettered with "timed out: ..." and its timeout_seconds'
);

-- A lease that expired before the timeout is an ordinary lost lease.
select dbos.enqueue('timeout.lost', timeout_seconds => 3600) as lost_job \gset
select id as claimed from dbos.claim_job('w1', array['timeout.lost'], 1, 60) \gset
update dbos.job_queue
set started_at = now() - interval '120 seconds', lease_expires_at = now() - interval '60 seconds'
where id = :lost_job;
select is(dbos.rescue_expired_jobs(), 1, 'rescue_expired_jobs rescues a job whose worker stopped heartbeating');
select matches(
  (select error from dbos.job_queue where id = :lost_job),
  '^lease expired at ',
  'a lease that expired before the timeout says the lease expired, not "timed out"'
);

-- A job whose cancel was requested ends cancelled, even when timed out.
select dbos.enqueue('timeout.cancel', timeout_seconds => 5) as cancel_job \gset
select id as claimed from dbos.claim_job('w1', array['timeout.cancel']) \gset
select dbos.cancel_job(:cancel_job) as cancel_outcome \gset
update dbos.job_queue
set started_at = now() - interval '10 seconds', lease_expires_at = now() - interval '5 seconds'
where id = :cancel_job;
select dbos.rescue_expired_jobs() as rescued \gset
select results_eq(
  $$ select status, left(error, 11) from dbos.job_queue where id = $$ || :cancel_job,
  $$ values ('cancelled'::text, 'timed out: '::text) $$,
  'a timed-out job whose cancel was requested ends cancelled, with the timeout error'
);

select * from finish();
rollback;
