"""The three measurements every workload is made of: enqueue, drain, latency.

Workers are started on an empty queue and warmed up: the harness feeds them
single jobs until every process has run one (each writes a marker file), so
interpreter and connection start-up never count and two processes start on
equal terms.  A drain then enqueues all its jobs in one transaction (the
system's own bulk SQL, plus an ANALYZE of its tables) and runs from the first
handler start after the commit to the moment the harness sees no unfinished
job left in the system's table.
Each worker records its handlers' start and end times and writes them out
when it stops.  Polling uses a cursor, the lowest id still unfinished, so each
poll is a short index range scan however many finished rows the table holds.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from db import execute, fetch_int
from procs import ProcessFailed, Worker, run_timed, stop_all
from systems.base import QueueSystem

POLL_S = 0.005
START_TIMEOUT_S = 60.0  # worker launch to its first handler run
STALL_TIMEOUT_S = 30.0  # no job finished for this long: the run failed

Figures = dict[str, Any]
Record = tuple[float, float, float | None]  # handler start, handler end, enqueued at


@dataclass
class Target:
    """One system's database as the harness sees it."""

    system: QueueSystem
    url: str
    conn: psycopg.Connection
    logs: Path
    # Jobs with ids up to the baseline are history rows (the 1M-row workload):
    # left alone by resets and never counted.
    baseline: int = 0
    history: bool = False
    notes: list[str] = field(default_factory=list)

    def reset(self) -> None:
        system = self.system
        if self.history:
            for statement in system.trim_history_sql():
                self.conn.execute(statement, (self.baseline,))
            execute(self.conn, [f"vacuum analyze {table}" for table in system.tables])
        else:
            execute(self.conn, system.reset_sql())

    def enqueue_all(self, count: int, payload_bytes: int = 0) -> None:
        execute(self.conn, self.system.prefill_sql(count, payload_bytes))

    def enqueue_all_analyzed(self, count: int, payload_bytes: int) -> None:
        """Enqueue in one transaction that also ANALYZEs the tables.

        The jobs and the statistics that describe them become visible together
        at commit, so no system starts a drain planning against an empty or
        never-analyzed table (autovacuum may be off on the server, and would
        not have run yet in any case), and the analyze costs no drain time.
        """
        with self.conn.transaction():
            execute(self.conn, self.system.prefill_sql(count, payload_bytes))
            execute(self.conn, [f"analyze {table}" for table in self.system.tables])

    def first_unfinished(self, cursor: int) -> int | None:
        row = self.conn.execute(
            self.system.first_unfinished_sql(),
            (cursor,),
        ).fetchone()
        return None if row is None else int(row[0])

    def unfinished(self) -> int:
        return fetch_int(self.conn, self.system.count_unfinished_sql(), self.baseline)

    def log(self, what: str) -> Path:
        return self.logs / f"{self.system.key}-{what}.log"


def enqueue(target: Target, mode: str, count: int) -> Figures:
    target.reset()
    command = target.system.enqueue_command(target.url, mode, count, 0, 0.0)
    seconds = run_timed(command, target.log("enqueue"), timeout=600)
    stored = fetch_int(target.conn, target.system.count_jobs_sql())
    if stored != count:
        raise RuntimeError(f"{target.system.key}: enqueued {count} but the table holds {stored}")
    return {"jobs_per_s": count / seconds, "seconds": seconds, "jobs": count}


@dataclass
class Pool:
    workers: list[Worker]
    outs: list[Path]
    # Every handler run of every process, read once the workers have stopped.
    collected: list[Record] = field(default_factory=list)
    missing: int = 0  # processes that wrote no records (killed, or crashed on the way out)

    def collect(self) -> None:
        for out in self.outs:
            try:
                rows = json.loads(out.read_text())["records"]
            except (OSError, ValueError):
                self.missing += 1
                continue
            self.collected.extend((r[0], r[1], r[2]) for r in rows)

    def exit_codes(self) -> list[int | None]:
        return [worker.process.returncode for worker in self.workers]

    def records(self, since: float) -> list[Record]:
        return [r for r in self.collected if r[0] >= since]

    def peak_rss_mb(self) -> float | None:
        return max(
            (r for r in (w.peak_rss_mb() for w in self.workers) if r is not None), default=None
        )


@contextmanager
def running_workers(
    target: Target, processes: int, concurrency: int, sleep_ms: float
) -> Iterator[Pool]:
    """Start ``processes`` workers and warm them up; stop them on exit."""
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        outs = [Path(scratch) / f"worker-{i}.json" for i in range(processes)]
        pool = Pool([], outs)
        try:
            for out in outs:
                command = target.system.worker_command(target.url, concurrency, sleep_ms, out)
                pool.workers.append(Worker(command, target.log("worker")))
            _warm_up(target, pool)
            yield pool
        finally:
            stop_all(pool.workers)
            pool.collect()


def _warm_up(target: Target, pool: Pool) -> None:
    """Feed single jobs until every process has run one, then wait for the queue to empty."""
    deadline = time.time() + START_TIMEOUT_S
    while not all(Path(f"{out}.ready").exists() for out in pool.outs):
        for worker in pool.workers:
            worker.check_alive()
        if time.time() > deadline:
            raise ProcessFailed(
                f"{target.system.key}: workers not running jobs after {START_TIMEOUT_S}s"
            )
        if target.first_unfinished(target.baseline) is None:
            target.enqueue_all(len(pool.workers))
        time.sleep(0.02)
    _wait_until_done(target, pool, START_TIMEOUT_S)


def drain(
    target: Target,
    count: int,
    *,
    processes: int,
    concurrency: int,
    sleep_ms: float = 0.0,
    payload_bytes: int = 0,
    cap_s: float,
) -> Figures:
    target.reset()
    with running_workers(target, processes, concurrency, sleep_ms) as pool:
        enqueued = time.time()
        target.enqueue_all_analyzed(count, payload_bytes)
        committed = time.time()
        end, finished = _watch_drain(target, pool, committed, count, cap_s)
        rss = pool.peak_rss_mb()
    records = pool.records(since=enqueued)
    started = min((r[0] for r in records), default=committed)
    seconds = end - started
    figures: Figures = {
        "jobs_per_s": finished / seconds,
        "seconds": seconds,
        "jobs": finished,
        "prefilled": count,
        "capped": finished < count,
        "start_from": "first handler start" if records else "enqueue commit (no handler records)",
        "peak_rss_mb": rss,
        "handler_runs": len(records),
        "exit_codes": pool.exit_codes(),
    }
    if pool.missing:
        figures["workers_without_records"] = pool.missing
    elif finished == count and len(records) != count:
        # Every job finished once in the table but the handlers ran another number
        # of times: a job ran twice (or a run went unrecorded).
        figures["handler_runs_off_by"] = len(records) - count
    if sleep_ms:
        figures["max_running"] = max_running(records)
    return figures


def _watch_drain(
    target: Target, pool: Pool, committed: float, count: int, cap_s: float
) -> tuple[float, int]:
    """Poll until every job is finished, or until ``cap_s`` after the jobs were enqueued."""
    cursor = target.baseline
    moved_at = committed
    while True:
        time.sleep(POLL_S)
        row = target.first_unfinished(cursor)
        now = time.time()
        if row is None:
            return now, count
        if row > cursor:
            cursor, moved_at = row, now
        if now - committed > cap_s:
            left = target.unfinished()
            return time.time(), count - left
        for worker in pool.workers:
            worker.check_alive()
        if now - moved_at > STALL_TIMEOUT_S:
            raise ProcessFailed(f"{target.system.key}: drain stalled at job {cursor}")


def latency(target: Target, count: int, interval_ms: float, concurrency: int) -> Figures:
    """Enqueue-to-handler-start times, ``count`` jobs paced ``interval_ms`` apart, idle worker."""
    target.reset()
    with running_workers(target, 1, concurrency, 0.0) as pool:
        time.sleep(0.5)  # idle, as a worker waiting for work is
        command = target.system.enqueue_command(target.url, "paced", count, 0, interval_ms)
        run_timed(command, target.log("enqueue"), timeout=120)
        _wait_until_done(target, pool, STALL_TIMEOUT_S)
        rss = pool.peak_rss_mb()
    millis = sorted(
        (start - sent) * 1000 for start, _end, sent in pool.records(0.0) if sent is not None
    )
    if len(millis) != count:
        raise RuntimeError(f"{target.system.key}: {len(millis)} of {count} latency probes ran")
    cuts = statistics.quantiles(millis, n=100, method="inclusive")
    return {
        "p50_ms": cuts[49],
        "p95_ms": cuts[94],
        "p99_ms": cuts[98],
        "max_ms": millis[-1],
        "jobs": count,
        "peak_rss_mb": rss,
    }


def _wait_until_done(target: Target, pool: Pool, timeout: float) -> None:
    deadline = time.time() + timeout
    cursor = target.baseline
    while True:
        row = target.first_unfinished(cursor)
        if row is None:
            return
        cursor = row
        for worker in pool.workers:
            worker.check_alive()
        if time.time() > deadline:
            raise ProcessFailed(f"{target.system.key}: jobs still unfinished after {timeout}s")
        time.sleep(POLL_S)


def max_running(records: list[Record]) -> int:
    """Most handlers running at one instant, across every worker process."""
    events = [(start, 1) for start, _end, _sent in records]
    events += [(end, -1) for _start, end, _sent in records]
    events.sort()  # at equal times an end (-1) sorts before a start (+1)
    running = peak = 0
    for _time, step in events:
        running += step
        peak = max(peak, running)
    return peak
