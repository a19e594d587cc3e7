-- Table invariants: the CHECK constraints of dbos.job_queue refuse rows no
-- function should ever write (SQLSTATE 23514 check_violation).

begin;
select plan(13);

select lives_ok(
  $$ insert into dbos.job_queue (job_name) values ('invariants.ok') $$,
  'a plain pending row is accepted'
);

select lives_ok(
  $$
    insert into dbos.job_queue (job_name, status, attempt, locked_by, lease_expires_at, completed_at)
    values
      ('invariants.ok', 'running', 1, 'w1', now() + interval '1 minute', null),
      ('invariants.ok', 'completed', 1, 'w1', null, now()),
      ('invariants.ok', 'cancelled', 0, null, null, now())
  $$,
  'the statuses running, completed and cancelled are accepted in their valid shapes'
);

select throws_ok(
  $$ insert into dbos.job_queue (job_name, status) values ('invariants', 'failed') $$,
  '23514', null,
  'an unknown status is refused'
);

select throws_ok(
  $$ insert into dbos.job_queue (job_name, status) values ('invariants', 'dead') $$,
  '23514', null,
  'status dead is refused: dead jobs live in dbos.failed_jobs'
);

select throws_ok(
  $$
    insert into dbos.job_queue (job_name, status, attempt, locked_by)
    values ('invariants', 'running', 1, 'w1')
  $$,
  '23514', null,
  'a running row without a lease is refused'
);

select throws_ok(
  $$
    insert into dbos.job_queue (job_name, status, attempt, lease_expires_at)
    values ('invariants', 'running', 1, now() + interval '1 minute')
  $$,
  '23514', null,
  'a running row without a holder (locked_by) is refused'
);

select throws_ok(
  $$
    insert into dbos.job_queue (job_name, lease_expires_at)
    values ('invariants', now() + interval '1 minute')
  $$,
  '23514', null,
  'a pending row with a lease is refused'
);

select throws_ok(
  $$
    insert into dbos.job_queue (job_name, attempt, max_attempts)
    values ('invariants', 4, 3)
  $$,
  '23514', null,
  'attempt > max_attempts is refused'
);

select throws_ok(
  $$ insert into dbos.job_queue (job_name, max_attempts) values ('invariants', 0) $$,
  '23514', null,
  'max_attempts 0 is refused'
);

select throws_ok(
  $$ insert into dbos.job_queue (job_name) values ('') $$,
  '23514', null,
  'an empty job_name is refused'
);

select throws_ok(
  $$ insert into dbos.job_queue (job_name, progress) values ('invariants', 101) $$,
  '23514', null,
  'progress above 100 is refused'
);

select throws_ok(
  $$ insert into dbos.job_queue (job_name, status) values ('invariants', 'completed') $$,
  '23514', null,
  'a completed row without completed_at is refused'
);

select throws_ok(
  $$ insert into dbos.job_queue (job_name, completed_at) values ('invariants', now()) $$,
  '23514', null,
  'a pending row with completed_at is refused'
);

select * from finish();
rollback;
