"""The seven workloads, their sizes, and how each one is measured on a system."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import measure
from measure import Figures, Target


@dataclass(frozen=True)
class Sizes:
    enqueue_single: int = 5_000
    enqueue_bulk: int = 50_000
    drain: int = 20_000
    latency: int = 200
    latency_interval_ms: float = 20.0
    history: int = 1_000_000
    sleepers: int = 5_000
    sleep_ms: float = 10.0
    concurrency: int = 10
    sleep_concurrency: int = 50
    payload_bytes: int = 1024
    # A drain still running this long after its first job finished is cut
    # there and its rate taken from the jobs finished so far (marked "capped").
    cap_s: float = 6.0
    # Pending jobs each pgbench claim+complete run drains, per batch size
    # (1, 10, 100, 500 jobs per statement): a few seconds each.
    pgbench_jobs: tuple[int, ...] = (10_000, 20_000, 100_000, 100_000)


FULL = Sizes()
QUICK = Sizes(
    enqueue_single=500,
    enqueue_bulk=5_000,
    drain=2_000,
    latency=30,
    history=50_000,
    sleepers=1_000,
    cap_s=3.0,
    pgbench_jobs=(2_000, 2_000, 10_000, 10_000),
)

Run = Callable[[Target, Sizes], Figures]


@dataclass(frozen=True)
class Workload:
    key: str
    metric: str  # what tables rank by: "jobs_per_s" (higher wins) or "p50_ms" (lower wins)
    run: Run
    on_history: bool = False  # runs on the database holding the finished-jobs history
    enqueue: bool = False  # measures the client library, not the worker

    def title(self, s: Sizes) -> str:
        return {
            "enqueue_single": f"1. enqueue {s.enqueue_single:,} jobs one call at a time",
            "enqueue_bulk": f"2. bulk enqueue {s.enqueue_bulk:,} jobs in one call",
            "drain_1p": f"3a. drain {s.drain:,} no-op jobs: 1 process x {s.concurrency}",
            "drain_2p": f"3b. drain {s.drain:,} no-op jobs: 2 processes x {s.concurrency}",
            "latency": (
                f"4. latency enqueue -> handler start: idle worker, {s.latency} jobs "
                f"{s.latency_interval_ms:g} ms apart"
            ),
            "drain_history": f"5. drain as 3a with {s.history:,} finished jobs already stored",
            "drain_1kb": f"6. drain as 3a with {s.payload_bytes} B payloads",
            "sleep_1p": (
                f"7a. {s.sleepers:,} jobs sleeping {s.sleep_ms:g} ms: "
                f"1 process x {s.sleep_concurrency}"
            ),
            "sleep_2p": (
                f"7b. {s.sleepers:,} jobs sleeping {s.sleep_ms:g} ms: "
                f"2 processes x {s.sleep_concurrency}"
            ),
        }[self.key]


def _enqueue_single(t: Target, s: Sizes) -> Figures:
    return measure.enqueue(t, "single", s.enqueue_single)


def _enqueue_bulk(t: Target, s: Sizes) -> Figures:
    return measure.enqueue(t, "bulk", s.enqueue_bulk)


def _noop_drain(processes: int, payload_bytes: Callable[[Sizes], int] = lambda s: 0) -> Run:
    def run(t: Target, s: Sizes) -> Figures:
        return measure.drain(
            t,
            s.drain,
            processes=processes,
            concurrency=s.concurrency,
            payload_bytes=payload_bytes(s),
            cap_s=s.cap_s,
        )

    return run


def _sleep_drain(processes: int) -> Run:
    def run(t: Target, s: Sizes) -> Figures:
        return measure.drain(
            t,
            s.sleepers,
            processes=processes,
            concurrency=s.sleep_concurrency,
            sleep_ms=s.sleep_ms,
            cap_s=s.cap_s,
        )

    return run


def _latency(t: Target, s: Sizes) -> Figures:
    return measure.latency(t, s.latency, s.latency_interval_ms, s.concurrency)


WORKLOADS = [
    Workload("enqueue_single", "jobs_per_s", _enqueue_single, enqueue=True),
    Workload("enqueue_bulk", "jobs_per_s", _enqueue_bulk, enqueue=True),
    Workload("drain_1p", "jobs_per_s", _noop_drain(1)),
    Workload("drain_2p", "jobs_per_s", _noop_drain(2)),
    Workload("latency", "p50_ms", _latency),
    Workload("drain_history", "jobs_per_s", _noop_drain(1), on_history=True),
    Workload("drain_1kb", "jobs_per_s", _noop_drain(1, lambda s: s.payload_bytes)),
    Workload("sleep_1p", "jobs_per_s", _sleep_drain(1)),
    Workload("sleep_2p", "jobs_per_s", _sleep_drain(2)),
]
