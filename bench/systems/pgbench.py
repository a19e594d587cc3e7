"""The physical limit: the minimal SQL of a job's life on a bare table, driven by pgbench."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from db import Server, execute

SCRIPTS = Path(__file__).resolve().parent.parent / "pgbench"
DEFAULT_BINARY = "/usr/lib/postgresql/15/bin/pgbench"
CLIENTS = 10  # as many claims in flight as a worker at concurrency 10 has
BATCHES = (1, 10, 100, 500)

Figures = dict[str, object]


@dataclass(frozen=True)
class LimitRun:
    """One pgbench figure that goes into a workload's table as a "limit" row."""

    key: str
    label: str
    notes: list[str]
    run: Callable[[], Figures]


def binary() -> str:
    found = shutil.which("pgbench") or DEFAULT_BINARY
    if not Path(found).exists():
        raise FileNotFoundError("pgbench not found (postgresql-client)")
    return found


class PgBench:
    key = "pgbench"
    label = "pgbench limit"

    def __init__(self, server: Server, database: str, conn: psycopg.Connection) -> None:
        self.server = server
        self.database = database
        self.conn = conn
        self.binary = binary()

    def migrate(self) -> None:
        execute(self.conn, [(SCRIPTS / "schema.sql").read_text()])

    def _run(self, script: str, clients: int, transactions: int, *extra: str) -> float:
        argv = [
            self.binary, "-n", "-M", "prepared",
            "-h", self.server.host, "-p", str(self.server.port), "-U", self.server.user,
            "-c", str(clients), "-j", str(min(clients, 2)), "-t", str(transactions),
            "-f", str(SCRIPTS / script), *extra, self.database,
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        match = re.search(r"^tps = ([0-9.]+)", done.stdout, re.MULTILINE)
        failed = re.search(r"number of failed transactions: ([1-9]\d*)", done.stdout)
        if done.returncode != 0 or match is None or failed:
            raise RuntimeError(
                f"pgbench {script} failed: {done.stdout[-400:]} {done.stderr[-400:]}"
            )
        return float(match.group(1))

    def insert(self, count: int) -> Figures:
        """Single-row inserts from one client: the floor of a one-at-a-time enqueue."""
        self.conn.execute("truncate bench_jobs")
        tps = self._run("insert.sql", 1, count)
        return {"jobs_per_s": tps, "jobs": count, "clients": 1}

    def claim_complete(self, batch: int, count: int) -> Figures:
        """``count`` pending jobs drained by claim + complete statements of ``batch`` jobs."""
        self.conn.execute("truncate bench_jobs")
        self.conn.execute(
            "insert into bench_jobs (job_name) select 'noop' from generate_series(1, %s)",
            (count,),
        )
        self.conn.execute("vacuum analyze bench_jobs")
        transactions = max(1, count // (batch * CLIENTS))
        tps = self._run("claim_complete.sql", CLIENTS, transactions, "-D", f"batch={batch}")
        row = self.conn.execute(
            "select count(*) filter (where status = 'completed'), count(*) from bench_jobs"
        ).fetchone()
        assert row is not None
        if row[0] != transactions * CLIENTS * batch:
            raise RuntimeError(f"pgbench claim {batch}: {row[0]} of {row[1]} jobs completed")
        return {"jobs_per_s": tps * batch, "jobs": row[0], "batch": batch, "clients": CLIENTS}

    def runs_for(
        self, workload: str, insert_count: int, claim_counts: tuple[int, ...]
    ) -> list[LimitRun]:
        """The limit rows of a workload: the insert for 1, the claim batches for 3a."""
        if workload == "enqueue_single":
            return [
                LimitRun(
                    "pgbench-insert",
                    "pgbench insert, 1 client",
                    [],
                    lambda: self.insert(insert_count),
                )
            ]
        if workload != "drain_1p":
            return []
        return [
            LimitRun(
                f"pgbench-{batch}",
                f"pgbench claim+complete {batch}/stmt",
                [f"{CLIENTS} clients"],
                lambda b=batch, c=count: self.claim_complete(b, c),  # type: ignore[misc]
            )
            for batch, count in zip(BATCHES, claim_counts, strict=True)
        ]
