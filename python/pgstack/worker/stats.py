"""Counters of what a worker did, for its log summary and metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class JobMetrics(Protocol):
    """Per-job events, for `pgstack.worker.metrics.WorkerMetrics` (--metrics-port)."""

    def started(self, job_name: str) -> None: ...
    def ran(self, job_name: str, seconds: float) -> None: ...
    def completed(self, job_name: str) -> None: ...
    def failed(self, job_name: str, dead: bool) -> None: ...


@dataclass
class WorkerStats:
    claimed: int = 0
    started: int = 0
    completed: int = 0
    retried: int = 0
    dead: int = 0
    cancelled: int = 0
    snoozed: int = 0
    # Results the database refused because the lease had moved on.
    refused: int = 0
    released: int = 0
    # None unless metrics are on: then the worker reports each job's events to it.
    metrics: JobMetrics | None = None
