"""Counters of what a worker did, for its log summary and metrics."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WorkerStats:
    claimed: int = 0
    started: int = 0
    completed: int = 0
    retried: int = 0
    dead: int = 0
    cancelled: int = 0
    # Results the database refused because the lease had moved on.
    refused: int = 0
    released: int = 0
