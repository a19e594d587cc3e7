-- dbos.enqueue_many: many jobs in one statement, ids in input order, and
-- errors that name the bad job.

begin;
select plan(21);

-- The SQLSTATE and DETAIL of the error a statement raises (NULL if none).
create function pg_temp.error_of(statement text)
returns text
language plpgsql
as $$
declare
  state text;
  detail text;
begin
  execute statement;
  return null;
exception when others then
  get stacked diagnostics state = returned_sqlstate, detail = pg_exception_detail;
  return state || ' ' || coalesce(detail, '');
end;
$$;

-- Ids come back in the arrays' order, each row with its own element.
select array(
  select dbos.enqueue_many(
    array['many.c', 'many.a', 'many.b'],
    array['{"n": 1}', '{"n": 2}', '{"n": 3}']::jsonb[]
  )
) as ids \gset

select is(
  cardinality(:'ids'::bigint[]), 3, 'enqueue_many returns one id per job'
);
select results_eq(
  format(
    $$
      select j.job_name, j.payload, j.status, j.attempt, j.max_attempts, j.scheduled_for
      from unnest(%L::bigint[]) with ordinality as u (id, n)
      inner join dbos.job_queue as j on j.id = u.id
      order by u.n
    $$,
    :'ids'
  ),
  $$
    values
      ('many.c'::text, '{"n": 1}'::jsonb, 'pending'::text, 0, 3, now()),
      ('many.a', '{"n": 2}', 'pending', 0, 3, now()),
      ('many.b', '{"n": 3}', 'pending', 0, 3, now())
  $$,
  'enqueue_many returns the ids in input order, with the defaults now and 3'
);
select ok(
  (:'ids'::bigint[])[1] < (:'ids'::bigint[])[2]
  and (:'ids'::bigint[])[2] < (:'ids'::bigint[])[3],
  'enqueue_many inserts the rows in input order (increasing ids)'
);

-- Per-job scheduled_for and max_attempts; a NULL element is the default.
select array(
  select dbos.enqueue_many(
    array['many.opt', 'many.opt', 'many.opt'],
    array[null, '[]', '"x"']::jsonb[],
    array[now() + interval '1 hour', null, now() - interval '1 minute'],
    array[null, 7, 1]
  )
) as opt_ids \gset
select results_eq(
  format(
    $$
      select j.payload, j.scheduled_for, j.max_attempts
      from unnest(%L::bigint[]) with ordinality as u (id, n)
      inner join dbos.job_queue as j on j.id = u.id
      order by u.n
    $$,
    :'opt_ids'
  ),
  $$
    values
      ('null'::jsonb, now() + interval '1 hour', 3),
      ('[]', now(), 7),
      ('"x"', now() - interval '1 minute', 1)
  $$,
  'enqueue_many takes per-job scheduled_for and max_attempts, NULL elements default'
);

-- Empty arrays: nothing to do, no error.
select is_empty(
  $$ select dbos.enqueue_many('{}'::text[], '{}'::jsonb[]) $$,
  'enqueue_many of empty arrays returns no id'
);
select is_empty(
  $$ select dbos.enqueue_many('{}'::text[], '{}'::jsonb[], '{}'::timestamptz[], '{}'::int[]) $$,
  'enqueue_many of four empty arrays returns no id'
);

-- Arrays of different lengths.
select count(*) as jobs_before_errors from dbos.job_queue \gset

select throws_ok(
  $$ select dbos.enqueue_many(array['a', 'b'], array['{}']::jsonb[]) $$,
  '22023', null,
  'enqueue_many refuses payloads shorter than job_names with 22023'
);
select throws_ok(
  $$ select dbos.enqueue_many(array['a'], array['{}', '{}']::jsonb[]) $$,
  '22023', null,
  'enqueue_many refuses payloads longer than job_names with 22023'
);
select throws_ok(
  $$ select dbos.enqueue_many(array['a', 'b'], array['{}', '{}']::jsonb[], array[now()]) $$,
  '22023', null,
  'enqueue_many refuses a scheduled_for of another length with 22023'
);
select throws_ok(
  $$ select dbos.enqueue_many(array['a', 'b'], array['{}', '{}']::jsonb[], null, array[1, 2, 3]) $$,
  '22023', null,
  'enqueue_many refuses a max_attempts of another length with 22023'
);
select throws_like(
  $$ select dbos.enqueue_many(array['a', 'b'], array['{}']::jsonb[]) $$,
  '%job_names 2, payloads 1%',
  'the length error gives the lengths'
);
select throws_ok(
  $$ select dbos.enqueue_many(null, array['{}']::jsonb[]) $$,
  '22004', null,
  'enqueue_many refuses NULL job_names with 22004'
);
select throws_ok(
  $$ select dbos.enqueue_many(array['a'], null) $$,
  '22004', null,
  'enqueue_many refuses NULL payloads with 22004'
);

-- A bad element is named in the detail ("job 3 of 5").
select is(
  pg_temp.error_of($$
    select dbos.enqueue_many(
      array['many.bad', 'many.bad', null, 'many.bad', 'many.bad'],
      array['{}', '{}', '{}', '{}', '{}']::jsonb[]
    )
  $$),
  '22004 job 3 of 5',
  'enqueue_many names the job with a NULL job_name (22004, job 3 of 5)'
);
select is(
  pg_temp.error_of($$
    select dbos.enqueue_many(
      array['many.bad', 'many.bad', '', 'many.bad', 'many.bad'],
      array['{}', '{}', '{}', '{}', '{}']::jsonb[]
    )
  $$),
  '22023 job 3 of 5',
  'enqueue_many names the job with an empty job_name (22023, job 3 of 5)'
);
select is(
  pg_temp.error_of(format(
    $$
      select dbos.enqueue_many(
        array['many.bad', 'many.bad', %L, 'many.bad', 'many.bad'],
        array['{}', '{}', '{}', '{}', '{}']::jsonb[]
      )
    $$,
    repeat('n', 256)
  )),
  '22023 job 3 of 5',
  'enqueue_many names the job with a 256-character job_name (22023, job 3 of 5)'
);
select is(
  pg_temp.error_of($$
    select dbos.enqueue_many(
      array['many.bad', 'many.bad', 'many.bad', 'many.bad', 'many.bad'],
      array['{}', '{}', '{}', '{}', '{}']::jsonb[],
      null,
      array[3, 3, 0, 3, 3]
    )
  $$),
  '22023 job 3 of 5',
  'enqueue_many names the job with max_attempts 0 (22023, job 3 of 5)'
);
select is(
  pg_temp.error_of($$
    select dbos.enqueue_many(
      array['many.bad', 'many.bad', 'many.bad', 'many.bad', 'many.bad'],
      array['{}', '{}', '{}', '{}', '{}']::jsonb[],
      array[now(), now(), 'infinity', now(), now()]
    )
  $$),
  '22007 job 3 of 5',
  'enqueue_many names the job with scheduled_for infinity (22007, job 3 of 5)'
);
select is(
  pg_temp.error_of($$
    select dbos.enqueue_many(
      array['many.bad', '', null, 'many.bad', 'many.bad'],
      array['{}', '{}', '{}', '{}', '{}']::jsonb[]
    )
  $$),
  '22023 job 2 of 5',
  'enqueue_many reports the first bad job'
);
select is(
  (select count(*) from dbos.job_queue),
  :jobs_before_errors::bigint,
  'enqueue_many inserts nothing, not even the good jobs, when one job is bad'
);
select is_empty(
  $$ select from dbos.job_queue where job_name = 'many.bad' $$,
  'no job of a refused enqueue_many is in the queue'
);

select * from finish();
rollback;
