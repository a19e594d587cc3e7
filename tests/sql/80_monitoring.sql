-- The reference page's monitoring queries, run exactly as the page prints
-- them (upper case and all), against known data. If a query here stops
-- working, users' dashboards break.

begin;
select plan(12);

delete from dbos.job_queue;
delete from dbos.failed_jobs;

-- Known data.
-- Dead letters first (their claims must not take the other jobs).
select array(
  select dbos.enqueue_many(
    array['generate-invoice', 'send-welcome-email'],
    array['{"orderId": "1"}', '{"email": "a@example.com"}']::jsonb[],
    null,
    array[1, 1]
  )
) as dead_jobs \gset
select array(select id from dbos.claim_job('w1', batch_size => 2)) as claimed \gset
select array(
  select job_id from dbos.fail_jobs(:'dead_jobs'::bigint[], array['pdf failed', 'smtp down'])
) as failed \gset
update dbos.failed_jobs as d
set
  failed_at = now() - make_interval(mins => x.minutes_ago),
  original_created_at = now() - interval '1 day'
from unnest(:'dead_jobs'::bigint[], array[20, 10]) as x (id, minutes_ago)
where d.id = x.id;

-- Two running jobs: one for 6 minutes (slow), one for 1 minute.
select dbos.enqueue('import-csv', '{"file": "big.csv"}') as slow_job \gset
select dbos.enqueue('import-csv', '{"file": "small.csv"}') as quick_job \gset
select array(select id from dbos.claim_job('w1', array['import-csv'], 2)) as claimed \gset
update dbos.job_queue as j
set scheduled_for = now() - make_interval(mins => x.minutes)
from (values (:slow_job::bigint, 6), (:quick_job::bigint, 1)) as x (id, minutes)
where j.id = x.id;

-- Four completed jobs: two in one minute 10 minutes ago, one 30 minutes
-- ago, one 2 hours ago (outside the last hour).
select array(
  select dbos.enqueue_many(
    array_fill('send-welcome-email'::text, array[4]),
    array_fill('{}'::jsonb, array[4])
  )
) as done_jobs \gset
select array(select id from dbos.claim_job('w2', batch_size => 4)) as claimed \gset
select array(select dbos.complete_jobs(:'done_jobs'::bigint[])) as completed \gset
update dbos.job_queue as j
set completed_at = x.completed_at
from unnest(
  :'done_jobs'::bigint[],
  array[
    date_trunc('minute', now()) - interval '10 minutes' + interval '5 seconds',
    date_trunc('minute', now()) - interval '10 minutes' + interval '20 seconds',
    date_trunc('minute', now()) - interval '30 minutes' + interval '1 second',
    now() - interval '2 hours'
  ]
) as x (id, completed_at)
where j.id = x.id;

-- Two pending jobs and one cancelled.
select dbos.enqueue('send-reminder', '{"userId": "123"}', now() + interval '24 hours') as reminder_job \gset
select dbos.enqueue('critical-payment', '{"orderId": "456"}', max_attempts => 10) as payment_job \gset
select dbos.enqueue('send-reminder', '{"userId": "456"}') as cancelled_job \gset
select dbos.cancel_job(:cancelled_job) as cancel_outcome \gset

-- Jobs by status
select lives_ok(
  $$SELECT status, count(*) FROM dbos.job_queue GROUP BY status;$$,
  'the reference''s "jobs by status" query runs'
);
select set_eq(
  $$SELECT status, count(*) FROM dbos.job_queue GROUP BY status;$$,
  $$ values ('pending'::text, 2::bigint), ('running', 2), ('completed', 4), ('cancelled', 1) $$,
  '"jobs by status" counts the jobs of dbos.job_queue by status (dead letters are not in it)'
);

-- Permanently failed jobs (dead letter queue)
select lives_ok(
  $$SELECT job_name, payload, error, attempt, max_attempts, original_created_at, failed_at
FROM dbos.failed_jobs
ORDER BY failed_at DESC
LIMIT 20;$$,
  'the reference''s "permanently failed jobs" query runs'
);
select results_eq(
  $$SELECT job_name, payload, error, attempt, max_attempts, original_created_at, failed_at
FROM dbos.failed_jobs
ORDER BY failed_at DESC
LIMIT 20;$$,
  $$
    values
      ('send-welcome-email'::text, '{"email": "a@example.com"}'::jsonb, 'smtp down'::text, 1, 1,
        now() - interval '1 day', now() - interval '10 minutes'),
      ('generate-invoice', '{"orderId": "1"}', 'pdf failed', 1, 1,
        now() - interval '1 day', now() - interval '20 minutes')
  $$,
  '"permanently failed jobs" lists the dead letters, most recent first, with every column'
);
select lives_ok(
  $$SELECT job_name, payload, error, failed_at
FROM dbos.failed_jobs
ORDER BY failed_at DESC
LIMIT 20;$$,
  'the reference''s "dead-lettered jobs, newest first" query runs'
);
select results_eq(
  $$SELECT job_name, payload, error, failed_at
FROM dbos.failed_jobs
ORDER BY failed_at DESC
LIMIT 20;$$,
  $$
    select job_name, payload, error, failed_at
    from dbos.list_dead_letter_jobs(20)
  $$,
  '"dead-lettered jobs, newest first" agrees with list_dead_letter_jobs'
);

-- Slow jobs (running for more than 5 minutes)
select lives_ok(
  $$SELECT job_name, payload, attempt, scheduled_for, now() - scheduled_for AS running_for
FROM dbos.job_queue
WHERE status = 'running'
AND scheduled_for < now() - interval '5 minutes';$$,
  'the reference''s "slow jobs" query runs'
);
select results_eq(
  $$SELECT job_name, payload, attempt, scheduled_for, now() - scheduled_for AS running_for
FROM dbos.job_queue
WHERE status = 'running'
AND scheduled_for < now() - interval '5 minutes';$$,
  $$
    values ('import-csv'::text, '{"file": "big.csv"}'::jsonb, 1,
      now() - interval '6 minutes', interval '6 minutes')
  $$,
  '"slow jobs" shows the job running for 6 minutes and not the one running for 1 minute'
);
select is(
  (select scheduled_for from dbos.job_queue where id = :quick_job),
  now() - interval '1 minute',
  'scheduled_for of a running job is its claim time, so now() - scheduled_for is its running time'
);

-- Throughput: jobs completed in the last hour
select lives_ok(
  $$SELECT
date_trunc('minute', completed_at) AS minute,
count(*) AS jobs_completed
FROM dbos.job_queue
WHERE status = 'completed'
AND completed_at > now() - interval '1 hour'
GROUP BY 1
ORDER BY 1;$$,
  'the reference''s "throughput" query runs'
);
select results_eq(
  $$SELECT
date_trunc('minute', completed_at) AS minute,
count(*) AS jobs_completed
FROM dbos.job_queue
WHERE status = 'completed'
AND completed_at > now() - interval '1 hour'
GROUP BY 1
ORDER BY 1;$$,
  $$
    values
      (date_trunc('minute', now()) - interval '30 minutes', 1::bigint),
      (date_trunc('minute', now()) - interval '10 minutes', 2)
  $$,
  '"throughput" counts the jobs completed per minute in the last hour'
);
select is(
  (select count(*)::int from dbos.job_queue where status = 'cancelled' and completed_at is not null),
  1,
  'a cancelled job has completed_at but is not counted by "throughput" (status = completed)'
);

select * from finish();
rollback;
