-- Bulk operations by job name: dbos.cancel_pending_jobs (pending jobs only)
-- and dbos.retry_dead_letter_jobs (replay every dead letter of a name).
-- The dead letter keeps priority, queue_name, dedup_key and timeout_seconds,
-- and a replay restores them.

begin;
select plan(22);

-- cancel_pending_jobs: every pending job of the name, nothing else.
select dbos.enqueue('bulk.cancel') as due_job \gset
select dbos.enqueue('bulk.cancel', '{}', now() + interval '1 day') as future_job \gset
select dbos.enqueue('bulk.cancel') as running_job \gset
select dbos.enqueue('bulk.cancel') as retrying_job \gset
select dbos.enqueue('bulk.cancel') as completed_job \gset
select dbos.enqueue('bulk.other') as other_job \gset
update dbos.job_queue set scheduled_for = now() - interval '1 minute' where id in (:running_job, :retrying_job, :completed_job);
select count(*) as claimed from dbos.claim_job('w1', array['bulk.cancel'], 3) \gset
select dbos.fail_job(:retrying_job, 'flaky', 60000) as outcome \gset
select dbos.complete_job(:completed_job) as completed \gset

select is(
  dbos.cancel_pending_jobs('bulk.cancel'),
  3,
  'cancel_pending_jobs returns how many pending jobs of the name it cancelled'
);
select results_eq(
  format(
    $$ select id, status, completed_at from dbos.job_queue where id in (%s, %s, %s) order by id $$,
    :due_job, :future_job, :retrying_job
  ),
  format(
    $$ values (%s::bigint, 'cancelled'::text, now()), (%s, 'cancelled', now()), (%s, 'cancelled', now()) $$,
    :due_job, :future_job, :retrying_job
  ),
  'due, scheduled and retry-waiting jobs of the name end cancelled at now()'
);
select results_eq(
  $$ select status, cancel_requested from dbos.job_queue where id = $$ || :running_job,
  $$ values ('running'::text, false) $$,
  'a running job of the name is left alone (no cancel requested)'
);
select is(
  (select status from dbos.job_queue where id = :completed_job),
  'completed',
  'a completed job of the name stays completed'
);
select is(
  (select status from dbos.job_queue where id = :other_job),
  'pending',
  'jobs of another name stay pending'
);
select is(
  dbos.cancel_pending_jobs('bulk.cancel'),
  0,
  'cancel_pending_jobs again finds nothing to cancel'
);
select is(
  dbos.cancel_pending_jobs('bulk.nobody'),
  0,
  'cancel_pending_jobs of an unknown name returns 0'
);
select is_empty(
  $$ select from dbos.claim_job('w1', array['bulk.cancel'], 10) $$,
  'cancelled jobs are never claimed'
);

-- The dead letter keeps priority, queue_name, dedup_key, timeout_seconds.
delete from dbos.job_queue;
select dbos.enqueue(
  'bulk.dead', '{"n": 1}', now() - interval '3 minutes', 1,
  priority => 7, queue_name => 'mail', dedup_key => 'mail-1', timeout_seconds => 45
) as dead_1 \gset
select dbos.enqueue('bulk.dead', '{"n": 2}', now() - interval '2 minutes', 2) as dead_2 \gset
select dbos.enqueue('bulk.dead-other', '{"n": 3}', now() - interval '1 minute', 1) as dead_other \gset

select id as claimed from dbos.claim_job('w1', array['bulk.dead'], 1) \gset
select dbos.fail_job(:dead_1, 'first death') as outcome \gset
update dbos.failed_jobs set failed_at = now() - interval '10 minutes' where id = :dead_1;
select results_eq(
  $$
    select job_name, payload, priority, queue_name, dedup_key, timeout_seconds, max_attempts
    from dbos.failed_jobs where id = $$ || :dead_1,
  $$ values ('bulk.dead'::text, '{"n": 1}'::jsonb, 7, 'mail'::text, 'mail-1'::text, 45, 1) $$,
  'fail_job dead-letters a job with its priority, queue_name, dedup_key and timeout_seconds'
);

-- dead_2 dies through rescue_expired_jobs (lease lost on its last attempt).
select id as claimed from dbos.claim_job('w1', array['bulk.dead'], 1) \gset
update dbos.job_queue set attempt = 2, lease_expires_at = now() - interval '1 second' where id = :dead_2;
select dbos.rescue_expired_jobs() as rescued \gset
select results_eq(
  $$ select priority, queue_name, dedup_key, timeout_seconds from dbos.failed_jobs where id = $$ || :dead_2,
  $$ values (0, 'default'::text, null::text, null::int) $$,
  'rescue_expired_jobs dead-letters a job with its (default) priority, queue, key and timeout'
);
select id as claimed from dbos.claim_job('w1', array['bulk.dead-other'], 1) \gset
select dbos.fail_job(:dead_other, 'other death') as outcome \gset

-- retry_dead_letter_jobs: every dead letter of the name, oldest first.
select array(select dbos.retry_dead_letter_jobs('bulk.dead')) as replayed \gset
select is(
  cardinality(:'replayed'::bigint[]),
  2,
  'retry_dead_letter_jobs returns one new id per dead letter of the name'
);
select results_eq(
  format(
    $$
      select payload from dbos.job_queue as j
      join unnest(%L::bigint[]) with ordinality as r (id, n) on r.id = j.id
      order by r.n
    $$,
    :'replayed'
  ),
  $$ values ('{"n": 1}'::jsonb), ('{"n": 2}') $$,
  'retry_dead_letter_jobs replays the oldest dead letter first and returns ids in that order'
);
select results_eq(
  format(
    $$
      select job_name, payload, status, attempt, max_attempts, scheduled_for,
        priority, queue_name, dedup_key, timeout_seconds
      from dbos.job_queue where id = %s
    $$,
    (:'replayed'::bigint[])[1]
  ),
  $$
    values (
      'bulk.dead'::text, '{"n": 1}'::jsonb, 'pending'::text, 0, 1, now(),
      7, 'mail'::text, 'mail-1'::text, 45
    )
  $$,
  'a replay restores priority, queue_name, dedup_key and timeout_seconds, with a fresh attempt, due now'
);
select results_eq(
  format(
    $$ select max_attempts, priority, queue_name from dbos.job_queue where id = %s $$,
    (:'replayed'::bigint[])[2]
  ),
  $$ values (2, 0, 'default'::text) $$,
  'a replay of a job with the defaults keeps the defaults and its max_attempts'
);
select is_empty(
  $$ select from dbos.failed_jobs where job_name = 'bulk.dead' $$,
  'retry_dead_letter_jobs deletes the dead letters it replayed'
);
select results_eq(
  $$ select id from dbos.failed_jobs $$,
  array[:dead_other::bigint],
  'dead letters of other names are left alone'
);
select is_empty(
  $$ select dbos.retry_dead_letter_jobs('bulk.dead') $$,
  'retry_dead_letter_jobs again finds nothing to replay'
);
select is_empty(
  $$ select dbos.retry_dead_letter_jobs('bulk.nobody') $$,
  'retry_dead_letter_jobs of an unknown name returns no ids'
);

-- The replayed job holds its dedup key again.
select is(
  dbos.enqueue('bulk.dead', dedup_key => 'mail-1'),
  (:'replayed'::bigint[])[1],
  'the replayed job holds its dedup_key again'
);
-- It runs under its queue's limit and its timeout.
select dbos.set_queue_limit('mail', 0);
select is_empty(
  $$ select from dbos.claim_job('w1', array['bulk.dead'], 10, 60, array['mail']) $$,
  'the replayed job is in its queue again (a paused queue holds it back)'
);
select dbos.set_queue_limit('mail', null);
select results_eq(
  $$ select lease_expires_at from dbos.claim_job('w1', array['bulk.dead'], 10, 600, array['mail']) $$,
  $$ values (now() + interval '45 seconds') $$,
  'the replayed job runs under its timeout again (lease of 45 s, not 600 s)'
);

-- retry_dead_letter_job (one job) restores the columns as well.
select dbos.retry_dead_letter_job(:dead_other) as replayed_other \gset
select results_eq(
  $$ select job_name, priority, queue_name from dbos.job_queue where id = $$ || :replayed_other,
  $$ values ('bulk.dead-other'::text, 0, 'default'::text) $$,
  'retry_dead_letter_job replays one dead letter the same way'
);

select * from finish();
rollback;
