-- Named queues: enqueue's queue_name, claim_job's queue_names, and the
-- concurrency limits of dbos.set_queue_limit (1 serial, 0 paused, NULL
-- none), enforced by claim_job. Only the single-session logic is tested
-- here; concurrent claimers of a limited queue are tested from Python.

begin;
select plan(40);

prepare running_in(text) as
select count(*)::int from dbos.job_queue where queue_name = $1 and status = 'running';

-- enqueue: the queue a job belongs to.
select dbos.enqueue('queues.default') as default_job \gset
select dbos.enqueue('queues.null', queue_name => null) as null_job \gset
select dbos.enqueue('queues.mail', queue_name => 'mail') as mail_job \gset
select results_eq(
  format(
    $$ select queue_name from dbos.job_queue where id in (%s, %s, %s) order by id $$,
    :default_job, :null_job, :mail_job
  ),
  $$ values ('default'::text), ('default'), ('mail') $$,
  'enqueue puts a job in queue ''default'' by default and for NULL, else in the queue given'
);
select lives_ok(
  format($$ select dbos.enqueue('queues.long', queue_name => %L) $$, repeat('q', 255)),
  'enqueue accepts a queue_name of 255 characters'
);

select count(*) as jobs_before_errors from dbos.job_queue \gset
select throws_ok(
  $$ select dbos.enqueue('queues.bad', queue_name => '') $$,
  '22023', null,
  'enqueue refuses an empty queue_name with 22023'
);
select throws_ok(
  format($$ select dbos.enqueue('queues.bad', queue_name => %L) $$, repeat('q', 256)),
  '22023', null,
  'enqueue refuses a queue_name of 256 characters with 22023'
);
select throws_ok(
  $$
    select dbos.enqueue_many(
      array['queues.bad', 'queues.bad'], array['{}', '{}']::jsonb[],
      queue_names => array['fine', '']
    )
  $$,
  '22023', null,
  'enqueue_many refuses an empty queue_names element with 22023'
);
select throws_ok(
  $$
    select dbos.enqueue_many(
      array['queues.bad', 'queues.bad'], array['{}', '{}']::jsonb[],
      queue_names => array['only-one']
    )
  $$,
  '22023', null,
  'enqueue_many refuses queue_names of another length than job_names with 22023'
);
select is(
  (select count(*) from dbos.job_queue), :jobs_before_errors::bigint,
  'a refused enqueue inserts nothing'
);
select array(
  select dbos.enqueue_many(
    array['queues.many', 'queues.many'], array['{}', '{}']::jsonb[],
    queue_names => array['mail', null]
  )
) as many_jobs \gset
select results_eq(
  format($$ select queue_name from dbos.job_queue where id = any(%L::bigint[]) order by id $$, :'many_jobs'),
  $$ values ('mail'::text), ('default') $$,
  'enqueue_many stores queue_names[i] for job i, a NULL element meaning ''default'''
);

-- claim_job's queue_names: serve chosen queues only.
delete from dbos.job_queue;
select dbos.enqueue('queues.pick', queue_name => 'mail') as pick_mail \gset
select dbos.enqueue('queues.pick', queue_name => 'reports') as pick_reports \gset
select dbos.enqueue('queues.pick') as pick_default \gset
select dbos.enqueue('queues.other', queue_name => 'mail') as pick_other_name \gset

select is_empty(
  $$ select from dbos.claim_job('w1', queue_names => array['nobody']) $$,
  'claim_job finds nothing in a queue without jobs'
);
select is_empty(
  $$ select from dbos.claim_job('w1', queue_names => '{}'::text[]) $$,
  'claim_job with an empty queue_names array takes nothing'
);
select results_eq(
  $$ select id from dbos.claim_job('w1', array['queues.pick'], 10, 60, array['mail']) $$,
  array[:pick_mail::bigint],
  'claim_job takes only jobs of the asked queue (and of the asked job names)'
);
select results_eq(
  $$ select id from dbos.claim_job('w1', batch_size => 10, queue_names => array['reports', 'default']) order by id $$,
  array[:pick_reports::bigint, :pick_default::bigint],
  'claim_job serves every queue of queue_names'
);
select results_eq(
  $$ select id from dbos.claim_job('w1', batch_size => 10) $$,
  array[:pick_other_name::bigint],
  'claim_job without queue_names takes jobs of any queue'
);

-- seconds_until_next_job of chosen queues.
delete from dbos.job_queue;
select dbos.enqueue('queues.sleep', '{}', now() + interval '20 seconds', queue_name => 'fast') as sleep_fast \gset
select dbos.enqueue('queues.sleep', '{}', now() + interval '70 seconds', queue_name => 'slow') as sleep_slow \gset
select is(
  dbos.seconds_until_next_job(queue_names => array['slow']),
  70::float8,
  'seconds_until_next_job counts only the asked queues'
);
select is(
  dbos.seconds_until_next_job(array['queues.sleep'], array['fast', 'slow']),
  20::float8,
  'seconds_until_next_job takes the earliest of the asked queues and names'
);
select is(
  dbos.seconds_until_next_job(queue_names => array['nobody']),
  null,
  'seconds_until_next_job is NULL for a queue without pending jobs'
);

-- set_queue_limit: stored in dbos.queues, upserted.
select dbos.set_queue_limit('serial', 1);
select results_eq(
  $$ select queue_name, concurrency_limit, updated_at from dbos.queues where queue_name = 'serial' $$,
  $$ values ('serial'::text, 1, now()) $$,
  'set_queue_limit stores the limit of the queue'
);
update dbos.queues set updated_at = now() - interval '1 day' where queue_name = 'serial';
select dbos.set_queue_limit('serial', 4);
select results_eq(
  $$ select count(*)::int, min(concurrency_limit), min(updated_at) from dbos.queues where queue_name = 'serial' $$,
  $$ values (1, 4, now()) $$,
  'set_queue_limit again replaces the limit in the same row and touches updated_at'
);
select throws_ok(
  $$ select dbos.set_queue_limit('serial', -1) $$,
  '22023', null,
  'set_queue_limit refuses a negative limit with 22023'
);
select throws_ok(
  $$ select dbos.set_queue_limit('', 1) $$,
  '22023', null,
  'set_queue_limit refuses an empty queue_name with 22023'
);
select throws_ok(
  $$ select dbos.set_queue_limit(null, 1) $$,
  '22023', null,
  'set_queue_limit refuses a NULL queue_name with 22023'
);
select throws_ok(
  format($$ select dbos.set_queue_limit(%L, 1) $$, repeat('q', 256)),
  '22023', null,
  'set_queue_limit refuses a queue_name of 256 characters with 22023'
);
select is(
  (select concurrency_limit from dbos.queues where queue_name = 'serial'),
  4,
  'a refused set_queue_limit leaves the limit unchanged'
);

-- A limit of 2: never more than 2 running jobs of the queue.
delete from dbos.job_queue;
select dbos.set_queue_limit('limited', 2);
select array(
  select dbos.enqueue_many(
    array['queues.a', 'queues.b', 'queues.a', 'queues.b'],
    array['{}', '{}', '{}', '{}']::jsonb[],
    array[now() - interval '4 minutes', now() - interval '3 minutes',
      now() - interval '2 minutes', now() - interval '1 minute'],
    queue_names => array['limited', 'limited', 'limited', 'limited']
  )
) as limited_jobs \gset

select results_eq(
  $$ select id from dbos.claim_job('w1', batch_size => 10) order by id $$,
  format(
    $$ values (%s::bigint), (%s) $$,
    (:'limited_jobs'::bigint[])[1], (:'limited_jobs'::bigint[])[2]
  ),
  'claim_job takes no more jobs of a limited queue than its limit (2 of 4), oldest first'
);
select is_empty(
  $$ select from dbos.claim_job('w2', batch_size => 10) $$,
  'with 2 running in a queue of limit 2, claim_job gets nothing from it'
);
select is_empty(
  $$ select from dbos.claim_job('w2', array['queues.a'], 10, 60, array['limited']) $$,
  'the limit counts running jobs of every job name in the queue'
);

-- Unlimited queues are still claimed while a limited one is full.
select dbos.enqueue('queues.free', '{}', now() - interval '1 hour') as free_job \gset
select results_eq(
  $$ select id from dbos.claim_job('w2', batch_size => 10) $$,
  array[:free_job::bigint],
  'a full limited queue does not block the jobs of unlimited queues'
);

-- A finished job frees a place.
select dbos.complete_job((:'limited_jobs'::bigint[])[1]) as completed \gset
select results_eq(
  $$ select id from dbos.claim_job('w2', batch_size => 10) $$,
  array[(:'limited_jobs'::bigint[])[3]],
  'when a running job of the queue finishes, one more job is claimed, not more'
);
select results_eq(
  'execute running_in(''limited'')',
  array[2],
  'the limited queue never has more running jobs than its limit'
);

-- Raising the limit lets more run.
select dbos.set_queue_limit('limited', 3);
select results_eq(
  $$ select id from dbos.claim_job('w2', batch_size => 10) $$,
  array[(:'limited_jobs'::bigint[])[4]],
  'a raised limit is used by the next claim'
);

-- A limit of 0 pauses the queue; NULL removes the limit.
delete from dbos.job_queue;
select dbos.set_queue_limit('paused', 0);
select dbos.enqueue('queues.paused', queue_name => 'paused') as paused_job_1 \gset
select dbos.enqueue('queues.paused', queue_name => 'paused') as paused_job_2 \gset
select dbos.enqueue('queues.paused', queue_name => 'paused') as paused_job_3 \gset
select is_empty(
  $$ select from dbos.claim_job('w1', batch_size => 10) $$,
  'claim_job takes nothing from a paused queue (limit 0)'
);
select is_empty(
  $$ select from dbos.claim_job('w1', batch_size => 10, queue_names => array['paused']) $$,
  'claim_job takes nothing from a paused queue even when asked for it'
);
select results_eq(
  $$ select status from dbos.job_queue where queue_name = 'paused' $$,
  $$ values ('pending'::text), ('pending'), ('pending') $$,
  'the jobs of a paused queue stay pending'
);
select dbos.set_queue_limit('paused', null);
select is(
  (select concurrency_limit from dbos.queues where queue_name = 'paused'),
  null,
  'set_queue_limit with NULL stores no limit'
);
select is(
  (select count(*)::int from dbos.claim_job('w1', batch_size => 10)),
  3,
  'after the limit is removed (NULL), every due job of the queue is claimed'
);

-- Limited queues are claimed after the unlimited ones.
delete from dbos.job_queue;
select dbos.set_queue_limit('serial', 1);
select dbos.enqueue('queues.order', '{}', now() - interval '1 hour', priority => 10, queue_name => 'serial') as serial_job \gset
select dbos.enqueue('queues.order', '{}', now(), priority => -10) as unlimited_job \gset
select results_eq(
  $$ select id from dbos.claim_job('w1') $$,
  array[:unlimited_job::bigint],
  'a batch fills with unlimited queues first, then limited ones (whatever the priority)'
);
select results_eq(
  $$ select id from dbos.claim_job('w1') $$,
  array[:serial_job::bigint],
  'the limited queue''s job is claimed once the unlimited jobs are gone'
);

-- A serial queue (limit 1): one job at a time, in order.
delete from dbos.job_queue;
select dbos.enqueue('queues.serial', '{"n": 1}', now() - interval '2 minutes', queue_name => 'serial') as serial_1 \gset
select dbos.enqueue('queues.serial', '{"n": 2}', now() - interval '1 minute', queue_name => 'serial') as serial_2 \gset
select dbos.enqueue('queues.unlimited', queue_name => 'other') as other_job \gset
select results_eq(
  $$ select id from dbos.claim_job('w1', batch_size => 10) order by id $$,
  array[:serial_1::bigint, :other_job::bigint],
  'a batch takes one job of a serial queue and every job of the unlimited ones'
);
select dbos.fail_job(:serial_1, 'retry me', 0) as outcome \gset
select results_eq(
  $$ select id from dbos.claim_job('w1', batch_size => 10) $$,
  array[:serial_2::bigint],
  'once the serial job fails, the next claim takes exactly one job of the queue (the oldest due)'
);

-- claim_batch, the internal statement, knows nothing of limits.
delete from dbos.job_queue;
select dbos.set_queue_limit('paused', 0);
select dbos.enqueue('queues.batch', queue_name => 'paused') as batch_paused \gset
select dbos.enqueue('queues.batch', queue_name => 'excluded') as batch_excluded \gset
select results_eq(
  $$ select id from dbos.claim_batch('w1', null, null, array['excluded'], 10, 60) $$,
  array[:batch_paused::bigint],
  'claim_batch claims without the queue limits and skips excluded_queues (claim_job enforces the limits)'
);

select * from finish();
rollback;
