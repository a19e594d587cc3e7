-- The public API pin: schema, tables, columns, indexes and functions of
-- dbos. An accidental new, renamed or dropped object fails here first.

begin;
select plan(146);

select has_schema('dbos', 'schema dbos exists');

select tables_are(
  'dbos',
  array['schema_migrations', 'job_queue', 'failed_jobs', 'queues', 'schedules'],
  'dbos has exactly the ledger, the queue, the dead letter, the queue settings and the schedules tables'
);

select views_are(
  'dbos', array['queue_stats'], 'dbos has exactly one view, queue_stats'
);

select functions_are(
  'dbos',
  array[
    'wake_workers', 'enqueue_many', 'enqueue',
    'claim_batch', 'claim_job', 'seconds_until_next_job', 'set_queue_limit',
    'retry_delay', 'frees_limited_queue', 'complete_jobs', 'complete_job',
    'fail_jobs', 'fail_job',
    'snooze_jobs', 'snooze_job',
    'heartbeat', 'report_progress', 'rescue_expired_jobs', 'release_jobs',
    'cancel_job', 'retry_dead_letter_job', 'retry_dead_letter_jobs',
    'cancel_pending_jobs', 'retry_job', 'prune_jobs',
    'cron_field', 'cron_next', 'schedule', 'unschedule', 'enqueue_due_schedules',
    'get_job', 'list_jobs', 'list_dead_letter_jobs',
    'dashboard_counts', 'dashboard_throughput', 'dashboard_oldest_due_at',
    'dashboard_workers', 'dashboard_list_jobs', 'dashboard_list_dead_letter_jobs',
    'get_dead_letter_job'
  ],
  'dbos has exactly the documented functions'
);

-- Exactly these columns: a new one is a decision, pinned here.
select columns_are(
  'dbos', 'job_queue',
  array[
    'id', 'job_name', 'payload', 'status', 'attempt', 'max_attempts', 'error',
    'scheduled_for', 'created_at', 'started_at', 'completed_at', 'locked_by',
    'lease_expires_at', 'lease_token', 'cancel_requested', 'progress', 'progress_message',
    'priority', 'queue_name', 'dedup_key', 'timeout_seconds', 'result'
  ],
  'job_queue has exactly the documented columns'
);
select columns_are(
  'dbos', 'failed_jobs',
  array[
    'id', 'job_name', 'payload', 'error', 'attempt', 'max_attempts', 'original_created_at',
    'failed_at', 'priority', 'queue_name', 'dedup_key', 'timeout_seconds'
  ],
  'failed_jobs has exactly the documented columns'
);
select columns_are(
  'dbos', 'queues', array['queue_name', 'concurrency_limit', 'updated_at'],
  'queues has exactly the documented columns'
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
-- 0002: priority, queue, dedup key, timeout, result.
select col_type_is('dbos', 'job_queue', 'priority', 'integer', 'job_queue.priority is int');
select col_not_null('dbos', 'job_queue', 'priority', 'job_queue.priority is not null');
select col_default_is('dbos', 'job_queue', 'priority', 0, 'job_queue.priority defaults to 0');
select col_type_is('dbos', 'job_queue', 'queue_name', 'text', 'job_queue.queue_name is text');
select col_not_null('dbos', 'job_queue', 'queue_name', 'job_queue.queue_name is not null');
select col_default_is('dbos', 'job_queue', 'queue_name', 'default'::text, 'job_queue.queue_name defaults to ''default''');
select col_has_check('dbos', 'job_queue', 'queue_name', 'job_queue.queue_name is limited by a check');
select col_type_is('dbos', 'job_queue', 'dedup_key', 'text', 'job_queue.dedup_key is text');
select col_is_null('dbos', 'job_queue', 'dedup_key', 'job_queue.dedup_key is nullable (no key)');
select col_hasnt_default('dbos', 'job_queue', 'dedup_key', 'job_queue.dedup_key has no default');
select col_has_check('dbos', 'job_queue', 'dedup_key', 'job_queue.dedup_key is limited by a check');
select col_type_is('dbos', 'job_queue', 'timeout_seconds', 'integer', 'job_queue.timeout_seconds is int');
select col_is_null('dbos', 'job_queue', 'timeout_seconds', 'job_queue.timeout_seconds is nullable (no timeout)');
select col_hasnt_default('dbos', 'job_queue', 'timeout_seconds', 'job_queue.timeout_seconds has no default');
select col_has_check('dbos', 'job_queue', 'timeout_seconds', 'job_queue.timeout_seconds is limited by a check');
select col_type_is('dbos', 'job_queue', 'result', 'jsonb', 'job_queue.result is jsonb');
select col_is_null('dbos', 'job_queue', 'result', 'job_queue.result is nullable (no result yet)');
select col_hasnt_default('dbos', 'job_queue', 'result', 'job_queue.result has no default');

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
select col_type_is('dbos', 'failed_jobs', 'priority', 'integer', 'failed_jobs.priority is int');
select col_default_is('dbos', 'failed_jobs', 'priority', 0, 'failed_jobs.priority defaults to 0');
select col_type_is('dbos', 'failed_jobs', 'queue_name', 'text', 'failed_jobs.queue_name is text');
select col_default_is('dbos', 'failed_jobs', 'queue_name', 'default'::text, 'failed_jobs.queue_name defaults to ''default''');
select col_type_is('dbos', 'failed_jobs', 'dedup_key', 'text', 'failed_jobs.dedup_key is text');
select col_type_is('dbos', 'failed_jobs', 'timeout_seconds', 'integer', 'failed_jobs.timeout_seconds is int');
select hasnt_column('dbos', 'failed_jobs', 'result', 'failed_jobs has no result (a dead job returned nothing)');
select is(
  (select count(*)::int from pg_constraint
    where conrelid = 'dbos.failed_jobs'::regclass and contype = 'f'),
  0,
  'failed_jobs.id is not a foreign key (the row leaves job_queue in the same transaction)'
);

-- dbos.queues: one row per queue with settings.
select col_is_pk('dbos', 'queues', 'queue_name', 'queues.queue_name is the primary key');
select col_type_is('dbos', 'queues', 'queue_name', 'text', 'queues.queue_name is text');
select col_type_is('dbos', 'queues', 'concurrency_limit', 'integer', 'queues.concurrency_limit is int');
select col_is_null('dbos', 'queues', 'concurrency_limit', 'queues.concurrency_limit is nullable (NULL: no limit)');
select col_has_check('dbos', 'queues', 'concurrency_limit', 'queues.concurrency_limit is limited by a check');
select col_type_is('dbos', 'queues', 'updated_at', 'timestamp with time zone', 'queues.updated_at is timestamptz');
select col_default_is('dbos', 'queues', 'updated_at', 'now()', 'queues.updated_at defaults to now()');

-- dbos.schedules: one row per periodic job.
select columns_are(
  'dbos', 'schedules',
  array[
    'schedule_name', 'cron', 'timezone', 'job_name', 'payload', 'queue_name',
    'priority', 'max_attempts', 'next_run_at', 'last_run_at', 'created_at'
  ],
  'schedules has exactly the documented columns'
);
select col_is_pk('dbos', 'schedules', 'schedule_name', 'schedules.schedule_name is the primary key');
select col_type_is('dbos', 'schedules', 'cron', 'text', 'schedules.cron is text');
select col_not_null('dbos', 'schedules', 'cron', 'schedules.cron is not null');
select col_default_is('dbos', 'schedules', 'timezone', 'UTC'::text, 'schedules.timezone defaults to UTC');
select col_type_is('dbos', 'schedules', 'payload', 'jsonb', 'schedules.payload is jsonb');
select col_default_is('dbos', 'schedules', 'queue_name', 'default'::text, 'schedules.queue_name defaults to ''default''');
select col_default_is('dbos', 'schedules', 'priority', 0, 'schedules.priority defaults to 0');
select col_default_is('dbos', 'schedules', 'max_attempts', 3, 'schedules.max_attempts defaults to 3');
select col_type_is('dbos', 'schedules', 'next_run_at', 'timestamp with time zone', 'schedules.next_run_at is timestamptz');
select col_not_null('dbos', 'schedules', 'next_run_at', 'schedules.next_run_at is not null');
select col_type_is('dbos', 'schedules', 'last_run_at', 'timestamp with time zone', 'schedules.last_run_at is timestamptz');
select col_is_null('dbos', 'schedules', 'last_run_at', 'schedules.last_run_at is nullable (never ran)');

-- dbos.queue_stats
select has_column('dbos', 'queue_stats', 'job_name', 'queue_stats has job_name');
select has_column('dbos', 'queue_stats', 'status', 'queue_stats has status');
select col_type_is('dbos', 'queue_stats', 'jobs', 'bigint', 'queue_stats.jobs is a bigint count');

-- Indexes: the claim, rescue, prune and dead-letter reads.
select indexes_are(
  'dbos', 'job_queue',
  array[
    'job_queue_pkey', 'job_queue_claim_idx', 'job_queue_dedup_key_idx',
    'job_queue_lease_idx', 'job_queue_finished_idx',
    'job_queue_job_name_idx', 'job_queue_cancelled_idx', 'job_queue_error_idx'
  ],
  'job_queue has exactly the primary key, claim, dedup key, lease, finished and the dashboard''s indexes'
);
select indexes_are(
  'dbos', 'failed_jobs',
  array['failed_jobs_pkey', 'failed_jobs_failed_at_idx', 'failed_jobs_job_name_idx'],
  'failed_jobs has exactly the primary key, the failed_at index and the job name index'
);
select has_index(
  'dbos', 'job_queue', 'job_queue_claim_idx', array['priority', 'scheduled_for', 'id'],
  'the claim index is on (priority, scheduled_for, id)'
);
select is(
  (select pg_get_indexdef('dbos.job_queue_claim_idx'::regclass)),
  'CREATE INDEX job_queue_claim_idx ON dbos.job_queue USING btree '
  || '(priority DESC, scheduled_for, id) WHERE (status = ''pending''::text)',
  'the claim index is in claim order: priority descending, then scheduled_for, then id'
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
select index_is_unique(
  'dbos', 'job_queue', 'job_queue_dedup_key_idx',
  'the dedup key index is unique'
);
select has_index(
  'dbos', 'job_queue', 'job_queue_dedup_key_idx', array['dedup_key'],
  'the dedup key index is on dedup_key'
);
select is(
  (select pg_get_expr(indpred, indrelid) from pg_index
    where indexrelid = 'dbos.job_queue_dedup_key_idx'::regclass),
  '((dedup_key IS NOT NULL) AND (status = ANY (ARRAY[''pending''::text, ''running''::text])))',
  'the dedup key index holds only keyed pending and running rows'
);
select indexes_are(
  'dbos', 'queues', array['queues_pkey'],
  'queues has exactly its primary key'
);
select indexes_are(
  'dbos', 'schedules', array['schedules_pkey'],
  'schedules has exactly its primary key'
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
    select p.proname::text from pg_proc as p
    where p.pronamespace = 'dbos'::regnamespace
    group by p.proname having count(*) > 1
  $$,
  'no dbos function is overloaded: the grown functions replaced the old ones, so no call is ambiguous'
);
select is_empty(
  $$
    select p.oid::regprocedure::text from pg_proc as p
    where p.pronamespace = 'dbos'::regnamespace and p.proisstrict
  $$,
  'no dbos function is STRICT'
);
select is(
  array(
    select p.proname::text from pg_proc as p
    where p.pronamespace = 'dbos'::regnamespace and not p.prosecdef
    order by 1
  ),
  array[
    'claim_batch', 'cron_field', 'cron_next', 'frees_limited_queue', 'retry_delay',
    'wake_workers'
  ],
  'every API function is SECURITY DEFINER; only internal helpers are not'
);
select ok(
  obj_description('dbos.job_queue'::regclass, 'pg_class') is not null
  and obj_description('dbos.failed_jobs'::regclass, 'pg_class') is not null
  and obj_description('dbos.queue_stats'::regclass, 'pg_class') is not null
  and obj_description('dbos.queues'::regclass, 'pg_class') is not null
  and obj_description('dbos.schedules'::regclass, 'pg_class') is not null,
  'the tables and the view have comments'
);

-- Volatility: only the cron field parser is immutable (retry_delay has
-- jitter now, so it is volatile); readers are stable.
select volatility_is('dbos', 'retry_delay', array['integer', 'integer', 'integer', 'double precision'], 'volatile', 'retry_delay is volatile (its jitter is random)');
select volatility_is('dbos', 'cron_field', array['text', 'integer', 'integer', 'text', 'text[]'], 'immutable', 'cron_field is immutable');
select volatility_is('dbos', 'cron_next', array['text', 'timestamp with time zone', 'text'], 'stable', 'cron_next is stable (time zone rules)');
select volatility_is('dbos', 'seconds_until_next_job', array['text[]', 'text[]'], 'stable', 'seconds_until_next_job is stable');
select volatility_is('dbos', 'get_job', array['bigint'], 'stable', 'get_job is stable');
select volatility_is('dbos', 'list_jobs', array['text', 'integer'], 'stable', 'list_jobs is stable');
select volatility_is('dbos', 'list_dead_letter_jobs', array['integer'], 'stable', 'list_dead_letter_jobs is stable');
select is_empty(
  $$
    select p.oid::regprocedure::text from pg_proc as p
    where p.pronamespace = 'dbos'::regnamespace
      and p.provolatile <> 'v'
      and p.proname not in (
        'cron_field', 'cron_next', 'seconds_until_next_job', 'frees_limited_queue',
        'get_job', 'list_jobs', 'list_dead_letter_jobs',
        'dashboard_counts', 'dashboard_throughput', 'dashboard_oldest_due_at',
        'dashboard_workers', 'dashboard_list_jobs', 'dashboard_list_dead_letter_jobs',
        'get_dead_letter_job'
      )
  $$,
  'every function that writes is volatile'
);

-- Return types of the API.
select function_returns('dbos', 'enqueue', array['text', 'jsonb', 'timestamp with time zone', 'integer', 'integer', 'text', 'text', 'integer'], 'bigint', 'enqueue returns bigint');
select function_returns('dbos', 'enqueue_many', array['text[]', 'jsonb[]', 'timestamp with time zone[]', 'integer[]', 'integer[]', 'text[]', 'text[]', 'integer[]'], 'setof bigint', 'enqueue_many returns setof bigint');
select function_returns('dbos', 'claim_job', array['text', 'text[]', 'integer', 'integer', 'text[]'], 'setof dbos.job_queue', 'claim_job returns setof job_queue');
select function_returns('dbos', 'claim_batch', array['text', 'text[]', 'text[]', 'text[]', 'integer', 'integer'], 'setof dbos.job_queue', 'claim_batch returns setof job_queue');
select function_returns('dbos', 'seconds_until_next_job', array['text[]', 'text[]'], 'double precision', 'seconds_until_next_job returns double precision');
select function_returns('dbos', 'set_queue_limit', array['text', 'integer'], 'void', 'set_queue_limit returns void');
select function_returns('dbos', 'retry_delay', array['integer', 'integer', 'integer', 'double precision'], 'interval', 'retry_delay returns interval');
select function_returns('dbos', 'complete_jobs', array['bigint[]', 'text', 'integer[]', 'jsonb[]'], 'setof bigint', 'complete_jobs returns setof bigint');
select function_returns('dbos', 'complete_job', array['bigint', 'text', 'integer', 'jsonb'], 'boolean', 'complete_job returns boolean');
select function_returns('dbos', 'fail_job', array['bigint', 'text', 'integer', 'text', 'integer', 'integer', 'double precision', 'boolean'], 'text', 'fail_job returns text');
select function_returns('dbos', 'fail_jobs', array['bigint[]', 'text[]', 'integer', 'text', 'integer[]', 'integer', 'double precision', 'boolean'], 'setof record', 'fail_jobs returns a table');
select function_returns('dbos', 'snooze_jobs', array['bigint[]', 'double precision[]', 'text', 'integer[]'], 'setof bigint', 'snooze_jobs returns setof bigint');
select function_returns('dbos', 'snooze_job', array['bigint', 'double precision', 'text', 'integer'], 'boolean', 'snooze_job returns boolean');
select function_returns('dbos', 'retry_dead_letter_jobs', array['text'], 'setof bigint', 'retry_dead_letter_jobs returns setof bigint');
select function_returns('dbos', 'cancel_pending_jobs', array['text'], 'integer', 'cancel_pending_jobs returns int');
select function_returns('dbos', 'cron_field', array['text', 'integer', 'integer', 'text', 'text[]'], 'integer[]', 'cron_field returns int[]');
select function_returns('dbos', 'cron_next', array['text', 'timestamp with time zone', 'text'], 'timestamp with time zone', 'cron_next returns timestamptz');
select function_returns('dbos', 'schedule', array['text', 'text', 'text', 'jsonb', 'text', 'text', 'integer', 'integer'], 'timestamp with time zone', 'schedule returns the next tick (timestamptz)');
select function_returns('dbos', 'unschedule', array['text'], 'boolean', 'unschedule returns boolean');
select function_returns('dbos', 'enqueue_due_schedules', array[]::text[], 'integer', 'enqueue_due_schedules returns int');
select function_returns('dbos', 'wake_workers', array[]::text[], 'void', 'wake_workers returns void');

select * from finish();
rollback;
