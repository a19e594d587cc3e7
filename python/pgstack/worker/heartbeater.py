"""The heartbeater: a thread of its own, so handlers that block the event loop or keep
the CPU busy cannot starve it. It extends the leases of every job in hand (prefetched
ones too), writes reported progress, learns of cancels and lost leases, rescues the
jobs of dead workers, enqueues the periodic jobs that are due and prunes old finished
jobs, each on its own interval."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from pgstack import queries
from pgstack.worker.held import HeldJob
from pgstack.worker.links import SyncLink
from pgstack.worker.settings import WorkerSettings

logger = logging.getLogger("pgstack.worker")

PRUNE_BATCH = 10_000


class Heartbeater(threading.Thread):
    def __init__(
        self,
        conninfo: str,
        settings: WorkerSettings,
        jobs_in_hand: Callable[[], list[HeldJob]],
        on_lease_news: Callable[[int, str], None],
        on_rescued: Callable[[], None],
    ) -> None:
        super().__init__(name="pgstack-heartbeater", daemon=True)
        self._settings = settings
        self._jobs_in_hand = jobs_in_hand
        self._on_lease_news = on_lease_news
        self._on_rescued = on_rescued
        self._stop_event = threading.Event()
        self._wake = threading.Event()
        self._link = SyncLink(
            conninfo,
            "heartbeater",
            settings.worker_id,
            self._stop_event,
            asynchronous_commit=not settings.synchronous_commit,
        )

    def poke(self) -> None:
        """Write reported progress soon (called from handlers, any thread)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop_event.set()
        self._wake.set()
        self.join(timeout=10)
        self._link.close()

    def run(self) -> None:
        settings = self._settings
        now = time.monotonic()
        next_heartbeat = now + settings.heartbeat_every
        next_rescue = now  # at start: bring back what a crashed predecessor left
        next_prune = now + min(5.0, settings.prune_interval)
        next_schedules = now
        while not self._stop_event.is_set():
            now = time.monotonic()
            if now >= next_heartbeat:
                if self._heartbeat():
                    next_heartbeat = now + settings.heartbeat_every
            else:
                self._write_progress()
            if now >= next_rescue and self._rescue():
                next_rescue = now + settings.rescue_every
            if settings.keep is not None and now >= next_prune and self._prune(settings.keep):
                next_prune = now + settings.prune_interval
            if now >= next_schedules and self._enqueue_due_schedules():
                next_schedules = now + settings.schedule_interval
            wait = min(next_heartbeat, next_rescue, next_prune, next_schedules) - time.monotonic()
            self._wake.wait(timeout=max(0.0, min(wait, 1.0)))
            self._wake.clear()

    def _write_progress(self) -> None:
        for job in self._jobs_in_hand():
            if not job.progress_unwritten:
                continue
            # Flagged before the values are read: the completer waits for a write on its
            # way, so an older progress never lands after the final one.
            job.progress_writing = True
            try:
                version, params = job.progress_params(self._settings.lease_seconds)
                rows = self._link.fetch(
                    queries.REPORT_PROGRESS, params, settled=job.progress_settled
                )
            finally:
                job.progress_writing = False
            if rows is None:
                return  # still unwritten: tried again on the next tick
            state = rows[0][0]
            if state != "lost":
                job.progress_stored(version)
            if state != "held":
                self._on_lease_news(job.id, state)

    def _heartbeat(self) -> bool:
        self._write_progress()
        jobs = self._jobs_in_hand()
        if not jobs:
            return True
        rows = self._link.fetch(
            queries.HEARTBEAT,
            (
                self._settings.worker_id,
                [j.id for j in jobs],
                self._settings.lease_seconds,
                [j.lease_token for j in jobs],
            ),
        )
        if rows is None:
            return False
        for job_id, state in rows:
            self._on_lease_news(job_id, state)
        return True

    def _rescue(self) -> bool:
        rows = self._link.fetch(queries.RESCUE_EXPIRED_JOBS, (self._settings.retry_delay_ms,))
        if rows is None:
            return False
        if rows[0][0]:
            logger.warning("rescued %d job(s) whose lease had expired", rows[0][0])
            # They are pending again (due after the backoff), and nothing notifies: the
            # claim loop must re-read when the next job is due, or it sleeps a poll
            # interval while they wait.
            self._on_rescued()
        return True

    def _enqueue_due_schedules(self) -> bool:
        """Periodic jobs whose tick has come (once per tick across all workers)."""
        rows = self._link.fetch(queries.ENQUEUE_DUE_SCHEDULES)
        if rows is None:
            return False
        if rows[0][0]:
            logger.info("enqueued %d periodic job(s)", rows[0][0])
        return True

    def _prune(self, keep: timedelta) -> bool:
        total = 0
        while not self._stop_event.is_set():
            rows = self._link.fetch(queries.PRUNE_JOBS, (keep, PRUNE_BATCH))
            if rows is None:
                return False
            total += rows[0][0]
            if rows[0][0] < PRUNE_BATCH:
                break
        if total:
            logger.info("pruned %d finished job(s) older than %s", total, keep)
        return True
