"""``PgStackDBOS``: the entry point of the reference page, in Python."""

from __future__ import annotations

import threading
from types import TracebackType

from pgstack.client import JobQueue
from pgstack.config import database_url
from pgstack.connections import LazyPool
from pgstack.registry import HandlerRegistry
from pgstack.worker.runner import Worker
from pgstack.worker.settings import WorkerSettings


class PgStackDBOS:
    """A queue client plus an in-process worker::

        dbos = PgStackDBOS(connection_string=url, max_retries=3, retry_delay_ms=1000)
        queue = dbos.queue
        queue.register("send-welcome-email", send_welcome_email)
        dbos.start()      # background worker, returns at once
        dbos.stop()       # graceful: no new claims, waits for running jobs

    ``connection_string`` defaults to ``DATABASE_URL``. ``max_retries`` is the default
    ``max_attempts`` of enqueued jobs; ``retry_delay_ms`` the base of the backoff.
    """

    def __init__(
        self,
        connection_string: str | None = None,
        *,
        max_retries: int = 3,
        retry_delay_ms: int = 1000,
        pool_size: int = 4,
    ) -> None:
        if max_retries < 1:
            raise ValueError(f"max_retries must be at least 1, got {max_retries}")
        if retry_delay_ms < 0:
            raise ValueError(f"retry_delay_ms must be 0 or more, got {retry_delay_ms}")
        self.connection_string = database_url(connection_string)
        self.max_retries = max_retries
        self.retry_delay_ms = retry_delay_ms
        self._pool = LazyPool(self.connection_string, max_size=pool_size)
        self.queue = JobQueue(
            self._pool, default_max_attempts=max_retries, registry=HandlerRegistry()
        )
        self._worker: Worker | None = None
        self._thread: threading.Thread | None = None

    def start(self, poll_interval_ms: int = 5000, *, concurrency: int = 10) -> None:
        """Start a worker for the registered handlers in a background thread; returns at once."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("this PgStackDBOS worker is already running")
        settings = WorkerSettings(
            concurrency=concurrency,
            poll_interval=poll_interval_ms / 1000,
            retry_delay_ms=self.retry_delay_ms,
        )
        self._worker = Worker(self.connection_string, self.queue.registry, settings)
        self._thread = threading.Thread(
            target=self._worker.run_forever, name="pgstack-worker", daemon=True
        )
        self._thread.start()
        self._worker.wait_started()

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming, wait for running jobs (up to the shutdown timeout), release the rest."""
        if self._worker is None or self._thread is None:
            return
        self._worker.request_stop()
        self._thread.join(timeout)
        self._worker = None
        self._thread = None

    def close(self) -> None:
        """Stop the worker and close the client's connections."""
        self.stop()
        self._pool.close()

    def __enter__(self) -> PgStackDBOS:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
