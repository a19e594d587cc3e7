"""Finished, failed and snoozed jobs, written in batches: one statement for many jobs.

There is no fixed delay: while one write is in flight the next batch gathers, so under
load a batch holds everything that finished during a round trip, and when idle a job
is written at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import NamedTuple, TypeVar

import psycopg

from pgstack import queries
from pgstack.registry import DEFAULT_RETRY, RetryPolicy
from pgstack.worker.held import HeldJob
from pgstack.worker.links import AsyncLink, LinkGaveUp, int_array
from pgstack.worker.stats import WorkerStats

logger = logging.getLogger("pgstack.worker")
T = TypeVar("T")
# How often the completer looks whether the heartbeater's progress write has landed.
PROGRESS_WAIT = 0.002


class Failure(NamedTuple):
    job: HeldJob
    error: str
    policy: RetryPolicy
    # Straight to the dead letter (PermanentError, or an exception of retry.no_retry).
    permanent: bool


class Completer:
    def __init__(
        self,
        link: AsyncLink,
        worker_id: str,
        retry_delay_ms: int,
        lease_seconds: int,
        stats: WorkerStats,
        on_written: Callable[[list[HeldJob]], None],
        on_retry_scheduled: Callable[[], None],
    ) -> None:
        self._link = link
        self._worker_id = worker_id
        self._retry_delay_ms = retry_delay_ms
        self._lease_seconds = lease_seconds
        self._stats = stats
        self._on_written = on_written
        self._on_retry_scheduled = on_retry_scheduled
        # (job, result as JSON text or None)
        self._completed: list[tuple[HeldJob, str | None]] = []
        self._failed: list[Failure] = []
        self._snoozed: list[tuple[HeldJob, float]] = []
        self._work = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.giving_up = False

    def complete(self, job: HeldJob, result: str | None = None) -> None:
        self._completed.append((job, result))
        self._idle.clear()
        self._work.set()

    def fail(
        self, job: HeldJob, error: str, policy: RetryPolicy, *, permanent: bool = False
    ) -> None:
        self._failed.append(Failure(job, error, policy, permanent))
        self._idle.clear()
        self._work.set()

    def snooze(self, job: HeldJob, seconds: float) -> None:
        self._snoozed.append((job, seconds))
        self._idle.clear()
        self._work.set()

    async def flush(self) -> None:
        """Return once everything handed over so far is written (or given up)."""
        await self._idle.wait()

    async def run(self) -> None:
        while True:
            await self._work.wait()
            self._work.clear()
            while self._completed or self._failed or self._snoozed:
                completed, self._completed = self._completed, []
                failed, self._failed = self._failed, []
                snoozed, self._snoozed = self._snoozed, []
                try:
                    if completed:
                        await self._write_or_split(
                            self._write_completed, completed, self._result_refused
                        )
                    if failed:
                        await self._write_or_split(self._write_failed, failed, self._write_refused)
                    if snoozed:
                        await self._write_or_split(
                            self._write_snoozed, snoozed, self._write_refused
                        )
                except LinkGaveUp:
                    logger.warning(
                        "completer: database unreachable at shutdown; %d result(s) not written, "
                        "their jobs come back when their leases expire",
                        len(completed) + len(failed) + len(snoozed),
                    )
                finally:
                    self._on_written(
                        [j for j, _ in completed]
                        + [f.job for f in failed]
                        + [j for j, _ in snoozed]
                    )
            self._idle.set()

    async def _write_or_split(
        self,
        write: Callable[[list[T]], Awaitable[None]],
        batch: list[T],
        refused: Callable[[T, str], None],
    ) -> None:
        """Write a batch; if the database refuses it (not a lost connection: something in
        it, say a result jsonb cannot hold), write its items one by one, so one bad item
        never holds up the others; ``refused`` decides what becomes of an item refused
        alone."""
        try:
            await write(batch)
            return
        except psycopg.Error as error:
            if len(batch) == 1:
                refused(batch[0], error.diag.message_primary or str(error))
                return
            logger.warning(
                "completer: a batch was refused (%s); writing its items one by one",
                type(error).__name__,
            )
        for item in batch:
            try:
                await write([item])
            except psycopg.Error as error:
                refused(item, error.diag.message_primary or str(error))

    def _result_refused(self, item: tuple[HeldJob, str | None], message: str) -> None:
        """A result the database cannot store fails the attempt, with the reason."""
        self.fail(item[0], f"ResultError: its result could not be stored: {message}", DEFAULT_RETRY)

    def _write_refused(self, item: object, message: str) -> None:
        """Left to its lease: the job comes back when the lease expires."""
        logger.error("completer: the database refused a write (%s)", message)

    def _give_up(self) -> bool:
        return self.giving_up

    async def _write_progress(self, jobs: list[HeldJob]) -> None:
        """A progress reported just before the end (say 100 %) is written first, so it is
        not lost with the job's last heartbeat. A write the heartbeater has on its way is
        waited for, so an older progress cannot land after this one."""
        for job in jobs:
            while job.progress_writing and not self._give_up():
                await asyncio.sleep(PROGRESS_WAIT)
            if job.progress_unwritten:
                version, params = job.progress_params(self._lease_seconds)
                rows = await self._link.fetch(
                    queries.REPORT_PROGRESS, params, give_up=self._give_up
                )
                if rows and rows[0][0] != "lost":
                    job.progress_stored(version)

    async def _write_completed(self, completed: list[tuple[HeldJob, str | None]]) -> None:
        jobs = [job for job, _ in completed]
        await self._write_progress(jobs)
        results = [result for _, result in completed]
        rows = await self._link.fetch(
            queries.COMPLETE_JOBS,
            (
                int_array([j.id for j in jobs]),
                self._worker_id,
                int_array([j.lease_token for j in jobs]),
                results if any(r is not None for r in results) else None,
            ),
            give_up=self._give_up,
        )
        self._stats.completed += len(rows)
        metrics = self._stats.metrics
        if metrics is not None:
            done = {row[0] for row in rows}
            for job in jobs:
                if job.id in done:
                    metrics.completed(job.job_name)
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

    async def _write_failed(self, failures: list[Failure]) -> None:
        await self._write_progress([f.job for f in failures])
        # One statement per retry policy (usually one for the whole batch).
        groups: dict[tuple[int, int, float, bool], list[Failure]] = defaultdict(list)
        for failure in failures:
            policy = failure.policy
            base = self._retry_delay_ms if policy.base_delay_ms is None else policy.base_delay_ms
            groups[(base, policy.max_delay_ms, policy.jitter, failure.permanent)].append(failure)
        outcomes: dict[int, str] = {}
        for (base, max_delay, jitter, permanent), group in groups.items():
            rows = await self._link.fetch(
                queries.FAIL_JOBS,
                (
                    [f.job.id for f in group],
                    [f.error for f in group],
                    base,
                    self._worker_id,
                    [f.job.lease_token for f in group],
                    max_delay,
                    jitter,
                    permanent,
                ),
                give_up=self._give_up,
            )
            outcomes.update(rows)
        if "pending" in outcomes.values():
            self._on_retry_scheduled()  # the claim loop re-reads when the next job is due
        metrics = self._stats.metrics
        for failure in failures:
            job, error = failure.job, failure.error
            outcome = outcomes.get(job.id)
            if metrics is not None and outcome in ("pending", "dead"):
                metrics.failed(job.job_name, dead=outcome == "dead")
            if outcome == "pending":
                self._stats.retried += 1
                logger.warning("%s failed, will retry: %s", job.describe(), error)
            elif outcome == "dead":
                self._stats.dead += 1
                logger.error(
                    "%s failed%s, dead-lettered: %s",
                    job.describe(),
                    " permanently" if failure.permanent else " for the last time",
                    error,
                )
            elif outcome == "cancelled":
                self._stats.cancelled += 1
                logger.info("%s cancelled", job.describe())
            else:
                self._stats.refused += 1
                logger.warning(
                    "%s failed but the failure was refused: its lease was lost", job.describe()
                )

    async def _write_snoozed(self, snoozed: list[tuple[HeldJob, float]]) -> None:
        rows = await self._link.fetch(
            queries.SNOOZE_JOBS,
            (
                [job.id for job, _ in snoozed],
                [seconds for _, seconds in snoozed],
                self._worker_id,
                [job.lease_token for job, _ in snoozed],
            ),
            give_up=self._give_up,
        )
        self._on_retry_scheduled()
        written = {row[0] for row in rows}
        for job, seconds in snoozed:
            if job.id in written:
                self._stats.snoozed += 1
                logger.info("%s snoozed for %.3g s", job.describe(), seconds)
            else:
                self._stats.refused += 1
                logger.warning("%s snoozed but its lease was lost", job.describe())
