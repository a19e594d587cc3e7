"""The worker's one-line live summary on a terminal: running, done, failed, jobs/s.

`pgstack-run` shows it when stderr is a terminal: the line stays at the bottom and is
redrawn every half second, and log lines are printed above it. Elsewhere (a file, a
pipe, a container's log) the worker writes plain log lines only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

from pgstack.worker.stats import WorkerStats

CLEAR_LINE = "\r\x1b[K"
# jobs/s is the rate over about this many seconds.
RATE_WINDOW = 5.0


def wants_live_summary(stream: TextIO) -> bool:
    """A terminal that understands carriage return and erase-line."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM", "") not in ("", "dumb")


def summary_line(stats: WorkerStats, running: int, rate: float) -> str:
    failed = stats.retried + stats.dead
    parts = [
        f"{running} running",
        f"{stats.completed} done",
        f"{failed} failed" + (f" ({stats.dead} dead)" if stats.dead else ""),
    ]
    if stats.cancelled:
        parts.append(f"{stats.cancelled} cancelled")
    parts.append(f"{rate:.1f} jobs/s")
    return "pgstack-run: " + " | ".join(parts)


class LiveSummary(logging.Handler):
    """A logging handler that prints records above a status line it keeps redrawn.

    `refresh` computes the line (on the worker's event loop, where the counters
    change); `emit` may run in any thread and only redraws the last line computed."""

    def __init__(self, stream: TextIO, stats: WorkerStats) -> None:
        super().__init__()
        self.stream = stream
        self.stats = stats
        self._line = ""
        self._finished: deque[tuple[float, int]] = deque()

    def _finished_now(self) -> int:
        s = self.stats
        return s.completed + s.retried + s.dead + s.cancelled

    def _rate(self, now: float) -> float:
        finished = self._finished_now()
        self._finished.append((now, finished))
        while len(self._finished) > 1 and now - self._finished[0][0] > RATE_WINDOW:
            self._finished.popleft()
        first_time, first_count = self._finished[0]
        return (finished - first_count) / (now - first_time) if now > first_time else 0.0

    def _fit(self, line: str) -> str:
        # A line that wraps cannot be redrawn in place.
        width = shutil.get_terminal_size((100, 24)).columns
        return line if len(line) < width else line[: max(width - 2, 1)] + "…"

    def refresh(self, running: int) -> None:
        line = self._fit(summary_line(self.stats, running, self._rate(time.monotonic())))
        self.acquire()
        try:
            self._line = line
            self.stream.write(CLEAR_LINE + line)
            self.stream.flush()
        finally:
            self.release()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            # Called with the handler's lock held (Handler.handle).
            self.stream.write(CLEAR_LINE + text + "\n" + self._line)
            self.stream.flush()
        except Exception:
            self.handleError(record)

    def finish(self) -> None:
        """Leave the last line on the screen, ended, so the shell prompt goes below it."""
        self.acquire()
        try:
            if self._line:
                self.stream.write("\n")
                self.stream.flush()
            self._line = ""
        finally:
            self.release()

    async def run(self, running: Callable[[], int], interval: float = 0.5) -> None:
        """Redraw every ``interval`` seconds until cancelled."""
        while True:
            self.refresh(running())
            await asyncio.sleep(interval)
