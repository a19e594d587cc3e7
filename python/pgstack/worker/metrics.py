"""Prometheus metrics of a worker (``pgstack-run --metrics-port``; the ``metrics`` extra).

Counters and the handler duration histogram are updated by the worker as jobs start
and finish (only when metrics are on: otherwise the worker's only cost is one ``if``
per event). The queue's depth and the age of its oldest due job are read from the
database when Prometheus scrapes, with one statement (``queries.QUEUE_DEPTH``).

Metrics (every one labelled ``job_name``):

* ``pgstack_jobs_started_total``, ``pgstack_jobs_completed_total``,
  ``pgstack_jobs_failed_total`` (failed attempts, retried or not),
  ``pgstack_jobs_dead_total`` (moved to the dead-letter table) -- by this worker;
* ``pgstack_job_duration_seconds``: histogram of handler run times in this worker;
* ``pgstack_worker_running_jobs``: handlers running now in this worker (no label);
* ``pgstack_queue_jobs`` (label ``status``: pending or running) and
  ``pgstack_queue_oldest_pending_age_seconds`` (how long the longest-waiting due job
  has waited, 0 when none is due) -- of the whole queue, from the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from pgstack import queries
from pgstack.config import redact_message
from pgstack.connections import connect_kwargs
from pgstack.errors import ConfigurationError

logger = logging.getLogger("pgstack.worker")

# Handler run times, from a millisecond to ten minutes.
DURATION_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)
# A scrape waits at most this long for the database.
QUERY_TIMEOUT_MS = 5000


class _QueueCollector(Collector):
    """Reads the queue's depth per job name on every scrape, on a connection of its own."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()  # scrapes may come in parallel
        self._failing = False

    def _rows(self) -> list[tuple[Any, ...]] | None:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    kwargs = connect_kwargs("pgstack metrics")
                    kwargs["options"] = f"-c statement_timeout={QUERY_TIMEOUT_MS}"
                    self._conn = psycopg.connect(self._conninfo, connect_timeout=5, **kwargs)
                rows = self._conn.execute(queries.QUEUE_DEPTH).fetchall()
            except psycopg.Error as error:
                if not self._failing:
                    logger.warning(
                        "metrics: cannot read the queue's depth: %s",
                        redact_message(str(error).strip(), self._conninfo),
                    )
                self._failing = True
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                return None
            if self._failing:
                logger.info("metrics: reading the queue's depth again")
                self._failing = False
            return rows

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows = self._rows()
        if rows is None:
            return
        depth = GaugeMetricFamily(
            "pgstack_queue_jobs",
            "Jobs in the queue by job name and status (pending or running), from the database",
            labels=["job_name", "status"],
        )
        age = GaugeMetricFamily(
            "pgstack_queue_oldest_pending_age_seconds",
            "How long the longest-waiting due pending job of a name has waited (0: none due)",
            labels=["job_name"],
        )
        for job_name, pending, running, oldest in rows:
            depth.add_metric([job_name, "pending"], pending)
            depth.add_metric([job_name, "running"], running)
            age.add_metric([job_name], oldest or 0.0)
        yield depth
        yield age

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class WorkerMetrics:
    """The metrics of one worker, and the HTTP endpoint that serves them."""

    def __init__(self, conninfo: str) -> None:
        # No *_created series (a timestamp per label set, rarely of use, doubling the
        # output). Process-wide, and this process is the worker's.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        # No auto_describe: registering would run the queue's query.
        self.registry = CollectorRegistry()
        names = ["job_name"]
        self._started = Counter(
            "pgstack_jobs_started", "Jobs started", names, registry=self.registry
        )
        self._completed = Counter(
            "pgstack_jobs_completed", "Jobs completed", names, registry=self.registry
        )
        self._failed = Counter(
            "pgstack_jobs_failed",
            "Failed attempts (retried or dead-lettered)",
            names,
            registry=self.registry,
        )
        self._dead = Counter(
            "pgstack_jobs_dead",
            "Jobs moved to the dead-letter table",
            names,
            registry=self.registry,
        )
        self._duration = Histogram(
            "pgstack_job_duration_seconds",
            "Handler run time",
            names,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._running = Gauge(
            "pgstack_worker_running_jobs", "Handlers running now", registry=self.registry
        )
        self._queue = _QueueCollector(conninfo)
        self.registry.register(self._queue)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    # -- called by the worker (its event loop, or the completer) ----------------------

    def started(self, job_name: str) -> None:
        self._started.labels(job_name).inc()
        self._running.inc()

    def ran(self, job_name: str, seconds: float) -> None:
        self._duration.labels(job_name).observe(seconds)
        self._running.dec()

    def completed(self, job_name: str) -> None:
        self._completed.labels(job_name).inc()

    def failed(self, job_name: str, dead: bool) -> None:
        self._failed.labels(job_name).inc()
        if dead:
            self._dead.labels(job_name).inc()

    # -- the endpoint ----------------------------------------------------------------

    def serve(self, port: int, host: str = "0.0.0.0") -> int:
        """Serve ``/metrics`` on ``host:port`` (0: any free port) from a daemon thread;
        returns the port."""
        try:
            self._server, self._thread = start_http_server(port, host, registry=self.registry)
        except OSError as error:
            raise ConfigurationError(f"cannot serve metrics on {host}:{port}: {error}") from None
        self.port = int(self._server.server_port)
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._queue.close()
