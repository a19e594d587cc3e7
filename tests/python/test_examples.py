"""examples/: the reference's handlers under a real `pgstack-run`, fed by examples/enqueue.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BIN, scalar, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def examples_env(database_url, tmp_path) -> dict[str, str]:
    """What the example handlers and enqueue.py read: the database and the output folder."""
    return {"DATABASE_URL": database_url, "PGSTACK_EXAMPLES_DIR": str(tmp_path)}


def enqueue_examples(env: dict[str, str]) -> dict[str, list[int]]:
    """Run examples/enqueue.py; job name -> ids, in the order it printed them."""
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "enqueue.py")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    jobs: dict[str, list[int]] = {}
    for line in out.splitlines():
        job_id, name = line.split()
        jobs.setdefault(name, []).append(int(job_id))
    return jobs


def final_states(db, ids: list[int]) -> dict[int, str] | None:
    """Each job's status, 'dead' when dead-lettered; None while any is pending or running."""
    rows = db.execute(
        "select j.id, j.status from dbos.job_queue j where j.id = any(%(ids)s)"
        " union all select d.id, 'dead' from dbos.failed_jobs d where d.id = any(%(ids)s)",
        {"ids": ids},
    ).fetchall()
    states = dict(rows)
    if len(states) < len(ids) or not set(states.values()) <= {"completed", "dead"}:
        return None
    return states


def test_every_example_job_completes_or_is_dead_lettered(start_worker, examples_env, db, tmp_path):
    worker = start_worker(str(EXAMPLES / "handlers.py"), "--retry-delay-ms", "50", env=examples_env)
    jobs = enqueue_examples(examples_env)
    assert sorted(jobs) == sorted(
        [
            "generate-invoice",
            "send-welcome-email",
            "import-csv",
            "send-order-confirmation",
            "flaky",
            "always-fails",
        ]
    )
    assert len(jobs["send-order-confirmation"]) == 2
    ids = [job_id for same_name in jobs.values() for job_id in same_name]
    states = wait_for(
        lambda: final_states(db, ids), timeout=30, message="every example job to finish"
    )
    assert states == {
        job_id: "dead" if name == "always-fails" else "completed"
        for name, same_name in jobs.items()
        for job_id in same_name
    }

    # flaky: two failures, then success on attempt 3; the last error is kept.
    attempt, error = db.execute(
        "select attempt, error from dbos.job_queue where id = %s", (jobs["flaky"][0],)
    ).fetchone()
    assert attempt == 3
    assert error.startswith("RuntimeError: try 2 fails on purpose")

    # always-fails: dead-lettered after max_attempts (3).
    attempt, max_attempts, error = db.execute(
        "select attempt, max_attempts, error from dbos.failed_jobs where id = %s",
        (jobs["always-fails"][0],),
    ).fetchone()
    assert (attempt, max_attempts) == (3, 3)
    assert error.startswith("RuntimeError: always fails")

    # generate-invoice: the "PDF" was uploaded and the order points at it.
    order_id, invoice_url = db.execute("select id, invoice_url from examples.orders").fetchone()
    assert invoice_url == f"/invoices/{order_id}.pdf"
    assert (tmp_path / "invoices" / f"{order_id}.pdf").read_bytes().startswith(b"%PDF")

    # import-csv: all rows, once.
    assert scalar(db, "select count(*) from examples.imported_rows") == 1000
    assert scalar(db, "select count(distinct line) from examples.imported_rows") == 1000

    # Welcome e-mail once; the order confirmation once, though enqueued twice.
    outbox = (tmp_path / "outbox.txt").read_text().splitlines()
    assert sorted(outbox) == sorted(
        [
            "to=user@example.com subject=Welcome!",
            f"to=order-{order_id} subject=Order {order_id} confirmed",
        ]
    )
    assert (
        scalar(db, "select count(*) from examples.email_log where order_id = %s", (order_id,)) == 1
    )

    # The dead letter can be replayed from the command line; it fails 3 more times.
    dead_id = jobs["always-fails"][0]
    replay = subprocess.run(
        [str(BIN / "pgstack"), "dbos", "retry", str(dead_id)],
        env={**os.environ, **examples_env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    new_id = int(replay.split()[-1])
    assert wait_for(lambda: final_states(db, [new_id]), message="the replay to die") == {
        new_id: "dead"
    }
    assert scalar(db, "select attempt from dbos.failed_jobs where id = %s", (new_id,)) == 3

    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()


def test_reporting_progress_logs_no_worker_error(start_worker, examples_env, dbos, db):
    worker = start_worker(str(EXAMPLES / "handlers.py"), "--retry-delay-ms", "50", env=examples_env)
    job_id = dbos.queue.enqueue("import-csv", {"file": "big.csv", "rows": 200_000})
    wait_for(lambda: final_states(db, [job_id]), message="the import to finish")
    assert dbos.queue.get_job(job_id).status == "completed"
    assert "heartbeater:" not in worker.log()
