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
        "progress_message",
        "progress_version",
        "progress_writing",
        "progress_written",
        "started_at",
        "state",
        "task",
        "timed_out",
        "timeout_seconds",
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
        self.timeout_seconds: int | None = row[6]
        self.cancel_requested = False
        self.lost = False
        self.timed_out = False
        self.progress: float | None = None
        self.progress_message: str | None = None
        # Each report bumps the version; a write that the database confirmed records the
        # version it carried. ``progress_writing`` is set while the heartbeater's write is
        # on its way, so the completer waits for it rather than be overtaken by it.
        self.progress_version = 0
        self.progress_written = 0
        self.progress_writing = False
        self.started_at = 0.0
        # waiting (claimed, in hand) -> running (a runner runs its handler) -> done
        self.state = "waiting"
        # The runner task running it, while it runs.
        self.task: asyncio.Task[Any] | None = None
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
        self.progress_version += 1
        self.wake_heartbeater()
        return REPORTED

    @property
    def progress_unwritten(self) -> bool:
        """A progress was reported that no confirmed write has stored yet."""
        return self.progress_version != self.progress_written

    def progress_params(self, lease_seconds: int) -> tuple[int, tuple[Any, ...]]:
        """The version and the ``REPORT_PROGRESS`` parameters of the progress now held."""
        version = self.progress_version
        return version, (
            self.id,
            self.progress,
            self.progress_message,
            lease_seconds,
            self.lease_token,
        )

    def progress_stored(self, version: int) -> None:
        """The database confirmed a write that carried ``version``."""
        self.progress_written = max(self.progress_written, version)

    def progress_settled(self) -> None:
        """The heartbeater's progress write has run or failed: none is on its way."""
        self.progress_writing = False

    def describe(self) -> str:
        return f"job {self.id} ({self.job_name}, attempt {self.attempt}/{self.max_attempts})"
