"""PgQueuer (Python, asyncpg)."""

from __future__ import annotations

from pathlib import Path

import peers

from systems.base import Command, QueueSystem, payload_sql

VENV = "venv-pgqueuer"
SCRIPT = peers.BENCH / "python" / "pgqueuer_client.py"


class PgQueuer(QueueSystem):
    key = "pgqueuer"
    label = "PgQueuer"
    deletes_finished = True

    def install(self) -> None:
        peers.install_venv(VENV, peers.BENCH / "requirements" / "pgqueuer.txt")

    def version(self) -> str:
        return f"pgqueuer {peers.venv_version(VENV, 'pgqueuer')}"

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
        # PgQueuer has no SQL enqueue function; this is the shape of its
        # Queries.enqueue statement: the job row plus a 'queued' log row.
        # The payload is the client's JSON text as bytes (jsonb::text spaces it
        # exactly like json.dumps).
        return [
            f"""with inserted as (
                  insert into pgqueuer (priority, entrypoint, payload, execute_after, status)
                  select 0, 'noop', convert_to(({payload_sql(payload_bytes)})::text, 'UTF8'),
                         now(), 'queued'
                  from generate_series(1, {count})
                  returning id, entrypoint, priority)
                insert into pgqueuer_log (job_id, status, entrypoint, priority)
                select id, 'queued', entrypoint, priority from inserted"""
        ]

    def reset_sql(self) -> list[str]:
        return ["truncate pgqueuer, pgqueuer_log, pgqueuer_statistics"]

    @property
    def tables(self) -> list[str]:
        return ["pgqueuer", "pgqueuer_log"]

    def first_unfinished_sql(self) -> str:
        return "select id from pgqueuer where id >= %s order by id limit 1"

    def count_unfinished_sql(self) -> str:
        return "select count(*) from pgqueuer where id > %s"

    def count_jobs_sql(self) -> str:
        return "select count(*) from pgqueuer"

    def history_sql(self, count: int) -> list[str]:
        # A finished job is deleted from pgqueuer; what stays is its log: one
        # row each for queued, picked and successful (aggregated into
        # pgqueuer_statistics by the worker's periodic task).
        return [
            f"""insert into pgqueuer_log (created, job_id, status, priority, entrypoint, aggregated)
                select now() - interval '1 hour' + g * interval '3 ms', g, s::pgqueuer_status,
                       0, 'noop', true
                from generate_series(1, {count}) g,
                     unnest(array['queued', 'picked', 'successful']) s""",
            """insert into pgqueuer_statistics (created, count, priority, status, entrypoint)
               select date_trunc('sec', created), count(*), 0, status, 'noop'
               from pgqueuer_log group by 1, status""",
            f"select setval(pg_get_serial_sequence('pgqueuer', 'id'), {count})",
        ]

    def history_note(self, count: int) -> str:
        return f"deletes finished jobs; keeps {3 * count:,} log rows (queued/picked/successful)"

    def max_id_sql(self) -> str:
        return "select coalesce(max(job_id), 0) from pgqueuer_log"

    def trim_history_sql(self) -> list[str]:
        return ["delete from pgqueuer where id > %s", "delete from pgqueuer_log where job_id > %s"]
