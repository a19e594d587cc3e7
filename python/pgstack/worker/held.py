"""A job in the worker's hands, and the ``report_progress`` its handler gets."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Generator
from typing import Any

from pgstack.errors import JobCancelled

logger = logging.getLogger("pgstack.worker")


class _Reported:
    """What ``report_progress`` returns: nothing, but awaitable, so async handlers may
    write ``await report_progress(50)`` as well as ``report_progress(50)``."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return iter(())  # type: ignore[return-value]


REPORTED = _Reported()


def _storable(text: str) -> str:
    """Text PostgreSQL accepts: no NUL, valid UTF-8 (lone surrogates escaped)."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


class HeldJob:
    """A claimed job: what the handler needs, the lease that fences its writes, and state
    shared with the heartbeater thread (progress to write, cancel or loss learned)."""

    __slots__ = (
        "attempt",
        "cancel_requested",
        "id",
        "job_name",
        "lease_token",
        "lost",
        "max_attempts",
        "payload",
        "progress",
        "progress_dirty",
        "progress_message",
        "started_at",
        "task",
        "wake_heartbeater",
    )

    def __init__(
        self,
        row: tuple[Any, ...],
        wake_heartbeater: Callable[[], None],
    ) -> None:
        self.id: int = row[0]
        self.job_name: str = row[1]
        self.payload: Any = row[2]
        self.attempt: int = row[3]
        self.max_attempts: int = row[4]
        self.lease_token: int = row[5]
        self.cancel_requested = False
        self.lost = False
        self.progress: float | None = None
        self.progress_message: str | None = None
        self.progress_dirty = False
        self.started_at = 0.0
        self.task: asyncio.Future[Any] | None = None
        self.wake_heartbeater = wake_heartbeater

    def report_progress(self, progress: float | None, message: str | None = None) -> _Reported:
        """Best effort: records the progress (0-100) and message; the heartbeater writes it
        within moments, which also extends the lease. Never fails the job, except that once
        the job's cancel was requested (or its lease lost) it raises :class:`JobCancelled`,
        so a sync handler stops at its next report."""
        if self.cancel_requested or self.lost:
            reason = "its cancel was requested" if self.cancel_requested else "its lease was lost"
            raise JobCancelled(f"job {self.id} ({self.job_name}) stopped: {reason}")
        try:
            value = None if progress is None else float(progress)
            if value is not None and math.isnan(value):
                raise ValueError("NaN")
        except (TypeError, ValueError):
            logger.warning("job %s: report_progress ignored a bad progress %r", self.id, progress)
            return REPORTED
        # Clamped here as in the database (so +-inf is 0 or 100, not an error), and the
        # message made storable: PostgreSQL text holds no NUL, and a write the database
        # refuses would be retried by the heartbeater forever.
        self.progress = None if value is None else min(100.0, max(0.0, value))
        self.progress_message = None if message is None else _storable(str(message))
        self.progress_dirty = True
        self.wake_heartbeater()
        return REPORTED

    def describe(self) -> str:
        return f"job {self.id} ({self.job_name}, attempt {self.attempt}/{self.max_attempts})"
