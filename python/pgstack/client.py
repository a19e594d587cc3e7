"""The client: enqueue jobs (alone, many, inside the caller's transaction) and read them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar, overload

import psycopg

from pgstack import queries
from pgstack.errors import from_database
from pgstack.models import STATUSES, DeadLetterJob, Job, QueueCount, Schedule
from pgstack.payloads import to_json
from pgstack.registry import F, HandlerRegistry

T = TypeVar("T")
_DEFAULT_PAYLOAD: Any = {}
EnqueueConnection = psycopg.Connection[Any] | psycopg.Transaction


class ConnectionSource(Protocol):
    """Anything that lends a connection for one call: a psycopg pool, or pgstack's own."""

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]: ...


@dataclass(frozen=True)
class JobSpec:
    """One job for :meth:`JobQueue.enqueue_many`; ``None`` fields take the defaults."""

    job_name: str
    payload: Any = None
    scheduled_for: datetime | timedelta | None = None
    max_attempts: int | None = None
    priority: int | None = None
    queue_name: str | None = None
    dedup_key: str | None = None
    timeout_seconds: int | None = None


def _when(scheduled_for: datetime | timedelta | None) -> tuple[datetime | None, timedelta | None]:
    """A moment is sent as is; a delay is added to the database's clock, not ours."""
    if scheduled_for is None:
        return None, None
    if isinstance(scheduled_for, timedelta):
        return None, scheduled_for
    if isinstance(scheduled_for, datetime):
        if scheduled_for.tzinfo is None:
            raise ValueError(
                f"scheduled_for must be timezone-aware (or a timedelta), got {scheduled_for!r}"
            )
        return scheduled_for, None
    raise TypeError(f"scheduled_for must be a datetime or a timedelta, got {scheduled_for!r}")


def _column(values: list[Any]) -> list[Any] | None:
    """An optional array argument: NULL (all defaults) when no element is set."""
    return values if any(v is not None for v in values) else None


class JobQueue:
    """Enqueue and read jobs; the Python side of the ``dbos`` functions.

    ``connections`` lends a connection per call (a psycopg pool does). Every method
    also accepts ``conn=``: an open psycopg connection or transaction, whose
    transaction the call then joins (it commits or rolls back with the caller's work).
    """

    def __init__(
        self,
        connections: ConnectionSource,
        *,
        default_max_attempts: int = 3,
        registry: HandlerRegistry | None = None,
    ) -> None:
        self._connections = connections
        self.default_max_attempts = default_max_attempts
        self.registry = registry if registry is not None else HandlerRegistry()

    # -- handlers ------------------------------------------------------------------

    @overload
    def register(self, job_name: str, **options: Any) -> Callable[[F], F]: ...

    @overload
    def register(self, job_name: str, fn: F, **options: Any) -> F: ...

    def register(self, job_name: str, fn: F | None = None, **options: Any) -> F | Callable[[F], F]:
        """``queue.register("name", fn)`` or ``@queue.register("name")``; options as
        :func:`pgstack.job` (``cron``, ``timeout``, ``retry``, ``transactional``)."""
        if fn is None:
            return self.registry.register(job_name, **options)
        return self.registry.register(job_name, fn, **options)

    # -- enqueueing ----------------------------------------------------------------

    def enqueue(
        self,
        job_name: str,
        payload: Any = _DEFAULT_PAYLOAD,
        scheduled_for: datetime | timedelta | None = None,
        max_attempts: int | None = None,
        *,
        priority: int | None = None,
        queue_name: str | None = None,
        dedup_key: str | None = None,
        timeout_seconds: int | None = None,
        conn: EnqueueConnection | None = None,
    ) -> int:
        """Enqueue one job; returns its id.

        ``scheduled_for``: a timezone-aware datetime, or a timedelta from now (the
        database's now). ``max_attempts`` defaults to the queue's ``max_retries``.
        ``priority``: higher runs first (default 0). ``queue_name``: default
        ``'default'``. ``dedup_key``: while a pending or running job holds the key, its
        id is returned instead of a new job's. ``timeout_seconds``: an attempt running
        longer fails.
        """
        at, delay = _when(scheduled_for)
        params = {
            "job_name": job_name,
            "payload": to_json(payload, what=f"payload of job {job_name!r}"),
            "scheduled_for": at,
            "delay": delay,
            "max_attempts": self.default_max_attempts if max_attempts is None else max_attempts,
            "priority": priority,
            "queue_name": queue_name,
            "dedup_key": dedup_key,
            "timeout_seconds": timeout_seconds,
        }
        row = self._fetch_one(queries.ENQUEUE, params, conn)
        return int(row[0])

    @overload
    def enqueue_many(
        self,
        jobs: str,
        payloads: Iterable[Any],
        *,
        scheduled_for: datetime | timedelta | None = None,
        max_attempts: int | None = None,
        conn: EnqueueConnection | None = None,
    ) -> list[int]: ...

    @overload
    def enqueue_many(
        self,
        jobs: Iterable[JobSpec | tuple[str, Any]],
        payloads: None = None,
        *,
        scheduled_for: datetime | timedelta | None = None,
        max_attempts: int | None = None,
        conn: EnqueueConnection | None = None,
    ) -> list[int]: ...

    def enqueue_many(
        self,
        jobs: str | Iterable[JobSpec | tuple[str, Any]],
        payloads: Iterable[Any] | None = None,
        *,
        scheduled_for: datetime | timedelta | None = None,
        max_attempts: int | None = None,
        conn: EnqueueConnection | None = None,
    ) -> list[int]:
        """Enqueue many jobs in one statement; returns their ids in the order given.

        ``enqueue_many("send-email", [p1, p2])`` enqueues one job per payload;
        ``enqueue_many([("a", p1), JobSpec("b", p2, max_attempts=5)])`` mixes names.
        ``scheduled_for`` and ``max_attempts`` apply to jobs that do not set their own.
        """
        if isinstance(jobs, str):
            if payloads is None:
                raise TypeError("enqueue_many(job_name, payloads): payloads is missing")
            specs = [JobSpec(jobs, p) for p in payloads]
        else:
            if payloads is not None:
                raise TypeError("enqueue_many(jobs): pass payloads only with a job name")
            specs = [j if isinstance(j, JobSpec) else JobSpec(*j) for j in jobs]
        if not specs:
            return []
        default_at, default_delay = _when(scheduled_for)
        default_attempts = self.default_max_attempts if max_attempts is None else max_attempts
        times: list[datetime | None] = []
        delays: list[timedelta | None] = []
        for spec in specs:
            at, delay = _when(spec.scheduled_for)
            if at is None and delay is None:
                at, delay = default_at, default_delay
            times.append(at)
            delays.append(delay)
        params = {
            "job_names": [s.job_name for s in specs],
            "payloads": "["
            + ",".join(to_json(s.payload, what=f"payload of job {s.job_name!r}") for s in specs)
            + "]",
            "times": times if any(t is not None for t in times) else None,
            "delays": delays if any(d is not None for d in delays) else None,
            "max_attempts": [
                default_attempts if s.max_attempts is None else s.max_attempts for s in specs
            ],
            "priorities": _column([s.priority for s in specs]),
            "queue_names": _column([s.queue_name for s in specs]),
            "dedup_keys": _column([s.dedup_key for s in specs]),
            "timeout_seconds": _column([s.timeout_seconds for s in specs]),
        }
        return [int(row[0]) for row in self._fetch_all(queries.ENQUEUE_MANY, params, conn)]

    # -- reading -------------------------------------------------------------------

    def get_job(self, job_id: int, *, conn: EnqueueConnection | None = None) -> Job | None:
        """The job, or ``None`` (unknown, pruned, or dead-lettered)."""
        rows = self._fetch_all(queries.GET_JOB, (job_id,), conn)
        return Job(*rows[0]) if rows else None

    def list_jobs(
        self, status: str | None = None, limit: int = 50, *, conn: EnqueueConnection | None = None
    ) -> list[Job]:
        """The newest ``limit`` jobs, of one status when given."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
        return [Job(*row) for row in self._fetch_all(queries.LIST_JOBS, (status, limit), conn)]

    def list_dead_letter_jobs(
        self, limit: int = 50, *, conn: EnqueueConnection | None = None
    ) -> list[DeadLetterJob]:
        """Dead-lettered jobs, newest first."""
        rows = self._fetch_all(queries.LIST_DEAD_LETTER_JOBS, (limit,), conn)
        return [DeadLetterJob(*row) for row in rows]

    def stats(self, *, conn: EnqueueConnection | None = None) -> list[QueueCount]:
        """Job counts by name and status (dead letters as status ``dead``)."""
        return [QueueCount(*row) for row in self._fetch_all(queries.QUEUE_STATS, None, conn)]

    # -- operators -----------------------------------------------------------------

    def retry_dead_letter_job(self, dead_id: int, *, conn: EnqueueConnection | None = None) -> int:
        """Replay a dead-lettered job; returns the new job's id. Raises :class:`JobNotFound`."""
        return int(self._fetch_one(queries.RETRY_DEAD_LETTER_JOB, (dead_id,), conn)[0])

    def retry_job(self, job_id: int, *, conn: EnqueueConnection | None = None) -> int:
        """Retry now: replays a dead letter (new id) or makes a waiting pending job due now."""
        return int(self._fetch_one(queries.RETRY_JOB, (job_id,), conn)[0])

    def cancel_job(self, job_id: int, *, conn: EnqueueConnection | None = None) -> str:
        """Cancel a job: ``'cancelled'``, ``'cancel_requested'`` (running), or its final status."""
        return str(self._fetch_one(queries.CANCEL_JOB, (job_id,), conn)[0])

    def retry_dead_letter_jobs(
        self, job_name: str, *, conn: EnqueueConnection | None = None
    ) -> list[int]:
        """Replay every dead-lettered job of ``job_name``; returns the new ids."""
        return [
            int(r[0]) for r in self._fetch_all(queries.RETRY_DEAD_LETTER_JOBS, (job_name,), conn)
        ]

    def cancel_pending_jobs(self, job_name: str, *, conn: EnqueueConnection | None = None) -> int:
        """Cancel every pending job of ``job_name``; returns how many."""
        return int(self._fetch_one(queries.CANCEL_PENDING_JOBS, (job_name,), conn)[0])

    def set_queue_limit(
        self,
        queue_name: str,
        concurrency_limit: int | None,
        *,
        conn: EnqueueConnection | None = None,
    ) -> None:
        """At most ``concurrency_limit`` running jobs of ``queue_name`` across all workers
        (1: a serial queue, 0: paused, ``None``: no limit)."""
        self._fetch_all(queries.SET_QUEUE_LIMIT, (queue_name, concurrency_limit), conn)

    # -- periodic jobs ---------------------------------------------------------------

    def schedule(
        self,
        schedule_name: str,
        cron: str,
        job_name: str | None = None,
        payload: Any = _DEFAULT_PAYLOAD,
        *,
        timezone: str = "UTC",
        queue_name: str = "default",
        priority: int = 0,
        max_attempts: int | None = None,
        conn: EnqueueConnection | None = None,
    ) -> datetime:
        """Enqueue ``job_name`` (default: ``schedule_name``) at every tick of ``cron``;
        returns the next tick. Each tick runs once however many workers there are."""
        name = job_name or schedule_name
        params = (
            schedule_name,
            cron,
            name,
            to_json(payload, what=f"payload of schedule {schedule_name!r}"),
            timezone,
            queue_name,
            priority,
            self.default_max_attempts if max_attempts is None else max_attempts,
        )
        value: datetime = self._fetch_one(queries.SCHEDULE, params, conn)[0]
        return value

    def unschedule(self, schedule_name: str, *, conn: EnqueueConnection | None = None) -> bool:
        """Remove a periodic job; ``False`` when there was none of that name."""
        return bool(self._fetch_one(queries.UNSCHEDULE, (schedule_name,), conn)[0])

    def list_schedules(self, *, conn: EnqueueConnection | None = None) -> list[Schedule]:
        return [Schedule(*row) for row in self._fetch_all(queries.LIST_SCHEDULES, None, conn)]

    def prune_jobs(
        self,
        older_than: timedelta,
        *,
        max_rows: int | None = None,
        conn: EnqueueConnection | None = None,
    ) -> int:
        """Delete completed and cancelled jobs finished more than ``older_than`` ago."""
        return int(self._fetch_one(queries.PRUNE_JOBS, (older_than, max_rows), conn)[0])

    # -- plumbing ------------------------------------------------------------------

    @contextmanager
    def _cursor(self, conn: EnqueueConnection | None) -> Iterator[psycopg.Cursor[Any]]:
        try:
            if conn is not None:
                connection = conn.connection if isinstance(conn, psycopg.Transaction) else conn
                if not isinstance(connection, psycopg.Connection):
                    raise TypeError(
                        f"conn must be a psycopg Connection or Transaction, got {conn!r}"
                    )
                with connection.cursor() as cursor:
                    yield cursor
            else:
                with self._connections.connection() as connection, connection.cursor() as cursor:
                    yield cursor
        except psycopg.Error as error:
            raise from_database(error) from None

    def _fetch_all(
        self,
        query: str,
        params: Sequence[Any] | dict[str, Any] | None,
        conn: EnqueueConnection | None,
    ) -> list[tuple[Any, ...]]:
        with self._cursor(conn) as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()

    def _fetch_one(
        self,
        query: str,
        params: Sequence[Any] | dict[str, Any] | None,
        conn: EnqueueConnection | None,
    ) -> tuple[Any, ...]:
        rows = self._fetch_all(query, params, conn)
        return rows[0]
