-- Privileges: the functions are the API. They run with their owner's rights
-- (security definer, with a pinned search_path), so a role is granted the
-- functions it may call and no table at all; PUBLIC gets nothing.
--
--   dbos_enqueuer  enqueue, enqueue_many, get_job
--   dbos_worker    the enqueuer's, plus claim, complete, fail, snooze,
--                  heartbeat, progress, rescue, release, prune, schedules
--   dbos_admin     the worker's, plus cancel, retry, replay, limits,
--                  listing, unschedule, and read access to every table
--
-- Roles are cluster-wide: they are created when missing (NOLOGIN; grant them
-- to your login roles). A migrating user without CREATEROLE skips that, with
-- a notice, and the grants to the roles that do not exist.

revoke all on schema dbos from public;
revoke all on all tables in schema dbos from public;
revoke all on all sequences in schema dbos from public;
revoke all on all functions in schema dbos from public;
-- PUBLIC's right to execute new functions cannot be taken away per schema, so
-- every migration that creates a function revokes it by name (a pgTAP test
-- checks); PUBLIC has no usage on schema dbos in any case.

do $$
declare
  role_name text;
begin
  foreach role_name in array array['dbos_enqueuer', 'dbos_worker', 'dbos_admin'] loop
    if not exists (select from pg_catalog.pg_roles as r where r.rolname = role_name) then
      begin
        execute format('create role %I nologin', role_name);
      exception
        when insufficient_privilege then
          raise notice 'pgstack: cannot create role % (needs CREATEROLE): skipped', role_name;
        when duplicate_object or unique_violation then
          null;  -- created meanwhile by a migration of another database
      end;
    end if;
  end loop;

  if exists (select from pg_catalog.pg_roles as r where r.rolname = 'dbos_enqueuer') then
    grant usage on schema dbos to dbos_enqueuer;
    grant execute on function
    dbos.enqueue(text, jsonb, timestamptz, int, int, text, text, int),
    dbos.enqueue_many(
      text[], jsonb[], timestamptz[], int[], int[], text[], text[], int[]
    ),
    dbos.get_job(bigint),
    dbos.wake_workers(),
    dbos.retry_delay(int, int, int, double precision),
    dbos.cron_field(text, int, int, text, text[]),
    dbos.cron_next(text, timestamptz, text)
    to dbos_enqueuer;
  end if;

  if exists (select from pg_catalog.pg_roles as r where r.rolname = 'dbos_worker') then
    grant usage on schema dbos to dbos_worker;
    grant select on dbos.schema_migrations to dbos_worker;
    grant execute on function
    dbos.enqueue(text, jsonb, timestamptz, int, int, text, text, int),
    dbos.enqueue_many(
      text[], jsonb[], timestamptz[], int[], int[], text[], text[], int[]
    ),
    dbos.get_job(bigint),
    dbos.wake_workers(),
    dbos.retry_delay(int, int, int, double precision),
    dbos.cron_field(text, int, int, text, text[]),
    dbos.cron_next(text, timestamptz, text),
    dbos.claim_job(text, text[], int, int, text[]),
    dbos.seconds_until_next_job(text[], text[]),
    dbos.complete_jobs(bigint[], text, int[], jsonb[]),
    dbos.complete_job(bigint, text, int, jsonb),
    dbos.fail_jobs(
      bigint[], text[], int, text, int[], int, double precision, boolean
    ),
    dbos.fail_job(bigint, text, int, text, int, int, double precision, boolean),
    dbos.snooze_jobs(bigint[], double precision[], text, int[]),
    dbos.snooze_job(bigint, double precision, text, int),
    dbos.heartbeat(text, bigint[], int, int[]),
    dbos.report_progress(bigint, numeric, text, int, int),
    dbos.rescue_expired_jobs(int),
    dbos.release_jobs(text, bigint[], int[]),
    dbos.prune_jobs(interval, int),
    dbos.schedule(text, text, text, jsonb, text, text, int, int),
    dbos.enqueue_due_schedules()
    to dbos_worker;
  end if;

  if exists (select from pg_catalog.pg_roles as r where r.rolname = 'dbos_admin') then
    grant usage on schema dbos to dbos_admin;
    grant select on all tables in schema dbos to dbos_admin;
    grant execute on all functions in schema dbos to dbos_admin;
    revoke execute on function
    dbos.claim_batch(text, text[], text[], text[], int, int)
    from dbos_admin;
  end if;
end;
$$;
