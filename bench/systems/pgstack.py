"""pgstack itself: the package from a source tree, installed editable into its own venv."""

from __future__ import annotations

import subprocess
from pathlib import Path

import peers

from systems.base import Command, QueueSystem, payload_sql

VENV = "venv-pgstack"
CLIENT = peers.BENCH / "python" / "pgstack_client.py"
HANDLERS = peers.BENCH / "python" / "pgstack_handlers.py"
JOBS = "dbos.job_queue"
UNFINISHED = "status in ('pending', 'running')"
HISTORY_STEP = "interval '3 ms'"  # a million jobs finished over the last 50 minutes


class PgStack(QueueSystem):
    key = "pgstack"
    label = "pgstack"

    def __init__(self, source: Path) -> None:
        self.source = source

    def available(self) -> bool:
        return (self.source / "pyproject.toml").is_file()

    def install(self) -> None:
        peers.install_editable(VENV, self.source)

    def version(self) -> str:
        head = subprocess.run(
            ["git", "-C", str(self.source), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        return f"pgstack {peers.venv_version(VENV, 'pgstack')} ({self.source} @ {head or '?'})"

    def _bin(self, name: str) -> str:
        return str(peers.venv_python(VENV).parent / name)

    def migrate_command(self, url: str) -> Command:
        return Command(argv=[self._bin("pgstack"), "migrate", "--database-url", url])

    def enqueue_command(
        self, url: str, mode: str, count: int, payload_bytes: int, interval_ms: float
    ) -> Command:
        return Command(
            argv=[
                str(peers.venv_python(VENV)), str(CLIENT), "enqueue",
                "--database-url", url,
                "--mode", mode,
                "--count", str(count),
                "--payload-bytes", str(payload_bytes),
                "--interval-ms", str(interval_ms),
            ]
        )  # fmt: skip

    def worker_command(self, url: str, concurrency: int, sleep_ms: float, out: Path) -> Command:
        # pgstack-run loads the handlers file itself; the file learns where to
        # write its records and how long to sleep from the environment.
        return Command(
            argv=[
                self._bin("pgstack-run"), str(HANDLERS),
                "--concurrency", str(concurrency),
                "--database-url", url,
                # One log line per job costs ~10 us at 20,000 jobs/s; the peers run
                # with their own defaults, graphile-fast with its fastest settings.
                "--log-level", "warning",
            ],
            env={
                "BENCH_OUT": str(out),
                "BENCH_SLEEP_MS": str(sleep_ms),
                "PYTHONPATH": str(HANDLERS.parent),
            },
        )  # fmt: skip

    def prefill_sql(self, count: int, payload_bytes: int) -> list[str]:
        return [
            f"""select count(*) from (select dbos.enqueue_many(
                  array_fill('noop'::text, array[{count}]),
                  array_fill({payload_sql(payload_bytes)}, array[{count}]))) ids"""
        ]

    def reset_sql(self) -> list[str]:
        return [f"truncate {JOBS}, dbos.failed_jobs"]

    @property
    def tables(self) -> list[str]:
        return [JOBS]

    def first_unfinished_sql(self) -> str:
        return f"select id from {JOBS} where id >= %s and {UNFINISHED} order by id limit 1"

    def count_unfinished_sql(self) -> str:
        return f"select count(*) from {JOBS} where id > %s and {UNFINISHED}"

    def count_jobs_sql(self) -> str:
        return f"select count(*) from {JOBS}"

    def history_sql(self, count: int) -> list[str]:
        # Finished jobs stay as 'completed' rows (completed_at set, no lease,
        # locked_by naming the worker that finished them), all from the last
        # hour: within the worker's default --keep 24h, so none is pruned.
        return [
            f"""insert into {JOBS} (job_name, payload, status, attempt, scheduled_for,
                                    created_at, started_at, completed_at, locked_by)
                select 'noop', '{{}}', 'completed', 1, t, t, t, t, 'bench-history'
                from (select now() - interval '1 hour' + g * {HISTORY_STEP} as t
                      from generate_series(1, {count}) g) s"""
        ]

    def history_note(self, count: int) -> str:
        return f"keeps {count:,} 'completed' jobs"

    def max_id_sql(self) -> str:
        return f"select coalesce(max(id), 0) from {JOBS}"

    def trim_history_sql(self) -> list[str]:
        return [f"delete from {JOBS} where id > %s"]
