-- dbos.enqueue: one job, its defaults, and the input it refuses.
-- NOTIFY delivery needs a commit, so it is tested from Python; here we only
-- check that the wake-up function exists and runs.

begin;
select plan(27);

-- Defaults: a job due now, attempt 0 of 3, payload {}.
select dbos.enqueue('enqueue.defaults') as default_job \gset

select results_eq(
  $$
    select
      job_name, payload, status, attempt, max_attempts, error,
      scheduled_for, created_at, started_at, completed_at,
      locked_by, lease_expires_at, lease_token, cancel_requested,
      progress, progress_message
    from dbos.job_queue where id = $$ || :default_job,
  $$
    values (
      'enqueue.defaults'::text, '{}'::jsonb, 'pending'::text, 0, 3, null::text,
      now(), now(), null::timestamptz, null::timestamptz,
      null::text, null::timestamptz, 0, false,
      null::smallint, null::text
    )
  $$,
  'enqueue stores a pending job due now, attempt 0 of 3, payload {}'
);

-- The reference's calls: a payload, a future time, named max_attempts.
select dbos.enqueue(
  'send-welcome-email', '{"email": "user@example.com", "name": "Jane Doe"}'
) as email_job \gset
select is(
  (select payload from dbos.job_queue where id = :email_job),
  '{"email": "user@example.com", "name": "Jane Doe"}'::jsonb,
  'enqueue stores the payload as given'
);

select dbos.enqueue(
  'send-reminder', '{"userId": "123"}', now() + interval '24 hours'
) as reminder_job \gset
select is(
  (select scheduled_for from dbos.job_queue where id = :reminder_job),
  now() + interval '24 hours',
  'enqueue stores scheduled_for for a job scheduled in the future'
);

select dbos.enqueue(
  'critical-payment', '{"orderId": "456"}', max_attempts => 10
) as payment_job \gset
select results_eq(
  $$ select max_attempts, scheduled_for from dbos.job_queue where id = $$ || :payment_job,
  $$ values (10, now()) $$,
  'enqueue takes max_attempts in named notation, the other arguments default'
);

-- Any JSON value is a payload; an SQL NULL is stored as the JSON null.
select dbos.enqueue('enqueue.null-payload', null) as null_payload_job \gset
select is(
  (select payload from dbos.job_queue where id = :null_payload_job),
  'null'::jsonb,
  'enqueue stores an SQL NULL payload as the JSON value null'
);

select array[
  dbos.enqueue('enqueue.json', '[1, 2]'),
  dbos.enqueue('enqueue.json', '"text"'),
  dbos.enqueue('enqueue.json', '42')
] as json_jobs \gset
select results_eq(
  format(
    $$
      select j.payload
      from unnest(%L::bigint[]) with ordinality as u (id, n)
      inner join dbos.job_queue as j on j.id = u.id
      order by u.n
    $$,
    :'json_jobs'
  ),
  $$ values ('[1, 2]'::jsonb), ('"text"'::jsonb), ('42'::jsonb) $$,
  'enqueue stores arrays, strings and numbers as payloads'
);

-- NULL scheduled_for and max_attempts take the defaults.
select dbos.enqueue(
  'enqueue.null-defaults', '{}', null, null
) as null_defaults_job \gset
select results_eq(
  $$ select scheduled_for, max_attempts from dbos.job_queue where id = $$ || :null_defaults_job,
  $$ values (now(), 3) $$,
  'enqueue with NULL scheduled_for and max_attempts uses now and 3'
);

select ok(
  :email_job < :reminder_job and :reminder_job < :payment_job,
  'enqueue returns increasing ids'
);

select is(
  (select started_at from dbos.job_queue where id = :reminder_job),
  null,
  'a new job has no started_at'
);

-- Boundaries of job_name: 1 to 255 characters.
select lives_ok(
  $$ select dbos.enqueue(repeat('n', 255)) $$,
  'enqueue accepts a 255-character job_name'
);
select lives_ok(
  $$ select dbos.enqueue('é') $$,
  'enqueue accepts a one-character (multibyte) job_name'
);
select lives_ok(
  $$ select dbos.enqueue('enqueue.max-1', max_attempts => 1) $$,
  'enqueue accepts max_attempts 1'
);
select lives_ok(
  $$ select dbos.enqueue('enqueue.past', '{}', now() - interval '1 day') $$,
  'enqueue accepts a scheduled_for in the past'
);

-- Bad input: a clear SQLSTATE, and nothing inserted.
select count(*) as jobs_before_errors from dbos.job_queue \gset

select throws_ok(
  $$ select dbos.enqueue(null) $$,
  '22004', 'job_name must not be null',
  'enqueue refuses a NULL job_name with 22004'
);
select throws_ok(
  $$ select dbos.enqueue(null::text, '{}') $$,
  '22004', null,
  'enqueue refuses a NULL job_name with a payload with 22004'
);
select throws_ok(
  $$ select dbos.enqueue('') $$,
  '22023', null,
  'enqueue refuses an empty job_name with 22023'
);
select throws_ok(
  $$ select dbos.enqueue(repeat('n', 256)) $$,
  '22023', null,
  'enqueue refuses a 256-character job_name with 22023'
);
select throws_like(
  $$ select dbos.enqueue(repeat('n', 256)) $$,
  '%255 characters, got 256%',
  'the job_name error says the limit and the length'
);
select throws_ok(
  $$ select dbos.enqueue('enqueue.bad', max_attempts => 0) $$,
  '22023', 'max_attempts must be at least 1, got 0',
  'enqueue refuses max_attempts 0 with 22023'
);
select throws_ok(
  $$ select dbos.enqueue('enqueue.bad', max_attempts => -1) $$,
  '22023', null,
  'enqueue refuses a negative max_attempts with 22023'
);
select throws_ok(
  $$ select dbos.enqueue('enqueue.bad', '{}', 'infinity') $$,
  '22007', null,
  'enqueue refuses scheduled_for infinity with 22007'
);
select throws_ok(
  $$ select dbos.enqueue('enqueue.bad', '{}', '-infinity') $$,
  '22007', null,
  'enqueue refuses scheduled_for -infinity with 22007'
);
select is(
  (select count(*) from dbos.job_queue),
  :jobs_before_errors::bigint,
  'enqueue inserts nothing when it refuses its input'
);
select is(
  (select count(*) from dbos.job_queue where job_name = 'enqueue.bad'),
  0::bigint,
  'no job of a refused enqueue is in the queue'
);

-- enqueue runs in the caller's transaction.
savepoint before_enqueue;
select dbos.enqueue('enqueue.rolled-back') as rolled_back_job \gset
rollback to savepoint before_enqueue;
select is_empty(
  $$ select from dbos.job_queue where job_name = 'enqueue.rolled-back' $$,
  'an enqueue rolled back with the caller''s transaction leaves no job'
);

-- The wake-up hint.
select has_function(
  'dbos', 'wake_workers', array[]::text[], 'dbos.wake_workers() exists'
);
select lives_ok(
  $$ select dbos.wake_workers() $$,
  'dbos.wake_workers() runs (NOTIFY dbos_job_queue)'
);

select * from finish();
rollback;
