"""`pgstack dbos status --watch`: one frame rendered from a real reading, and the loop."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest
from rich.console import Console

from conftest import BIN
from pgstack.cli.watch import StatusReading, age, read_status, render_status


def text_of(renderable) -> str:
    console = Console(file=io.StringIO(), width=110, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def row(text: str, name: str) -> list[str]:
    """The cells of the table row of ``name``."""
    for line in text.splitlines():
        cells = [c.strip() for c in re.split("[│┃]", line.strip().strip("│┃"))]
        if cells and cells[0] == name:
            return cells[1:]
    raise AssertionError(f"no row {name!r} in\n{text}")


def test_one_frame_from_the_database(db):
    db.execute(
        "select dbos.enqueue_many(array_fill('send-email'::text, array[3]),"
        " array_fill('{}'::jsonb, array[3]))"
    )
    # Due for a minute already: the oldest pending job.
    db.execute("select dbos.enqueue('send-email', '{}', now() - interval '61 seconds')")
    db.execute("select dbos.enqueue('resize', '{}')")
    db.execute("select dbos.enqueue('resize', '{}')")
    done = db.execute("select id, lease_token from dbos.claim_job('w', array['resize'], 2)")
    (first, token), (second, token2) = done.fetchall()
    db.execute("select dbos.complete_job(%s, 'w', %s)", (first, token))
    db.execute("select dbos.fail_job(%s, 'boom', 0, 'w', %s)", (second, token2))
    db.execute("select dbos.enqueue('doomed', '{}', max_attempts => 1)")
    doomed = db.execute("select id, lease_token from dbos.claim_job('w', array['doomed'])")
    job_id, lease = doomed.fetchone()
    db.execute("select dbos.fail_job(%s, 'for good', 0, 'w', %s)", (job_id, lease))

    reading = read_status(db)
    assert reading.completed_last_minute == 1
    assert reading.dead_last_minute == 1
    assert reading.oldest_wait_seconds is not None
    assert reading.oldest_wait_seconds >= 60
    text = text_of(render_status(reading, database="dbname=probe"))

    header = row(text, "job_name")
    assert header == ["pending", "running", "completed", "cancelled", "dead"]
    assert row(text, "send-email") == ["4", "0", "0", "0", "0"]
    assert row(text, "resize") == ["1", "0", "1", "0", "0"]
    assert row(text, "doomed") == ["0", "0", "0", "0", "1"]
    assert row(text, "(all)") == ["5", "0", "1", "0", "1"]
    assert "1 completed in the last minute (0.0/s), 1 dead-lettered" in text
    assert "oldest pending: due for 1 min" in text
    assert "dead letters: 1" in text
    assert "database: dbname=probe" in text
    assert "pgstack queue at " in text


def test_estimates_are_marked_and_rare_names_summed():
    at = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    reading = StatusReading(
        at=at,
        counts={
            "big": {"pending": 0, "running": 2, "completed": 120_000, "cancelled": 0, "dead": 0},
            None: {"pending": 0, "running": 0, "completed": 900, "cancelled": 0, "dead": 0},
        },
        estimated={("big", "completed"), (None, "completed")},
        completed_last_minute=600,
        oldest_due_at=at - timedelta(hours=3, minutes=5),
    )
    text = text_of(render_status(reading))
    assert row(text, "big") == ["0", "2", "~120,000", "0", "0"]
    assert row(text, "(other names)") == ["0", "0", "~900", "0", "0"]
    assert row(text, "(all)") == ["0", "2", "~120,900", "0", "0"]
    assert "600 completed in the last minute (10.0/s), 0 dead-lettered" in text
    assert "oldest pending: due for 3 h 5 min" in text
    assert "dead letters: 0" in text


def test_ages():
    assert age(3.24) == "3.2 s"
    assert age(250) == "4 min 10 s"
    assert age(7500) == "2 h 5 min"
    assert age(3 * 86400 + 4 * 3600) == "3 d 4 h"


def test_watch_refreshes_until_ctrl_c(database_url, db):
    """Piped, it prints frame after frame; a change shows in a later one; Ctrl-C ends it."""
    db.execute("select dbos.enqueue('send-email', '{}')")
    proc = subprocess.Popen(
        [str(BIN / "pgstack"), "dbos", "status", "--watch", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DATABASE_URL": database_url},
    )
    try:
        assert proc.stdout is not None
        frames: list[str] = []
        current: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the watch ended by itself"
            current.append(line)
            if line.startswith("database:"):  # the last line of a frame
                frames.append("".join(current))
                current = []
                if len(frames) == 1:
                    db.execute("select dbos.enqueue('send-email', '{}')")
                elif row(frames[-1], "send-email")[0] == "2":
                    break
        assert row(frames[0], "send-email")[0] == "1"
        assert row(frames[-1], "send-email")[0] == "2", frames[-1]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_watch_is_refused_with_json():
    result = subprocess.run(
        [str(BIN / "pgstack"), "dbos", "status", "--watch", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


@pytest.mark.parametrize("interval", ["0", "abc", "nan"])
def test_watch_interval_must_be_sensible(interval):
    result = subprocess.run(
        [str(BIN / "pgstack"), "dbos", "status", "--watch", "--interval", interval],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--interval" in result.stderr
