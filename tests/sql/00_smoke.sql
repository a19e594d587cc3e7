-- The public API pin: schema, tables, columns, indexes and functions of
-- dbos. An accidental new, renamed or dropped object fails here first.

begin;
select plan(72);

select has_schema('dbos', 'schema dbos exists');

select tables_are(
  'dbos',
  array['schema_migrations', 'job_queue', 'failed_jobs'],
  'dbos has exactly the ledger, the queue and the dead letter tables'
);

select views_are(
  'dbos', array['queue_stats'], 'dbos has exactly one view, queue_stats'
);

select functions_are(
  'dbos',
  array[
    'wake_workers', 'enqueue_many', 'enqueue',
    'claim_job', 'seconds_until_next_job',
    'retry_delay', 'complete_jobs', 'complete_job', 'fail_jobs', 'fail_job',
    'heartbeat', 'report_progress', 'rescue_expired_jobs', 'release_jobs',
    'cancel_job', 'retry_dead_letter_job', 'retry_job', 'prune_jobs',
    'get_job', 'list_jobs', 'list_dead_letter_jobs'
  ],
  'dbos has exactly the documented functions'
);

-- dbos.job_queue: the reference's columns, types and defaults.
select col_is_pk('dbos', 'job_queue', 'id', 'job_queue.id is the primary key');
select col_type_is('dbos', 'job_queue', 'id', 'bigint', 'job_queue.id is bigint');
select is(
  (select attidentity::text from pg_attribute
    where attrelid = 'dbos.job_queue'::regclass and attname = 'id'),
  'a',
  'job_queue.id is generated always as identity'
);
select col_type_is('dbos', 'job_queue', 'job_name', 'text', 'job_queue.job_name is text');
select col_not_null('dbos', 'job_queue', 'job_name', 'job_queue.job_name is not null');
select col_type_is('dbos', 'job_queue', 'payload', 'jsonb', 'job_queue.payload is jsonb');
select col_default_is('dbos', 'job_queue', 'payload', '{}'::jsonb, 'job_queue.payload defaults to {}');
select col_type_is('dbos', 'job_queue', 'status', 'text', 'job_queue.status is text, not an enum');
select col_default_is('dbos', 'job_queue', 'status', 'pending'::text, 'job_queue.status defaults to pending');
select col_has_check('dbos', 'job_queue', 'status', 'job_queue.status is limited by a check');
select col_type_is('dbos', 'job_queue', 'attempt', 'integer', 'job_queue.attempt is int');
select col_default_is('dbos', 'job_queue', 'attempt', 0, 'job_queue.attempt defaults to 0');
select col_type_is('dbos', 'job_queue', 'max_attempts', 'integer', 'job_queue.max_attempts is int');
select col_default_is('dbos', 'job_queue', 'max_attempts', 3, 'job_queue.max_attempts defaults to 3');
select col_type_is('dbos', 'job_queue', 'error', 'text', 'job_queue.error is text');
select col_type_is('dbos', 'job_queue', 'scheduled_for', 'timestamp with time zone', 'job_queue.scheduled_for is timestamptz');
select col_default_is('dbos', 'job_queue', 'scheduled_for', 'now()', 'job_queue.scheduled_for defaults to now()');
select col_type_is('dbos', 'job_queue', 'created_at', 'timestamp with time zone', 'job_queue.created_at is timestamptz');
select col_default_is('dbos', 'job_queue', 'created_at', 'now()', 'job_queue.created_at defaults to now()');
select col_type_is('dbos', 'job_queue', 'started_at', 'timestamp with time zone', 'job_queue.started_at is timestamptz');
select col_type_is('dbos', 'job_queue', 'completed_at', 'timestamp with time zone', 'job_queue.completed_at is timestamptz');
select col_type_is('dbos', 'job_queue', 'locked_by', 'text', 'job_queue.locked_by is text');
select col_type_is('dbos', 'job_queue', 'lease_expires_at', 'timestamp with time zone', 'job_queue.lease_expires_at is timestamptz');
select col_type_is('dbos', 'job_queue', 'lease_token', 'integer', 'job_queue.lease_token is int');
select col_default_is('dbos', 'job_queue', 'lease_token', 0, 'job_queue.lease_token defaults to 0');
select col_type_is('dbos', 'job_queue', 'cancel_requested', 'boolean', 'job_queue.cancel_requested is boolean');
select col_default_is('dbos', 'job_queue', 'cancel_requested', false, 'job_queue.cancel_requested defaults to false');
select has_column('dbos', 'job_queue', 'progress', 'job_queue has progress');
select has_column('dbos', 'job_queue', 'progress_message', 'job_queue has progress_message');
select col_type_is('dbos', 'job_queue', 'progress_message', 'text', 'job_queue.progress_message is text');

-- dbos.failed_jobs: what the reference's dead-letter query selects.
select col_is_pk('dbos', 'failed_jobs', 'id', 'failed_jobs.id is the primary key');
select col_type_is('dbos', 'failed_jobs', 'id', 'bigint', 'failed_jobs.id is bigint (the job''s id)');
select col_type_is('dbos', 'failed_jobs', 'job_name', 'text', 'failed_jobs.job_name is text');
select col_type_is('dbos', 'failed_jobs', 'payload', 'jsonb', 'failed_jobs.payload is jsonb');
select col_type_is('dbos', 'failed_jobs', 'error', 'text', 'failed_jobs.error is text');
select col_type_is('dbos', 'failed_jobs', 'attempt', 'integer', 'failed_jobs.attempt is int');
select col_type_is('dbos', 'failed_jobs', 'max_attempts', 'integer', 'failed_jobs.max_attempts is int');
select col_type_is('dbos', 'failed_jobs', 'original_created_at', 'timestamp with time zone', 'failed_jobs.original_created_at is timestamptz');
select col_type_is('dbos', 'failed_jobs', 'failed_at', 'timestamp with time zone', 'failed_jobs.failed_at is timestamptz');
select col_default_is('dbos', 'failed_jobs', 'failed_at', 'now()', 'failed_jobs.failed_at defaults to now()');
select is(
  (select count(*)::int from pg_constraint
    where conrelid = 'dbos.failed_jobs'::regclass and contype = 'f'),
  0,
  'failed_jobs.id is not a foreign key (the row leaves job_queue in the same transaction)'
);

-- dbos.queue_stats
select has_column('dbos', 'queue_stats', 'job_name', 'queue_stats has job_name');
select has_column('dbos', 'queue_stats', 'status', 'queue_stats has status');
select col_type_is('dbos', 'queue_stats', 'jobs', 'bigint', 'queue_stats.jobs is a bigint count');

-- Indexes: the claim, rescue, prune and dead-letter reads.
select indexes_are(
  'dbos', 'job_queue',
  array['job_queue_pkey', 'job_queue_claim_idx', 'job_queue_lease_idx', 'job_queue_finished_idx'],
  'job_queue has exactly the primary key, claim, lease and finished indexes'
);
select indexes_are(
  'dbos', 'failed_jobs',
  array['failed_jobs_pkey', 'failed_jobs_failed_at_idx'],
  'failed_jobs has exactly the primary key and the failed_at index'
);
select has_index(
  'dbos', 'job_queue', 'job_queue_claim_idx', array['scheduled_for', 'id'],
  'the claim index is on (scheduled_for, id)'
);
select is(
  (select pg_get_expr(indpred, indrelid) from pg_index
    where indexrelid = 'dbos.job_queue_claim_idx'::regclass),
  '(status = ''pending''::text)',
  'the claim index holds only pending rows'
);
select has_index(
  'dbos', 'job_queue', 'job_queue_lease_idx', array['lease_expires_at'],
  'the lease index is on lease_expires_at'
);
select is(
  (select pg_get_expr(indpred, indrelid) from pg_index
    where indexrelid = 'dbos.job_queue_lease_idx'::regclass),
  '(lease_expires_at IS NOT NULL)',
  'the lease index holds only leased (running) rows, by its lease not its status'
);
select has_index(
  'dbos', 'job_queue', 'job_queue_finished_idx', array['completed_at'],
  'the finished index is on completed_at'
);
select is(
  (select pg_get_expr(indpred, indrelid) from pg_index
    where indexrelid = 'dbos.job_queue_finished_idx'::regclass),
  '(status = ANY (ARRAY[''completed''::text, ''cancelled''::text]))',
  'the finished index holds only completed and cancelled rows'
);
select has_index(
  'dbos', 'failed_jobs', 'failed_jobs_failed_at_idx', array['failed_at', 'id'],
  'the dead-letter index is on (failed_at, id)'
);

-- Every function: documented, search_path pinned, not STRICT, not SECURITY
-- DEFINER (a NULL argument should get a clear error, not a silent NULL).
select is_empty(
  $$
    select p.oid::regprocedure::text from pg_proc as p
    where p.pronamespace = 'dbos'::regnamespace
      and coalesce(obj_description(p.oid, 'pg_proc'), '') = ''
  $$,
  'every dbos function has a comment'
);
select is_empty(
  $$
    select p.oid::regprocedure::text from pg_proc as p
    where p.pronamespace = 'dbos'::regnamespace
      and not coalesce(
        'search_path=pg_catalog, pg_temp' = any(p.proconfig), false
      )
  $$,
  'every dbos function pins search_path = pg_catalog, pg_temp'
);
select is_empty(
  $$
    select p.oid::regprocedure::text from pg_proc as p
    where p.pronamespace = 'dbos'::regnamespace and p.proisstrict
  $$,
  'no dbos function is STRICT'
);
select is_empty(
  $$
    select p.oid::regprocedure::text from pg_proc as p
    where p.pronamespace = 'dbos'::regnamespace and p.prosecdef
  $$,
  'no dbos function is SECURITY DEFINER'
);
select ok(
  obj_description('dbos.job_queue'::regclass, 'pg_class') is not null
  and obj_description('dbos.failed_jobs'::regclass, 'pg_class') is not null
  and obj_description('dbos.queue_stats'::regclass, 'pg_class') is not null,
  'the tables and the view have comments'
);

-- Volatility: only the pure backoff is immutable; readers are stable.
select volatility_is('dbos', 'retry_delay', array['integer', 'integer'], 'immutable', 'retry_delay is immutable');
select volatility_is('dbos', 'seconds_until_next_job', array['text[]'], 'stable', 'seconds_until_next_job is stable');
select volatility_is('dbos', 'get_job', array['bigint'], 'stable', 'get_job is stable');
select volatility_is('dbos', 'list_jobs', array['text', 'integer'], 'stable', 'list_jobs is stable');
select volatility_is('dbos', 'list_dead_letter_jobs', array['integer'], 'stable', 'list_dead_letter_jobs is stable');
select is_empty(
  $$
    select p.oid::regprocedure::text from pg_proc as p
    where p.pronamespace = 'dbos'::regnamespace
      and p.provolatile <> 'v'
      and p.proname not in (
        'retry_delay', 'seconds_until_next_job',
        'get_job', 'list_jobs', 'list_dead_letter_jobs'
      )
  $$,
  'every function that writes is volatile'
);

-- Return types of the API.
select function_returns('dbos', 'enqueue', array['text', 'jsonb', 'timestamp with time zone', 'integer'], 'bigint', 'enqueue returns bigint');
select function_returns('dbos', 'claim_job', array['text', 'text[]', 'integer', 'integer'], 'setof dbos.job_queue', 'claim_job returns setof job_queue');
select function_returns('dbos', 'fail_job', array['bigint', 'text', 'integer', 'text', 'integer'], 'text', 'fail_job returns text');
select function_returns('dbos', 'wake_workers', array[]::text[], 'void', 'wake_workers returns void');

select * from finish();
rollback;
