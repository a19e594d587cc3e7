-- Priorities: higher priority is claimed first; then oldest scheduled_for,
-- then id. Set by enqueue / enqueue_many (default 0, NULL = default).

begin;
select plan(14);

-- Defaults and storage.
select dbos.enqueue('priority.default') as default_job \gset
select dbos.enqueue('priority.null', priority => null) as null_job \gset
select dbos.enqueue('priority.negative', priority => -5) as negative_job \gset
select results_eq(
  format(
    $$ select priority from dbos.job_queue where id in (%s, %s, %s) order by id $$,
    :default_job, :null_job, :negative_job
  ),
  $$ values (0), (0), (-5) $$,
  'enqueue stores priority 0 by default, 0 for NULL, and any integer given (even negative)'
);
select dbos.enqueue('priority.max', priority => 2147483647) as max_job \gset
select is(
  (select priority from dbos.job_queue where id = :max_job),
  2147483647,
  'enqueue accepts the largest int priority'
);
select array(
  select dbos.enqueue_many(
    array['priority.many', 'priority.many', 'priority.many'],
    array['{}', '{}', '{}']::jsonb[],
    priorities => array[7, null, -1]
  )
) as many_jobs \gset
select results_eq(
  format($$ select priority from dbos.job_queue where id = any(%L::bigint[]) order by id $$, :'many_jobs'),
  $$ values (7), (0), (-1) $$,
  'enqueue_many stores priorities[i] for job i, a NULL element meaning 0'
);
select throws_ok(
  $$ select dbos.enqueue_many(array['priority.bad', 'priority.bad'], array['{}', '{}']::jsonb[], priorities => array[1]) $$,
  '22023', null,
  'enqueue_many refuses priorities of another length than job_names with 22023'
);

-- Claim order: priority desc, then scheduled_for, then id.
delete from dbos.job_queue;
select dbos.enqueue('priority.order', '{"n": "low-old"}', now() - interval '1 hour', priority => -1) as low_old \gset
select dbos.enqueue('priority.order', '{"n": "zero-old"}', now() - interval '10 minutes') as zero_old \gset
select dbos.enqueue('priority.order', '{"n": "zero-new"}', now() - interval '1 minute') as zero_new \gset
select dbos.enqueue('priority.order', '{"n": "high-new"}', now(), priority => 10) as high_new \gset
select dbos.enqueue('priority.order', '{"n": "high-tie-1"}', now() - interval '5 minutes', priority => 5) as high_tie_1 \gset
select dbos.enqueue('priority.order', '{"n": "high-tie-2"}', now() - interval '5 minutes', priority => 5) as high_tie_2 \gset
select dbos.enqueue('priority.order', '{"n": "top-future"}', now() + interval '1 minute', priority => 100) as top_future \gset

select results_eq(
  $$ select id from dbos.claim_job('w1') $$,
  array[:high_new::bigint],
  'claim_job takes the highest priority first, even when it is the newest'
);
select results_eq(
  $$ select id from dbos.claim_job('w1') $$,
  array[:high_tie_1::bigint],
  'within one priority, the oldest scheduled_for, and on a tie the lowest id'
);
select results_eq(
  $$ select id from dbos.claim_job('w1') $$,
  array[:high_tie_2::bigint],
  'the second job of the tie follows'
);
select results_eq(
  $$ select id from dbos.claim_job('w1') $$,
  array[:zero_old::bigint],
  'then the next priority (0), oldest first'
);
select results_eq(
  $$ select id from dbos.claim_job('w1') $$,
  array[:zero_new::bigint],
  'then the newer job of priority 0'
);
select results_eq(
  $$ select id from dbos.claim_job('w1') $$,
  array[:low_old::bigint],
  'a negative priority runs after priority 0, however old it is'
);
select is_empty(
  $$ select from dbos.claim_job('w1') $$,
  'a high priority does not make a future job due'
);

-- A batch takes the top of the order.
delete from dbos.job_queue;
select dbos.enqueue('priority.batch', '{}', now() - interval '3 minutes', priority => 1) as batch_a \gset
select dbos.enqueue('priority.batch', '{}', now() - interval '2 minutes', priority => 3) as batch_b \gset
select dbos.enqueue('priority.batch', '{}', now() - interval '1 minute', priority => 2) as batch_c \gset
select dbos.enqueue('priority.batch', '{}', now() - interval '4 minutes', priority => 0) as batch_d \gset
select results_eq(
  $$ select id from dbos.claim_job('w1', batch_size => 2) order by id $$,
  array[:batch_b::bigint, :batch_c::bigint],
  'a batch takes the batch_size highest-priority due jobs'
);

-- A retry keeps its priority.
delete from dbos.job_queue;
select dbos.enqueue('priority.retry', priority => 9) as retry_job \gset
select id as claimed from dbos.claim_job('w1') \gset
select dbos.fail_job(:retry_job, 'flaky', 0) as outcome \gset
select dbos.enqueue('priority.retry', priority => 1) as other_job \gset
select results_eq(
  $$ select id, priority from dbos.claim_job('w1') $$,
  format($$ values (%s::bigint, 9) $$, :retry_job),
  'a failed job keeps its priority for the retry, ahead of a lower one'
);

-- The claim reads the claim index in priority order.
select is(
  (select indoption[0] & 1 from pg_index where indexrelid = 'dbos.job_queue_claim_idx'::regclass)::int,
  1,
  'the claim index stores priority descending, as claim_job reads it'
);

select * from finish();
rollback;
