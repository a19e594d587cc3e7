-- Results: complete_job(..., result) and complete_jobs(..., results) store
-- the handler's return value in job_queue.result.

begin;
select plan(14);

prepare result_of(bigint) as
select result from dbos.job_queue where id = $1;

-- complete_job with a result.
select dbos.enqueue('results.one') as one_job \gset
select lease_token as one_token from dbos.claim_job('w1', array['results.one']) \gset
select is(
  dbos.complete_job(:one_job, 'w1', :one_token, '{"sent": 3, "ok": true}'),
  true,
  'complete_job with a result completes the job'
);
select results_eq(
  $$ select status, result from dbos.job_queue where id = $$ || :one_job,
  $$ values ('completed'::text, '{"sent": 3, "ok": true}'::jsonb) $$,
  'complete_job stores the result'
);
select is(
  (select result from dbos.get_job(:one_job)),
  '{"sent": 3, "ok": true}'::jsonb,
  'get_job returns the result'
);
select is(
  dbos.complete_job(:one_job, result => '"overwritten"'),
  false,
  'complete_job of a completed job returns false'
);
select results_eq(
  'execute result_of(' || :one_job || ')',
  $$ values ('{"sent": 3, "ok": true}'::jsonb) $$,
  'completing a completed job again never overwrites its result'
);

-- No result, and the JSON null, are different.
select dbos.enqueue('results.none') as none_job \gset
select dbos.enqueue('results.json-null') as json_null_job \gset
select count(*) as claimed from dbos.claim_job('w1', array['results.none', 'results.json-null'], 2) \gset
select dbos.complete_job(:none_job) as completed \gset
select dbos.complete_job(:json_null_job, result => 'null') as completed \gset
select ok(
  (select result is null from dbos.job_queue where id = :none_job),
  'complete_job without a result stores SQL NULL'
);
select is(
  (select jsonb_typeof(result) from dbos.job_queue where id = :json_null_job),
  'null',
  'complete_job with the JSON null stores the JSON null, not SQL NULL'
);

-- complete_jobs: results[i] is the result of job_ids[i].
select dbos.enqueue('results.many') as many_1 \gset
select dbos.enqueue('results.many') as many_2 \gset
select dbos.enqueue('results.many') as many_3 \gset
select array(
  select lease_token from dbos.claim_job('w1', array['results.many'], 3) order by id
) as many_tokens \gset
select results_eq(
  format(
    $$
      select * from dbos.complete_jobs(
        array[%s, %s, %s]::bigint[], 'w1', %L::int[],
        array['[1, 2]', null, '42']::jsonb[]
      ) order by 1
    $$,
    :many_1, :many_2, :many_3, :'many_tokens'
  ),
  format($$ values (%s::bigint), (%s), (%s) $$, :many_1, :many_2, :many_3),
  'complete_jobs with results completes every job'
);
select results_eq(
  format($$ select result from dbos.job_queue where id in (%s, %s, %s) order by id $$, :many_1, :many_2, :many_3),
  $$ values ('[1, 2]'::jsonb), (null), ('42') $$,
  'complete_jobs stores results[i] for job_ids[i], a NULL element meaning no result'
);

-- Refused completions write no result.
select dbos.enqueue('results.stale') as stale_job \gset
select lease_token as stale_token from dbos.claim_job('w1', array['results.stale']) \gset
select is(
  dbos.complete_job(:stale_job, 'w1', :stale_token + 1, '"stale"'),
  false,
  'complete_job under a stale lease_token returns false'
);
select is(
  dbos.complete_job(:stale_job, 'w2', :stale_token, '"other worker"'),
  false,
  'complete_job by another worker returns false'
);
select results_eq(
  $$ select status, result from dbos.job_queue where id = $$ || :stale_job,
  $$ values ('running'::text, null::jsonb) $$,
  'a refused completion stores no result'
);

-- Failures write no result; a later success does, and keeps the error.
select dbos.fail_job(:stale_job, 'first try failed', 0) as outcome \gset
select results_eq(
  'execute result_of(' || :stale_job || ')',
  $$ values (null::jsonb) $$,
  'a failed attempt stores no result'
);
select lease_token as stale_token from dbos.claim_job('w1', array['results.stale']) \gset
select dbos.complete_job(:stale_job, 'w1', :stale_token, '{"second": true}') as completed \gset
select results_eq(
  $$ select status, result, error from dbos.job_queue where id = $$ || :stale_job,
  $$ values ('completed'::text, '{"second": true}'::jsonb, 'first try failed'::text) $$,
  'a retry that succeeds stores its result and keeps the last error'
);

select * from finish();
rollback;
