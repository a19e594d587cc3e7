"""graphile-worker (Node), with its defaults and with its documented fastest settings."""

from __future__ import annotations

import json
from pathlib import Path

import peers

from systems.base import Command, QueueSystem, payload_sql

SCRIPT = peers.BENCH / "node" / "graphile_client.cjs"
JOBS = "graphile_worker._private_jobs"


class Graphile(QueueSystem):
    deletes_finished = True

    def __init__(self, fast: bool) -> None:
        self.fast = fast
        self.key = "graphile-fast" if fast else "graphile"
        self.label = "graphile-worker (localQueue 500)" if fast else "graphile-worker"
        # Enqueueing does not depend on worker settings: measured once, as "graphile".
        self.runs_enqueue = not fast

    def install(self) -> None:
        peers.install_node()

    def version(self) -> str:
        manifest = peers.NODE_MODULES / "graphile-worker" / "package.json"
        return f"graphile-worker {json.loads(manifest.read_text())['version']}"

    def _node(self, *args: str) -> Command:
        return Command(
            argv=["node", str(SCRIPT), *args],
            env={"NODE_PATH": str(peers.NODE_MODULES)},
        )

    def migrate_command(self, url: str) -> Command:
        return self._node("migrate", "--database-url", url)

    def enqueue_command(
        self, url: str, mode: str, count: int, payload_bytes: int, interval_ms: float
    ) -> Command:
        return self._node(
            "enqueue",
            "--database-url", url,
            "--mode", mode,
            "--count", str(count),
            "--payload-bytes", str(payload_bytes),
            "--interval-ms", str(interval_ms),
        )  # fmt: skip

    def worker_command(self, url: str, concurrency: int, sleep_ms: float, out: Path) -> Command:
        fast = ["--fast"] if self.fast else []
        return self._node(
            "worker",
            "--database-url", url,
            "--concurrency", str(concurrency),
            "--sleep-ms", str(sleep_ms),
            "--out", str(out),
            *fast,
        )  # fmt: skip

    def prefill_sql(self, count: int, payload_bytes: int) -> list[str]:
        # add_jobs is the function addJobs() calls: the same rows, one statement.
        return [
            f"""select count(*) from graphile_worker.add_jobs(array(
                  select row('noop', ({payload_sql(payload_bytes)})::json,
                             null, null, null, null, null, null)::graphile_worker.job_spec
                  from generate_series(1, {count})))"""
        ]

    def reset_sql(self) -> list[str]:
        return [f"truncate {JOBS}, graphile_worker._private_job_queues"]

    @property
    def tables(self) -> list[str]:
        return [JOBS]

    def first_unfinished_sql(self) -> str:
        return f"select id from {JOBS} where id >= %s order by id limit 1"

    def count_unfinished_sql(self) -> str:
        return f"select count(*) from {JOBS} where id > %s"

    def count_jobs_sql(self) -> str:
        return f"select count(*) from {JOBS}"

    def history_sql(self, count: int) -> list[str]:
        return []  # a completed job is deleted: after 1M jobs the table is as empty as before

    def history_note(self, count: int) -> str:
        return "deletes finished jobs: 0 history rows (what 1M finished jobs leave behind)"

    def max_id_sql(self) -> str:
        return f"select coalesce(max(id), 0) from {JOBS}"

    def trim_history_sql(self) -> list[str]:
        return [f"delete from {JOBS} where id > %s"]
