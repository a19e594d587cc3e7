"""The exceptions pgstack raises, and how database errors map onto them."""

from __future__ import annotations

import psycopg


class PgStackError(Exception):
    """Base class of every error pgstack raises on purpose."""


class ConfigurationError(PgStackError):
    """pgstack was not told which database to use, or was told something unusable."""


class MigrationError(PgStackError):
    """The database schema cannot be migrated safely."""


class JobNotFound(PgStackError, LookupError):
    """No job (or dead-letter job) has this id."""


class InvalidArgument(PgStackError, ValueError):
    """The database refused an argument (SQLSTATE class 22), e.g. an empty job name."""


class InvalidJobState(PgStackError):
    """The job is not in a state that allows the operation (SQLSTATE 55000)."""


class PayloadError(PgStackError, TypeError):
    """A payload (or a handler's result) is not JSON-serialisable."""


class JobCancelled(PgStackError):
    """Raised inside a handler by ``report_progress`` once the job's cancel was requested."""


class Snooze(Exception):
    """Raise from a handler to run the job again ``seconds`` from now, without using up
    an attempt: ``raise pgstack.Snooze(30)``."""

    def __init__(self, seconds: float) -> None:
        if not seconds >= 0:
            raise ValueError(f"Snooze seconds must be 0 or more, got {seconds!r}")
        super().__init__(f"snoozed for {seconds} s")
        self.seconds = float(seconds)


class PermanentError(Exception):
    """Raise from a handler when retrying cannot help: the job goes straight to the dead
    letter, whatever attempts it has left."""


def from_database(error: psycopg.Error) -> PgStackError | psycopg.Error:
    """The pgstack exception for a database error of the queue's functions, or the error itself."""
    state = error.sqlstate or ""
    message = error.diag.message_primary or str(error)
    detail = error.diag.message_detail
    if detail:
        message = f"{message} ({detail})"
    if state == "P0002":
        return JobNotFound(message)
    if state == "55000":
        return InvalidJobState(message)
    if state.startswith("22"):
        return InvalidArgument(message)
    return error
