"""What the harness needs to know about a queue system to run every workload on it."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Command:
    """A process to start: argv, extra environment, working directory."""

    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


class QueueSystem(abc.ABC):
    """A job queue under test, driven through its own client and worker.

    The harness owns the databases; a system says how to migrate one, how to
    start its enqueuer and worker processes (which speak the protocol in
    bench/python/peer_common.py), and which SQL prefills, resets and watches
    its tables.  Prefills call the system's own bulk SQL where it has one, so
    the rows are the rows its API would write.
    """

    key: str  # command-line name, e.g. "graphile-fast"
    label: str  # name in tables
    # Finished jobs are deleted rather than kept: the 1M-history workload then
    # has no history rows in the job table to run against, and says so.
    deletes_finished: bool = False
    # Enqueue workloads run once per client library, not once per worker config.
    runs_enqueue: bool = True

    @abc.abstractmethod
    def install(self) -> None:
        """Make the client and worker runnable (idempotent; called before round 1)."""

    @abc.abstractmethod
    def migrate_command(self, url: str) -> Command: ...

    @abc.abstractmethod
    def enqueue_command(
        self, url: str, mode: str, count: int, payload_bytes: int, interval_ms: float
    ) -> Command: ...

    @abc.abstractmethod
    def worker_command(self, url: str, concurrency: int, sleep_ms: float, out: Path) -> Command: ...

    @abc.abstractmethod
    def prefill_sql(self, count: int, payload_bytes: int) -> list[str]:
        """Statements that enqueue ``count`` pending no-op jobs in one go."""

    @abc.abstractmethod
    def reset_sql(self) -> list[str]:
        """Statements that empty the system's tables between workloads."""

    @property
    @abc.abstractmethod
    def tables(self) -> list[str]:
        """Tables to VACUUM ANALYZE after a prefill (autovacuum may be off)."""

    @abc.abstractmethod
    def first_unfinished_sql(self) -> str:
        """``select id ... where id >= %s and <not finished> order by id limit 1``.

        Polled every few milliseconds while a drain runs: it must stay an
        index range scan that starts at the cursor, whatever the table holds.
        """

    @abc.abstractmethod
    def count_unfinished_sql(self) -> str:
        """``select count(*) ... where id >= %s and <not finished>``."""

    @abc.abstractmethod
    def count_jobs_sql(self) -> str:
        """How many jobs were enqueued (finished or not) since the last reset."""

    @abc.abstractmethod
    def history_sql(self, count: int) -> list[str]:
        """Statements that add ``count`` finished jobs the way the system leaves them."""

    @abc.abstractmethod
    def max_id_sql(self) -> str:
        """The highest job id in use (the history baseline)."""

    @abc.abstractmethod
    def trim_history_sql(self) -> list[str]:
        """Statements (one ``%s`` baseline id each) that remove jobs above the baseline."""

    def history_note(self, count: int) -> str:
        return f"{count:,} finished jobs kept as the system keeps them"

    @abc.abstractmethod
    def version(self) -> str:
        """The installed version under test."""


def payload_sql(payload_bytes: int) -> str:
    """A SQL jsonb literal of the payload every client sends (see peer_common.payload)."""
    if payload_bytes <= 0:
        return "'{}'::jsonb"
    filler = "x" * max(0, payload_bytes - len('{"data": ""}'))
    return f"""'{{"data": "{filler}"}}'::jsonb"""
