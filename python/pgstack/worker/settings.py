"""The worker's settings, each with a documented default."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import timedelta


def default_worker_id() -> str:
    """``host:pid:random``: unique per process, readable in ``locked_by``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker runs. Times in seconds unless named otherwise."""

    # Jobs running at once (async tasks and threads together).
    concurrency: int = 10
    # Jobs claimed ahead of free capacity, held under leases and released on shutdown.
    # None: adaptive, as many as finish during two claim round trips (Worker._prefetch).
    prefetch: int | None = None
    # Serve only these queues (None: every queue).
    queues: tuple[str, ...] | None = None
    # How often the periodic jobs that are due are enqueued (by any one worker).
    schedule_interval: float = 1.0
    # Fallback poll when no NOTIFY arrives (scheduled and retried jobs, lost notifications).
    poll_interval: float = 5.0
    # How long a claim holds a job without a heartbeat.
    lease_seconds: int = 60
    # Base of the exponential backoff: retry_delay_ms * 2^(attempt - 1).
    retry_delay_ms: int = 1000
    # On SIGTERM / stop(): how long running jobs may take before they are released.
    shutdown_timeout: float = 30.0
    # Completed and cancelled jobs older than this are pruned; None keeps them.
    keep: timedelta | None = timedelta(hours=24)
    # Defaults derived from lease_seconds when None.
    heartbeat_interval: float | None = None
    rescue_interval: float | None = None
    prune_interval: float = 300.0
    # LISTEN for wake-ups; without it the worker only polls.
    listen: bool = True
    # Round trip on the listening connection, to notice a dead or half-open one.
    listener_check_interval: float = 10.0
    # Whether the worker's own commits (claims, completions, failures, heartbeats) wait
    # for the WAL flush. Off by default: a server crash can then undo the last fraction
    # of a second of them, which only makes those jobs run again (see links.link_kwargs).
    synchronous_commit: bool = False
    # Largest batch one claim asks for.
    max_claim_batch: int = 1000
    worker_id: str = field(default_factory=default_worker_id)

    def __post_init__(self) -> None:
        checks = {
            "concurrency": self.concurrency >= 1,
            "poll_interval": self.poll_interval > 0,
            "lease_seconds": self.lease_seconds >= 1,
            "retry_delay_ms": self.retry_delay_ms >= 0,
            "shutdown_timeout": self.shutdown_timeout >= 0,
            "prefetch": self.prefetch is None or self.prefetch >= 0,
            "max_claim_batch": self.max_claim_batch >= 1,
            "prune_interval": self.prune_interval > 0,
            "schedule_interval": self.schedule_interval > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name} is out of range: {getattr(self, name)!r}")

    @property
    def heartbeat_every(self) -> float:
        """Leases are extended four times per lease, so one lost heartbeat costs nothing."""
        return self.heartbeat_interval or self.lease_seconds / 4

    @property
    def rescue_every(self) -> float:
        """A dead worker's jobs come back within about 1.25 leases."""
        return self.rescue_interval or self.lease_seconds / 4
