"""pgstack: a durable job queue inside PostgreSQL.

Jobs are rows of ``dbos.job_queue``; every state change is a function of schema
``dbos``; this package enqueues and reads jobs and runs workers that dispatch them
to handlers::

    import pgstack

    @pgstack.job("send-welcome-email")
    async def send_welcome_email(payload, report_progress): ...
"""

from pgstack.client import JobQueue, JobSpec
from pgstack.errors import (
    ConfigurationError,
    InvalidArgument,
    InvalidJobState,
    JobCancelled,
    JobNotFound,
    MigrationError,
    PayloadError,
    PermanentError,
    PgStackError,
    Snooze,
)
from pgstack.models import DeadLetterJob, Job, QueueCount, Schedule
from pgstack.registry import RetryPolicy, job

__all__ = [
    "ConfigurationError",
    "DeadLetterJob",
    "InvalidArgument",
    "InvalidJobState",
    "Job",
    "JobCancelled",
    "JobNotFound",
    "JobQueue",
    "JobSpec",
    "MigrationError",
    "PayloadError",
    "PermanentError",
    "PgStackError",
    "QueueCount",
    "RetryPolicy",
    "Schedule",
    "Snooze",
    "job",
]
