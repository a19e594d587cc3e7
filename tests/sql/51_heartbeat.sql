-- dbos.heartbeat: a worker extends the leases it still holds and hears only
-- about the exceptions (lost, cancel_requested).

begin;
select plan(15);

prepare lease_of(bigint) as
select lease_expires_at from dbos.job_queue where id = $1;

select dbos.enqueue('heartbeat.a') as job_a \gset
select dbos.enqueue('heartbeat.b') as job_b \gset
select dbos.enqueue('heartbeat.other') as other_job \gset
select lease_token as token_a from dbos.claim_job('w1', array['heartbeat.a'], lease_seconds => 5) \gset
select lease_token as token_b from dbos.claim_job('w1', array['heartbeat.b'], lease_seconds => 5) \gset
select lease_token as other_token from dbos.claim_job('w2', array['heartbeat.other'], lease_seconds => 5) \gset

select is_empty(
  format(
    $$ select * from dbos.heartbeat('w1', array[%s, %s]::bigint[], 120, array[%s, %s]) $$,
    :job_a, :job_b, :token_a, :token_b
  ),
  'heartbeat returns no rows when the worker holds all its jobs'
);
select results_eq(
  format(
    $$ select lease_expires_at from dbos.job_queue where id in (%s, %s) $$,
    :job_a, :job_b
  ),
  $$ values (now() + interval '120 seconds'), (now() + interval '120 seconds') $$,
  'heartbeat extends the leases to now() + lease_seconds'
);
select is_empty(
  format($$ select * from dbos.heartbeat('w1', array[%s]::bigint[], 10) $$, :job_a),
  'heartbeat without lease_tokens checks the worker only'
);
select results_eq(
  'execute lease_of(' || :job_a || ')',
  $$ values (now() + interval '120 seconds') $$,
  'heartbeat never shortens a lease'
);
select is_empty(
  format($$ select * from dbos.heartbeat('w1', array[%s]::bigint[]) $$, :job_b),
  'heartbeat takes a default lease_seconds'
);

-- Another worker's job: lost, and its lease is untouched.
select results_eq(
  format(
    $$ select job_id, state from dbos.heartbeat('w1', array[%s, %s]::bigint[], 120) $$,
    :job_a, :other_job
  ),
  format($$ values (%s::bigint, 'lost'::text) $$, :other_job),
  'heartbeat reports lost for a job held by another worker, and only that one'
);
select results_eq(
  'execute lease_of(' || :other_job || ')',
  $$ values (now() + interval '5 seconds') $$,
  'heartbeat leaves another worker''s lease alone'
);

-- A stale token: lost, lease untouched.
select results_eq(
  format(
    $$ select job_id, state from dbos.heartbeat('w2', array[%s]::bigint[], 120, array[%s]) $$,
    :other_job, :other_token::int + 1
  ),
  format($$ values (%s::bigint, 'lost'::text) $$, :other_job),
  'heartbeat reports lost under a stale lease_token'
);
select results_eq(
  'execute lease_of(' || :other_job || ')',
  $$ values (now() + interval '5 seconds') $$,
  'heartbeat under a stale token does not extend the lease'
);

-- Cancel requested: reported, and the lease still extended (the worker is
-- alive and stopping).
update dbos.job_queue set lease_expires_at = now() + interval '5 seconds' where id = :job_b;
select dbos.cancel_job(:job_b) as cancel_outcome \gset
select results_eq(
  format(
    $$ select job_id, state from dbos.heartbeat('w1', array[%s, %s]::bigint[], 30) $$,
    :job_a, :job_b
  ),
  format($$ values (%s::bigint, 'cancel_requested'::text) $$, :job_b),
  'heartbeat reports cancel_requested for a job whose cancel was requested'
);
select results_eq(
  'execute lease_of(' || :job_b || ')',
  $$ values (now() + interval '30 seconds') $$,
  'heartbeat extends the lease of a job whose cancel was requested'
);

-- Finished, pending and unknown jobs are lost.
select dbos.complete_job(:job_a) as completed \gset
select dbos.release_jobs('w2', array[:other_job::bigint]) as released \gset
select results_eq(
  format(
    $$ select job_id, state from dbos.heartbeat('w1', array[%s, %s, -1]::bigint[]) order by job_id $$,
    :job_a, :other_job
  ),
  format(
    $$ values (-1::bigint, 'lost'::text), (%s, 'lost'), (%s, 'lost') $$,
    :job_a, :other_job
  ),
  'heartbeat reports lost for completed, pending and unknown jobs'
);
select is(
  (select lease_expires_at from dbos.job_queue where id = :job_a),
  null,
  'heartbeat gives no lease to a completed job'
);

select throws_ok(
  format($$ select dbos.heartbeat('w1', array[%s]::bigint[], 0) $$, :job_b),
  '22023', null,
  'heartbeat refuses lease_seconds 0 with 22023'
);
select throws_ok(
  format($$ select dbos.heartbeat('w1', array[%s]::bigint[], null) $$, :job_b),
  '22023', null,
  'heartbeat refuses a NULL lease_seconds with 22023'
);

select * from finish();
rollback;
