"""What the dashboard reads: one method per page, each a few indexed queries.

The statements are in :mod:`pgstack.queries`; the functions they call (schema ``dbos``,
``sql/75_dashboard.sql``) never read every finished row, so a page costs milliseconds
however many jobs the table holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from pgstack import queries
from pgstack.client import ConnectionSource
from pgstack.errors import from_database
from pgstack.models import STATUSES, DeadLetterJob, Job

# Groups larger than this are estimated from the planner's statistics.
EXACT_COUNT_LIMIT = 10_000
THROUGHPUT_MINUTES = 60
WORKERS_SEEN_WITHIN = timedelta(minutes=5)
COUNT_COLUMNS: tuple[str, ...] = (*STATUSES, "dead")


@dataclass(frozen=True)
class Count:
    """How many jobs; ``estimated`` when read from statistics rather than counted."""

    jobs: int = 0
    estimated: bool = False

    def __add__(self, other: Count) -> Count:
        return Count(self.jobs + other.jobs, self.estimated or other.estimated)


@dataclass(frozen=True)
class NameCounts:
    """One job name's counts by status (``None``: the rare names of an estimate)."""

    job_name: str | None
    by_status: dict[str, Count]


@dataclass(frozen=True)
class Minute:
    minute: datetime
    completed: int
    failed: int


@dataclass(frozen=True)
class WorkerSeen:
    worker_id: str
    running: int
    finished_recently: int
    last_finished_at: datetime | None
    lease_expires_at: datetime | None


@dataclass(frozen=True)
class Overview:
    now: datetime
    totals: dict[str, Count]
    names: list[NameCounts]
    throughput: list[Minute]
    oldest_due_at: datetime | None
    workers: list[WorkerSeen]
    workers_window: timedelta = WORKERS_SEEN_WITHIN

    @property
    def oldest_due_age(self) -> timedelta | None:
        return None if self.oldest_due_at is None else self.now - self.oldest_due_at


@dataclass(frozen=True)
class JobFilter:
    status: str | None = None
    job_name: str | None = None
    error_contains: str | None = None


@dataclass(frozen=True)
class JobPage:
    """A page of jobs, newest first, with the keys of its neighbours."""

    now: datetime
    jobs: list[Job]
    # Set when there are older / newer jobs: the ``before`` / ``after`` of their page.
    older_than: int | None = None
    newer_than: int | None = None


@dataclass(frozen=True)
class DeadLetterPage:
    now: datetime
    jobs: list[DeadLetterJob]
    # The last row's (failed_at, id) when older dead letters follow.
    next_key: tuple[datetime, int] | None = None


@dataclass(frozen=True)
class JobView:
    """A job for its page: in the queue, or in the dead letter (``dead``)."""

    now: datetime
    job: Job | None = None
    dead: DeadLetterJob | None = None


@dataclass
class _Totals:
    by_status: dict[str, Count] = field(
        default_factory=lambda: dict.fromkeys(COUNT_COLUMNS, Count())
    )


class DashboardData:
    """The dashboard's reads over a connection source (a pool)."""

    def __init__(self, connections: ConnectionSource) -> None:
        self._connections = connections

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[Any]]:
        try:
            with self._connections.connection() as conn, conn.cursor() as cursor:
                yield cursor
        except psycopg.Error as error:
            raise from_database(error) from None

    @staticmethod
    def _rows(
        cursor: psycopg.Cursor[Any], query: str, params: Sequence[Any] | None = None
    ) -> list[tuple[Any, ...]]:
        cursor.execute(query, params)
        return cursor.fetchall()

    @staticmethod
    def _now(cursor: psycopg.Cursor[Any]) -> datetime:
        value: datetime = DashboardData._rows(cursor, queries.DASHBOARD_NOW)[0][0]
        return value

    def overview(self) -> Overview:
        with self._cursor() as cursor:
            now = self._now(cursor)
            counts = self._rows(cursor, queries.DASHBOARD_COUNTS, (EXACT_COUNT_LIMIT,))
            minutes = self._rows(cursor, queries.DASHBOARD_THROUGHPUT, (THROUGHPUT_MINUTES,))
            oldest = self._rows(cursor, queries.DASHBOARD_OLDEST_DUE_AT)[0][0]
            workers = self._rows(cursor, queries.DASHBOARD_WORKERS, (WORKERS_SEEN_WITHIN,))
        totals = _Totals().by_status
        names: dict[str | None, dict[str, Count]] = {}
        for job_name, status, jobs, estimated in counts:
            count = Count(int(jobs), bool(estimated))
            totals[status] = totals[status] + count
            by_status = names.setdefault(job_name, dict.fromkeys(COUNT_COLUMNS, Count()))
            by_status[status] = by_status[status] + count
        return Overview(
            now=now,
            totals=totals,
            names=[NameCounts(name, names[name]) for name in names],
            throughput=[Minute(m, int(c), int(f)) for m, c, f in minutes],
            oldest_due_at=oldest,
            workers=[WorkerSeen(*row) for row in workers],
        )

    def job_names(self, *, dead_only: bool = False) -> list[str]:
        """The job names the counts know (for the filters' suggestions), sorted."""
        with self._cursor() as cursor:
            counts = self._rows(cursor, queries.DASHBOARD_COUNTS, (EXACT_COUNT_LIMIT,))
        return sorted(
            {name for name, status, _, _ in counts if name and (status == "dead" or not dead_only)}
        )

    def jobs(
        self,
        where: JobFilter,
        *,
        before_id: int | None = None,
        after_id: int | None = None,
        limit: int = 50,
    ) -> JobPage:
        """A page of jobs; one row more than asked tells whether another page follows."""
        params = (
            where.status,
            where.job_name,
            where.error_contains,
            before_id,
            after_id,
            limit + 1,
        )
        with self._cursor() as cursor:
            now = self._now(cursor)
            rows = self._rows(cursor, queries.DASHBOARD_LIST_JOBS, params)
        jobs = [Job(*row) for row in rows]
        if after_id is not None:
            # Rows come newest first: the extra one is the newest, beyond this page.
            more_newer = len(jobs) > limit
            jobs = jobs[-limit:] if more_newer else jobs
            older_than = jobs[-1].id if jobs else None
            newer_than = jobs[0].id if jobs and more_newer else None
            if not jobs:
                # Past the newest job: show the first page instead.
                return self.jobs(where, limit=limit)
            return JobPage(now, jobs, older_than=older_than, newer_than=newer_than)
        more_older = len(jobs) > limit
        jobs = jobs[:limit]
        return JobPage(
            now,
            jobs,
            older_than=jobs[-1].id if more_older else None,
            newer_than=jobs[0].id if jobs and before_id is not None else None,
        )

    def dead_letters(
        self,
        job_name: str | None = None,
        *,
        before: tuple[datetime, int] | None = None,
        limit: int = 50,
    ) -> DeadLetterPage:
        before_at, before_id = before if before is not None else (None, None)
        with self._cursor() as cursor:
            now = self._now(cursor)
            rows = self._rows(
                cursor,
                queries.DASHBOARD_LIST_DEAD_LETTER_JOBS,
                (job_name, before_at, before_id, limit + 1),
            )
        jobs = [DeadLetterJob(*row) for row in rows]
        next_key = None
        if len(jobs) > limit:
            jobs = jobs[:limit]
            next_key = (jobs[-1].failed_at, jobs[-1].id)
        return DeadLetterPage(now, jobs, next_key)

    def job(self, job_id: int) -> JobView:
        """The job, else its dead letter, else neither."""
        with self._cursor() as cursor:
            now = self._now(cursor)
            rows = self._rows(cursor, queries.GET_JOB, (job_id,))
            if rows:
                return JobView(now, job=Job(*rows[0]))
            dead = self._rows(cursor, queries.GET_DEAD_LETTER_JOB, (job_id,))
        return JobView(now, dead=DeadLetterJob(*dead[0]) if dead else None)
