-- Unique jobs: while a pending or running job holds a dedup_key, enqueueing
-- the key again returns that job's id and inserts nothing; once the holder
-- is finished (completed, cancelled, dead-lettered) the key is free again.

begin;
select plan(27);

prepare jobs_with_key(text) as
select count(*)::int from dbos.job_queue where dedup_key = $1;

-- A pending holder.
select dbos.enqueue('dedup.job', '{"v": 1}', dedup_key => 'k1') as holder \gset
select is(
  (select dedup_key from dbos.job_queue where id = :holder),
  'k1',
  'enqueue stores the dedup_key'
);
select is(
  dbos.enqueue('dedup.job', '{"v": 2}', now() + interval '1 hour', dedup_key => 'k1'),
  :holder::bigint,
  'enqueue of a key held by a pending job returns that job''s id'
);
select results_eq(
  'execute jobs_with_key(''k1'')',
  array[1],
  'a deduplicated enqueue inserts nothing'
);
select results_eq(
  $$ select payload, scheduled_for from dbos.job_queue where id = $$ || :holder,
  $$ values ('{"v": 1}'::jsonb, now()) $$,
  'a deduplicated enqueue leaves the holder''s payload and time unchanged'
);
select is(
  dbos.enqueue('dedup.another-name', dedup_key => 'k1'),
  :holder::bigint,
  'the key is global: a job of another name with the key also gets the holder''s id'
);
select isnt(
  dbos.enqueue('dedup.job', dedup_key => 'k2'),
  :holder::bigint,
  'another key is another job'
);

-- Without a key, no deduplication.
select dbos.enqueue('dedup.none') as none_1 \gset
select dbos.enqueue('dedup.none', dedup_key => null) as none_2 \gset
select isnt(
  :none_1::bigint, :none_2::bigint,
  'jobs without a dedup_key (default or NULL) are never deduplicated'
);

-- A running holder, then a retry, still holds the key.
select id as claimed from dbos.claim_job('w1', array['dedup.job'], 1) \gset
select is(:claimed::bigint, :holder::bigint, 'the holder is claimed');
select is(
  dbos.enqueue('dedup.job', dedup_key => 'k1'),
  :holder::bigint,
  'enqueue of a key held by a running job returns that job''s id'
);
select dbos.fail_job(:holder, 'flaky', 0) as outcome \gset
select is(
  dbos.enqueue('dedup.job', dedup_key => 'k1'),
  :holder::bigint,
  'a job waiting for its retry (pending again) still holds its key'
);

-- A completed holder frees the key.
select id as claimed from dbos.claim_job('w1', array['dedup.job'], 1) \gset
select dbos.complete_job(:holder) as completed \gset
select dbos.enqueue('dedup.job', '{"v": 3}', dedup_key => 'k1') as after_complete \gset
select isnt(
  :after_complete::bigint, :holder::bigint,
  'after the holder completes, enqueue with the key inserts a new job'
);
select results_eq(
  $$ select status, payload from dbos.job_queue where dedup_key = 'k1' order by id $$,
  $$ values ('completed'::text, '{"v": 1}'::jsonb), ('pending', '{"v": 3}') $$,
  'the completed job keeps its key; the new job holds it'
);

-- A cancelled holder frees the key.
select dbos.cancel_job(:after_complete) as cancelled \gset
select dbos.enqueue('dedup.job', dedup_key => 'k1') as after_cancel \gset
select isnt(
  :after_cancel::bigint, :after_complete::bigint,
  'after the holder is cancelled, enqueue with the key inserts a new job'
);

-- A dead-lettered holder frees the key.
select dbos.enqueue('dedup.dead', max_attempts => 1, dedup_key => 'k-dead') as dead_holder \gset
select id as claimed from dbos.claim_job('w1', array['dedup.dead']) \gset
select dbos.fail_job(:dead_holder, 'fatal') as outcome \gset
select dbos.enqueue('dedup.dead', dedup_key => 'k-dead') as after_dead \gset
select isnt(
  :after_dead::bigint, :dead_holder::bigint,
  'after the holder is dead-lettered, enqueue with the key inserts a new job'
);
select is(
  (select dedup_key from dbos.failed_jobs where id = :dead_holder),
  'k-dead',
  'the dead letter keeps the dedup_key'
);

-- Replaying a dead letter whose key is held again goes through the dedup.
select dbos.retry_dead_letter_job(:dead_holder) as replayed \gset
select is(
  :replayed::bigint, :after_dead::bigint,
  'replaying a dead letter whose key is held returns the holder''s id'
);
select results_eq(
  'execute jobs_with_key(''k-dead'')',
  array[1],
  'such a replay inserts no second holder of the key'
);

-- enqueue_many: ids in order, duplicates inside the call share one job.
delete from dbos.job_queue;
select dbos.enqueue('dedup.many', '{"n": 0}', dedup_key => 'held') as held_job \gset
select array(
  select dbos.enqueue_many(
    array['dedup.many', 'dedup.many', 'dedup.many', 'dedup.many', 'dedup.many'],
    array['{"n": 1}', '{"n": 2}', '{"n": 3}', '{"n": 4}', '{"n": 5}']::jsonb[],
    dedup_keys => array['a', null, 'a', 'held', null]
  )
) as many_ids \gset
select is(
  (:'many_ids'::bigint[])[1], (:'many_ids'::bigint[])[3],
  'enqueue_many gives two elements with the same key the same id'
);
select is(
  (:'many_ids'::bigint[])[4], :held_job::bigint,
  'enqueue_many returns the holder''s id for a key already held'
);
select is(
  (select count(distinct id)::int from unnest(:'many_ids'::bigint[]) as u (id)),
  4,
  'enqueue_many with keys [a, NULL, a, held, NULL] returns 5 ids of 4 jobs (3 new, 1 held)'
);
select results_eq(
  $$ select payload, dedup_key from dbos.job_queue where job_name = 'dedup.many' order by id $$,
  $$
    values ('{"n": 0}'::jsonb, 'held'::text), ('{"n": 1}', 'a'), ('{"n": 2}', null),
      ('{"n": 5}', null)
  $$,
  'enqueue_many inserts the first element of a key and every element without one'
);
select ok(
  (:'many_ids'::bigint[])[1] < (:'many_ids'::bigint[])[2]
  and (:'many_ids'::bigint[])[2] < (:'many_ids'::bigint[])[5],
  'enqueue_many with keys returns the new ids in the order given'
);

-- Bad keys.
select count(*) as jobs_before_errors from dbos.job_queue \gset
select throws_ok(
  $$ select dbos.enqueue('dedup.bad', dedup_key => '') $$,
  '22023', null,
  'enqueue refuses an empty dedup_key with 22023'
);
select throws_ok(
  format($$ select dbos.enqueue('dedup.bad', dedup_key => %L) $$, repeat('k', 256)),
  '22023', null,
  'enqueue refuses a dedup_key of 256 characters with 22023'
);
select throws_ok(
  $$
    select dbos.enqueue_many(
      array['dedup.bad', 'dedup.bad', null], array['{}', '{}', '{}']::jsonb[],
      dedup_keys => array['fine', 'fine-2', 'fine-3']
    )
  $$,
  '22004', null,
  'enqueue_many with keys refuses a NULL job name with 22004 before inserting any job'
);
select is(
  (select count(*) from dbos.job_queue), :jobs_before_errors::bigint,
  'a refused enqueue with keys inserts nothing, not even its valid elements'
);

-- The unique index keeps a second holder out, whoever writes.
select throws_ok(
  $$ insert into dbos.job_queue (job_name, dedup_key) values ('dedup.direct', 'held') $$,
  '23505', null,
  'a second pending job with a held key is refused by the unique index'
);

select * from finish();
rollback;
