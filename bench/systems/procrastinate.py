"""procrastinate (Python, psycopg 3)."""

from __future__ import annotations

from pathlib import Path

import peers

from systems.base import Command, QueueSystem, payload_sql

VENV = "venv-procrastinate"
SCRIPT = peers.BENCH / "python" / "procrastinate_client.py"
UNFINISHED = "status in ('todo', 'doing')"  # matches the partial index on (id, lock)


class Procrastinate(QueueSystem):
    key = "procrastinate"
    label = "procrastinate"

    def install(self) -> None:
        peers.install_venv(VENV, peers.BENCH / "requirements" / "procrastinate.txt")

    def version(self) -> str:
        return f"procrastinate {peers.venv_version(VENV, 'procrastinate')}"

    def _python(self, *args: str) -> Command:
        return Command(argv=[str(peers.venv_python(VENV)), str(SCRIPT), *args])

    def migrate_command(self, url: str) -> Command:
        return self._python("migrate", "--database-url", url)

    def enqueue_command(
        self, url: str, mode: str, count: int, payload_bytes: int, interval_ms: float
    ) -> Command:
        return self._python(
            "enqueue",
            "--database-url", url,
            "--mode", mode,
            "--count", str(count),
            "--payload-bytes", str(payload_bytes),
            "--interval-ms", str(interval_ms),
        )  # fmt: skip

    def worker_command(self, url: str, concurrency: int, sleep_ms: float, out: Path) -> Command:
        return self._python(
            "worker",
            "--database-url", url,
            "--concurrency", str(concurrency),
            "--sleep-ms", str(sleep_ms),
            "--out", str(out),
        )  # fmt: skip

    def prefill_sql(self, count: int, payload_bytes: int) -> list[str]:
        # procrastinate_defer_jobs_v1 is what defer / batch_defer call, with
        # the defaults of a plain defer (queue 'default', priority 0, no locks).
        return [
            f"""select cardinality(procrastinate_defer_jobs_v1(array(
                  select row('default', 'noop', 0, null, null, {payload_sql(payload_bytes)}, null)
                         ::procrastinate_job_to_defer_v1
                  from generate_series(1, {count}))))"""
        ]

    def reset_sql(self) -> list[str]:
        return ["truncate procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs"]

    @property
    def tables(self) -> list[str]:
        return ["procrastinate_jobs", "procrastinate_events"]

    def first_unfinished_sql(self) -> str:
        return (
            f"select id from procrastinate_jobs where id >= %s and {UNFINISHED} order by id limit 1"
        )

    def count_unfinished_sql(self) -> str:
        return f"select count(*) from procrastinate_jobs where id > %s and {UNFINISHED}"

    def count_jobs_sql(self) -> str:
        return "select count(*) from procrastinate_jobs"

    def history_sql(self, count: int) -> list[str]:
        # Finished jobs stay as 'succeeded' rows (attempts 1, worker gone) with
        # their three events.  The rows are consistent, so the bulk load skips
        # the per-row foreign-key triggers (session_replication_role).
        return [
            "set session_replication_role = replica",
            f"""insert into procrastinate_jobs
                  (id, queue_name, task_name, priority, args, status, attempts)
                select g, 'default', 'noop', 0, '{{}}', 'succeeded', 1
                from generate_series(1, {count}) g""",
            f"""insert into procrastinate_events (job_id, type, at)
                select g, e::procrastinate_job_event_type,
                       now() - interval '1 hour' + g * interval '3 ms'
                from generate_series(1, {count}) g,
                     unnest(array['deferred', 'started', 'succeeded']) e""",
            "reset session_replication_role",
            f"select setval('procrastinate_jobs_id_seq', {count})",
        ]

    def history_note(self, count: int) -> str:
        return f"keeps {count:,} 'succeeded' jobs and {3 * count:,} events"

    def max_id_sql(self) -> str:
        return "select coalesce(max(id), 0) from procrastinate_jobs"

    def trim_history_sql(self) -> list[str]:
        return ["delete from procrastinate_jobs where id > %s"]
