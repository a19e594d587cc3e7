"""Every SQL statement pgstack sends, in one place: the whole client-database contract.

The queue's logic lives in the ``dbos`` functions; these statements only call them
(or read the catalog, for the migrator). Parameters are psycopg placeholders.
"""

from __future__ import annotations

from typing import Final

# -- migrations ----------------------------------------------------------------

# Held for the whole run, so two migrators never interleave.
LOCK_MIGRATIONS: Final = "select pg_advisory_lock(7370373916153839415)"
UNLOCK_MIGRATIONS: Final = "select pg_advisory_unlock(7370373916153839415)"

# The comment on schema dbos, which marks it as pgstack's; no row: no schema.
SCHEMA_COMMENT: Final = """
select obj_description(n.oid, 'pg_namespace')
from pg_catalog.pg_namespace as n
where n.nspname = 'dbos'
"""

APPLIED_MIGRATIONS: Final = """
select m.version, m.checksum
from dbos.schema_migrations as m
where to_regclass('dbos.schema_migrations') is not null
order by m.version
"""

RECORD_MIGRATION: Final = """
insert into dbos.schema_migrations (version, name, checksum) values (%s, %s, %s)
"""

# The same insert, for `pgstack migrate --print` (values are ours, not users').
RECORD_MIGRATION_LITERAL: Final = (
    "insert into dbos.schema_migrations (version, name, checksum)\n"
    "values ({version}, '{name}', '{checksum}');"
)

# -- enqueueing ----------------------------------------------------------------

# A relative delay is added to the database's clock, never the client's.
ENQUEUE: Final = """
select dbos.enqueue(
  %(job_name)s,
  %(payload)s::jsonb,
  coalesce(%(scheduled_for)s::timestamptz, now() + %(delay)s::interval, now()),
  %(max_attempts)s,
  %(priority)s,
  %(queue_name)s,
  %(dedup_key)s,
  %(timeout_seconds)s
)
"""

# Times and delays are parallel arrays (NULL when unused); a delay counts from now().
# The payloads travel as one JSON array (their texts joined), which the server splits:
# a jsonb[] parameter would have the client escape every element.
ENQUEUE_MANY: Final = """
select dbos.enqueue_many(
  %(job_names)s::text[],
  (
    select array_agg(p.payload order by p.n)
    from jsonb_array_elements(%(payloads)s::jsonb) with ordinality as p (payload, n)
  ),
  case
    when %(times)s::timestamptz[] is not null or %(delays)s::interval[] is not null then (
      select array_agg(coalesce(t.at, now() + t.delay) order by t.n)
      from unnest(%(times)s::timestamptz[], %(delays)s::interval[])
        with ordinality as t (at, delay, n)
    )
  end,
  %(max_attempts)s::int[],
  %(priorities)s::int[],
  %(queue_names)s::text[],
  %(dedup_keys)s::text[],
  %(timeout_seconds)s::int[]
)
"""

# -- reading -------------------------------------------------------------------

JOB_COLUMNS: Final = """
id, job_name, payload, status, attempt, max_attempts, error, scheduled_for,
created_at, started_at, completed_at, progress, progress_message, locked_by,
lease_expires_at, cancel_requested, priority, queue_name, dedup_key, timeout_seconds,
result
"""

GET_JOB: Final = f"select {JOB_COLUMNS} from dbos.get_job(%s)"

LIST_JOBS: Final = f"select {JOB_COLUMNS} from dbos.list_jobs(%s, %s)"

DEAD_LETTER_COLUMNS: Final = """
id, job_name, payload, error, attempt, max_attempts, original_created_at, failed_at,
priority, queue_name, dedup_key, timeout_seconds
"""

LIST_DEAD_LETTER_JOBS: Final = f"select {DEAD_LETTER_COLUMNS} from dbos.list_dead_letter_jobs(%s)"

QUEUE_STATS: Final = """
select s.job_name, s.status, s.jobs
from dbos.queue_stats as s
order by s.job_name, s.status
"""

# -- monitoring: `pgstack dbos status --watch`, the worker's metrics ----------------

# The watch counts jobs by name and status with DASHBOARD_COUNTS (below).

# The database's clock; jobs completed and dead-lettered in the last minute (through
# job_queue_finished_idx and failed_jobs_failed_at_idx); since when the longest-waiting
# due job waits (NULL: none due).
WATCH_TOTALS: Final = """
select
  now(),
  (
    select count(*) from dbos.job_queue as j
    where j.status = 'completed' and j.completed_at > now() - interval '1 minute'
  ),
  (
    select count(*) from dbos.failed_jobs as d
    where d.failed_at > now() - interval '1 minute'
  ),
  dbos.dashboard_oldest_due_at()
"""

# Per job name: pending jobs, running jobs, and how long (seconds) the longest-waiting
# due pending job has waited (NULL: none due). Reads only pending rows (through
# job_queue_claim_idx) and running ones (job_queue_lease_idx), never finished ones.
QUEUE_DEPTH: Final = """
select
  d.job_name,
  sum(d.pending)::bigint,
  sum(d.running)::bigint,
  max(extract(epoch from now() - d.oldest_due))::float8
from (
  select
    j.job_name,
    count(*) as pending,
    0 as running,
    min(j.scheduled_for) filter (where j.scheduled_for <= now()) as oldest_due
  from dbos.job_queue as j
  where j.status = 'pending'
  group by j.job_name
  union all
  select j.job_name, 0, count(*), null
  from dbos.job_queue as j
  where j.lease_expires_at is not null
  group by j.job_name
) as d
group by d.job_name
order by d.job_name
"""

# -- operators -----------------------------------------------------------------

RETRY_DEAD_LETTER_JOB: Final = "select dbos.retry_dead_letter_job(%s)"
RETRY_JOB: Final = "select dbos.retry_job(%s)"
CANCEL_JOB: Final = "select dbos.cancel_job(%s)"
PRUNE_JOBS: Final = "select dbos.prune_jobs(%s, %s)"
RETRY_DEAD_LETTER_JOBS: Final = "select r.id from dbos.retry_dead_letter_jobs(%s) as r (id)"
CANCEL_PENDING_JOBS: Final = "select dbos.cancel_pending_jobs(%s)"
SET_QUEUE_LIMIT: Final = "select dbos.set_queue_limit(%s, %s)"

# -- periodic jobs ---------------------------------------------------------------

SCHEDULE: Final = "select dbos.schedule(%s, %s, %s, %s::jsonb, %s, %s, %s, %s)"
UNSCHEDULE: Final = "select dbos.unschedule(%s)"
LIST_SCHEDULES: Final = """
select s.schedule_name, s.cron, s.timezone, s.job_name, s.payload, s.queue_name, s.priority,
       s.max_attempts, s.next_run_at, s.last_run_at
from dbos.schedules as s
order by s.schedule_name
"""
ENQUEUE_DUE_SCHEDULES: Final = "select dbos.enqueue_due_schedules()"

# -- the worker ----------------------------------------------------------------

# Only the columns a handler needs travel back (HeldJob reads them in this order).
# The payload travels as text and is decoded when its job starts, so a payload that
# cannot be decoded (nested too deeply for Python) fails its own job, not the claim.
CLAIM_JOBS: Final = """
select
  c.id, c.job_name, c.payload::text, c.attempt, c.max_attempts, c.lease_token, c.timeout_seconds
from dbos.claim_job(%s, %s, %s, %s, %s) as c
"""

SECONDS_UNTIL_NEXT_JOB: Final = "select dbos.seconds_until_next_job(%s, %s)"

COMPLETE_JOBS: Final = """
select c.id from dbos.complete_jobs(%s::bigint[], %s, %s::int[], %s::jsonb[]) as c (id)
"""

# A transactional handler's completion, inside the handler's own transaction.
COMPLETE_JOB: Final = "select dbos.complete_job(%s, %s, %s, %s::jsonb)"

FAIL_JOBS: Final = """
select f.job_id, f.outcome from dbos.fail_jobs(%s, %s, %s, %s, %s, %s, %s, %s) as f
"""

SNOOZE_JOBS: Final = "select s.id from dbos.snooze_jobs(%s, %s, %s, %s) as s (id)"

RELEASE_JOBS: Final = "select dbos.release_jobs(%s, %s, %s)"

HEARTBEAT: Final = "select h.job_id, h.state from dbos.heartbeat(%s, %s, %s, %s) as h"

# Python floats arrive as double precision, which does not cast to numeric implicitly.
REPORT_PROGRESS: Final = (
    "select dbos.report_progress(%s::bigint, %s::numeric, %s::text, %s::int, %s::int)"
)

RESCUE_EXPIRED_JOBS: Final = "select dbos.rescue_expired_jobs(%s)"

# The channels of dbos.wake_workers() and dbos.cancel_job().
LISTEN: Final = "listen dbos_job_queue; listen dbos_job_cancel"
WAKE_CHANNEL: Final = "dbos_job_queue"
CANCEL_CHANNEL: Final = "dbos_job_cancel"

HEALTH_CHECK: Final = "select 1"

# -- the dashboard ---------------------------------------------------------------

# The database's clock, for "3 min ago" on every page.
DASHBOARD_NOW: Final = "select now()"

DASHBOARD_COUNTS: Final = """
select c.job_name, c.status, c.jobs, c.estimated
from dbos.dashboard_counts(%s) as c
order by c.job_name nulls last, c.status
"""

DASHBOARD_THROUGHPUT: Final = """
select t.minute, t.completed, t.failed from dbos.dashboard_throughput(%s) as t
"""

DASHBOARD_OLDEST_DUE_AT: Final = "select dbos.dashboard_oldest_due_at()"

DASHBOARD_WORKERS: Final = """
select w.worker_id, w.running, w.finished_recently, w.last_finished_at, w.lease_expires_at
from dbos.dashboard_workers(%s) as w
"""

# status, job_name, error_contains, before_id, after_id, max_rows
DASHBOARD_LIST_JOBS: Final = (
    f"select {JOB_COLUMNS} from dbos.dashboard_list_jobs(%s, %s, %s, %s, %s, %s)"
)

# job_name, before_failed_at, before_id, max_rows
DASHBOARD_LIST_DEAD_LETTER_JOBS: Final = (
    f"select {DEAD_LETTER_COLUMNS} from dbos.dashboard_list_dead_letter_jobs(%s, %s, %s, %s)"
)

GET_DEAD_LETTER_JOB: Final = f"select {DEAD_LETTER_COLUMNS} from dbos.get_dead_letter_job(%s)"
