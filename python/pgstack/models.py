"""What the client hands back: jobs and dead-letter jobs as plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

JobStatus = Literal["pending", "running", "completed", "cancelled"]
STATUSES: tuple[str, ...] = ("pending", "running", "completed", "cancelled")


@dataclass(frozen=True)
class Job:
    """A row of ``dbos.job_queue`` (columns of ``queries.JOB_COLUMNS``, in that order)."""

    id: int
    job_name: str
    payload: Any
    status: JobStatus
    attempt: int
    max_attempts: int
    error: str | None
    scheduled_for: datetime
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    progress: int | None
    progress_message: str | None
    locked_by: str | None
    lease_expires_at: datetime | None
    cancel_requested: bool
    priority: int
    queue_name: str
    dedup_key: str | None
    timeout_seconds: int | None
    # The handler's return value (JSON), once completed.
    result: Any


@dataclass(frozen=True)
class DeadLetterJob:
    """A row of ``dbos.failed_jobs``: a job that used up its attempts."""

    id: int
    job_name: str
    payload: Any
    error: str | None
    attempt: int
    max_attempts: int
    original_created_at: datetime
    failed_at: datetime
    priority: int
    queue_name: str
    dedup_key: str | None
    timeout_seconds: int | None


@dataclass(frozen=True)
class QueueCount:
    """One line of ``dbos.queue_stats``: how many jobs of a name are in a status."""

    job_name: str
    status: str
    jobs: int


@dataclass(frozen=True)
class Schedule:
    """A row of ``dbos.schedules``: a periodic job."""

    schedule_name: str
    cron: str
    timezone: str
    job_name: str
    payload: Any
    queue_name: str
    priority: int
    max_attempts: int
    next_run_at: datetime
    last_run_at: datetime | None
