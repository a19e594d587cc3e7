"""Helpers for the worker tests: reading jobs and the ledger, waiting on conditions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from conftest import scalar, wait_for

FAST = ("--retry-delay-ms", "50", "--poll-interval", "100")


def job_row(db: psycopg.Connection[Any], job_id: int) -> dict[str, Any] | None:
    cursor = db.execute(
        """
        select id, status, attempt, error, progress, progress_message, locked_by,
               scheduled_for, created_at, started_at, completed_at, lease_expires_at
        from dbos.job_queue where id = %s
        """,
        (job_id,),
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([c.name for c in cursor.description], row, strict=True))


def status(db: psycopg.Connection[Any], job_id: int) -> str | None:
    return scalar(db, "select status from dbos.job_queue where id = %s", (job_id,))


def wait_status(db, job_ids, wanted: str = "completed", timeout: float = 10.0) -> None:
    ids = list(job_ids)
    wait_for(
        lambda: (
            scalar(
                db,
                "select count(*) from dbos.job_queue where id = any(%s) and status = %s",
                (ids, wanted),
            )
            == len(ids)
        ),
        timeout=timeout,
        message=f"jobs {ids} to be {wanted}",
    )


def events(db, key: str, event: str | None = None) -> int:
    if event is None:
        return scalar(db, "select count(*) from ledger where job_key = %s", (key,))
    return scalar(db, "select count(*) from ledger where job_key = %s and event = %s", (key, event))


def wait_event(db, key: str, event: str = "started", timeout: float = 10.0) -> None:
    wait_for(lambda: events(db, key, event) > 0, timeout=timeout, message=f"{key} {event}")


def go(db, *keys: str) -> None:
    for key in keys:
        db.execute("insert into ledger (job_key, event) values (%s, 'go')", (key,))


def seconds(delta: timedelta) -> float:
    return delta.total_seconds()


def claimer_is_idle(db, worker_id: str) -> bool:
    """The worker's claimer waits: its last statement was the next-job query."""
    return bool(
        scalar(
            db,
            """
            select count(*) from pg_stat_activity
            where datname = current_database() and application_name = %s
              and state = 'idle' and query like '%%seconds_until_next_job%%'
            """,
            (f"pgstack claimer {worker_id}",),
        )
    )


def wait_idle(db, worker_id: str) -> None:
    wait_for(lambda: claimer_is_idle(db, worker_id), message=f"worker {worker_id} to be idle")


def worker_backends(db, worker_id: str) -> list[tuple[int, str]]:
    return db.execute(
        """
        select pid, application_name from pg_stat_activity
        where datname = current_database() and application_name like 'pgstack%%'
          and application_name like %s
        order by application_name
        """,
        (f"% {worker_id}",),
    ).fetchall()


def purposes(db, worker_id: str) -> list[str]:
    """What the worker's connections are for (`pgstack <purpose> <worker id>`)."""
    return [name.split()[1] for _, name in worker_backends(db, worker_id)]


def max_overlap(db) -> int:
    """The most handlers running at once, from their started/ran events in the ledger.
    Each handler records after it starts and before it ends, so this never overcounts."""
    rows = db.execute(
        "select at, event from ledger where event in ('started', 'ran') order by at, event"
    ).fetchall()
    # At equal times "ran" sorts before "started": an end before a start, never overcounting.
    running = peak = 0
    for _, event in rows:
        running += 1 if event == "started" else -1
        peak = max(peak, running)
    return peak
