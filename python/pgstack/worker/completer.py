"""Finished and failed jobs, written in batches: one statement for many jobs.

There is no fixed delay: while one write is in flight the next batch gathers, so under
load a batch holds everything that finished during a round trip, and when idle a job
is written at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pgstack import queries
from pgstack.worker.held import HeldJob
from pgstack.worker.links import AsyncLink, LinkGaveUp
from pgstack.worker.stats import WorkerStats

logger = logging.getLogger("pgstack.worker")


class Completer:
    def __init__(
        self,
        link: AsyncLink,
        worker_id: str,
        retry_delay_ms: int,
        stats: WorkerStats,
        on_written: Callable[[list[HeldJob]], None],
        on_retry_scheduled: Callable[[], None],
    ) -> None:
        self._link = link
        self._worker_id = worker_id
        self._retry_delay_ms = retry_delay_ms
        self._stats = stats
        self._on_written = on_written
        self._on_retry_scheduled = on_retry_scheduled
        self._completed: list[HeldJob] = []
        self._failed: list[tuple[HeldJob, str]] = []
        self._work = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.giving_up = False

    def complete(self, job: HeldJob) -> None:
        self._completed.append(job)
        self._idle.clear()
        self._work.set()

    def fail(self, job: HeldJob, error: str) -> None:
        self._failed.append((job, error))
        self._idle.clear()
        self._work.set()

    async def flush(self) -> None:
        """Return once everything handed over so far is written (or given up)."""
        await self._idle.wait()

    async def run(self) -> None:
        while True:
            await self._work.wait()
            self._work.clear()
            while self._completed or self._failed:
                completed, self._completed = self._completed, []
                failed, self._failed = self._failed, []
                try:
                    if completed:
                        await self._write_completed(completed)
                    if failed:
                        await self._write_failed(failed)
                except LinkGaveUp:
                    logger.warning(
                        "completer: database unreachable at shutdown; %d result(s) not written, "
                        "their jobs come back when their leases expire",
                        len(completed) + len(failed),
                    )
                finally:
                    self._on_written([*completed, *(job for job, _ in failed)])
            self._idle.set()

    def _give_up(self) -> bool:
        return self.giving_up

    async def _write_completed(self, jobs: list[HeldJob]) -> None:
        rows = await self._link.fetch(
            queries.COMPLETE_JOBS,
            ([j.id for j in jobs], self._worker_id, [j.lease_token for j in jobs]),
            give_up=self._give_up,
        )
        self._stats.completed += len(rows)
        if len(rows) != len(jobs):
            written = {row[0] for row in rows}
            for job in jobs:
                if job.id not in written:
                    self._stats.refused += 1
                    logger.warning(
                        "%s finished but its completion was refused: its lease was lost "
                        "(rescued, claimed again or cancelled meanwhile)",
                        job.describe(),
                    )

    async def _write_failed(self, failures: list[tuple[HeldJob, str]]) -> None:
        rows = await self._link.fetch(
            queries.FAIL_JOBS,
            (
                [j.id for j, _ in failures],
                [error for _, error in failures],
                self._retry_delay_ms,
                self._worker_id,
                [j.lease_token for j, _ in failures],
            ),
            give_up=self._give_up,
        )
        outcomes = dict(rows)
        if "pending" in outcomes.values():
            self._on_retry_scheduled()  # the claim loop re-reads when the next job is due
        for job, error in failures:
            outcome = outcomes.get(job.id)
            if outcome == "pending":
                self._stats.retried += 1
                logger.warning("%s failed, will retry: %s", job.describe(), error)
            elif outcome == "dead":
                self._stats.dead += 1
                logger.error(
                    "%s failed for the last time, dead-lettered: %s", job.describe(), error
                )
            elif outcome == "cancelled":
                self._stats.cancelled += 1
                logger.info("%s cancelled", job.describe())
            else:
                self._stats.refused += 1
                logger.warning(
                    "%s failed but the failure was refused: its lease was lost", job.describe()
                )
