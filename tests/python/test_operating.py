"""Operating a worker: Prometheus metrics over HTTP, --until-empty, the live summary."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import BIN, scalar, wait_for
from pgstack.worker.stats import WorkerStats
from pgstack.worker.summary import summary_line

HANDLERS = """
import time
import pgstack

@pgstack.job("ok")
def ok(payload):
    time.sleep(payload.get("sleep", 0))

@pgstack.job("bad")
async def bad(payload):
    raise RuntimeError("bad on purpose")

@pgstack.job("flaky")
def flaky(payload):
    import psycopg, os
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        tries = conn.execute(
            "insert into tries values (%s, 1) on conflict (key)"
            " do update set n = tries.n + 1 returning n", (payload["key"],)
        ).fetchone()[0]
    if tries == 1:
        raise RuntimeError("first try fails")
"""


@pytest.fixture
def handlers_file(tmp_path: Path) -> Path:
    path = tmp_path / "operating_handlers.py"
    path.write_text(HANDLERS)
    return path


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def metrics_port(worker) -> int:
    worker.wait_until_logged("metrics on http://")
    match = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", worker.log())
    assert match, worker.log()
    return int(match.group(1))


def test_metrics_endpoint_after_a_few_jobs(start_worker, handlers_file, db):
    worker = start_worker(
        str(handlers_file),
        "--metrics-port",
        "0",
        "--metrics-host",
        "127.0.0.1",
        "--retry-delay-ms",
        "20",
    )
    port = metrics_port(worker)
    ok_ids = [scalar(db, "select dbos.enqueue('ok', '{\"sleep\": 0.01}')") for _ in range(5)]
    bad_id = scalar(db, "select dbos.enqueue('bad', '{}', max_attempts => 2)")
    # Jobs no worker here serves: the queue's depth and its oldest wait, from the database.
    for _ in range(3):
        db.execute("select dbos.enqueue('unserved', '{}', now() - interval '30 seconds')")
    db.execute("select dbos.enqueue('unserved', '{}', now() + interval '1 hour')")
    wait_for(
        lambda: (
            scalar(
                db,
                "select count(*) = 5 from dbos.job_queue"
                " where id = any(%s) and status = 'completed'",
                (ok_ids,),
            )
            and scalar(db, "select count(*) = 1 from dbos.failed_jobs where id = %s", (bad_id,))
        ),
        timeout=30,
        message="the jobs to finish",
    )

    def finished_in_metrics():
        samples = scrape(port)
        done = samples.get(("pgstack_jobs_completed_total", (("job_name", "ok"),)))
        dead = samples.get(("pgstack_jobs_dead_total", (("job_name", "bad"),)))
        return samples if done == 5 and dead == 1 else None

    samples = wait_for(finished_in_metrics, timeout=10, message="the metrics to count them")

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("pgstack_jobs_started_total", job_name="ok") == 5
    assert value("pgstack_jobs_started_total", job_name="bad") == 2
    assert value("pgstack_jobs_failed_total", job_name="bad") == 2
    assert ("pgstack_jobs_completed_total", (("job_name", "bad"),)) not in samples
    assert value("pgstack_job_duration_seconds_count", job_name="ok") == 5
    assert value("pgstack_job_duration_seconds_sum", job_name="ok") >= 0.05
    assert value("pgstack_job_duration_seconds_bucket", job_name="ok", le="0.005") == 0
    assert value("pgstack_job_duration_seconds_bucket", job_name="ok", le="+Inf") == 5
    assert value("pgstack_job_duration_seconds_count", job_name="bad") == 2
    assert value("pgstack_worker_running_jobs") == 0
    assert value("pgstack_queue_jobs", job_name="unserved", status="pending") == 4
    assert value("pgstack_queue_jobs", job_name="unserved", status="running") == 0
    assert 30 <= value("pgstack_queue_oldest_pending_age_seconds", job_name="unserved") < 120
    # Finished names have no depth rows; no *_created series.
    assert ("pgstack_queue_jobs", (("job_name", "ok"), ("status", "pending"))) not in samples
    assert not any(name.endswith("_created") for name, _ in samples)


def test_metrics_port_taken_is_one_line_of_error(database_url, handlers_file):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                str(BIN / "pgstack-run"),
                str(handlers_file),
                "--metrics-port",
                str(port),
                "--metrics-host",
                "127.0.0.1",
                "--database-url",
                database_url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"pgstack-run: error: cannot serve metrics on 127.0.0.1:{port}" in lines[0]


def test_until_empty_waits_for_retries_then_exits(database_url, db, handlers_file):
    db.execute("create table tries (key text primary key, n int not null)")
    ids = [
        scalar(db, "select dbos.enqueue('flaky', %s)", (f'{{"key": "k{n}"}}',)) for n in range(3)
    ]
    ids.append(scalar(db, "select dbos.enqueue('ok', '{}')"))
    began = time.monotonic()
    result = subprocess.run(
        [
            str(BIN / "pgstack-run"),
            str(handlers_file),
            "--until-empty",
            # The retries are due a second later: the worker must wait for them.
            "--retry-delay-ms",
            "1000",
        ],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    took = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert "nothing left to run: stopping (--until-empty)" in result.stderr
    statuses = db.execute(
        "select status, count(*) from dbos.job_queue where id = any(%s) group by 1", (ids,)
    ).fetchall()
    assert statuses == [("completed", 4)]
    assert scalar(db, "select sum(n) from tries") == 6
    assert 1.0 <= took < 30


def test_until_empty_with_nothing_to_do_exits_at_once(database_url, handlers_file):
    began = time.monotonic()
    result = subprocess.run(
        [str(BIN / "pgstack-run"), str(handlers_file), "--until-empty"],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - began < 15


def test_summary_line():
    stats = WorkerStats(completed=120, retried=4, dead=1, cancelled=0)
    assert summary_line(stats, 3, 45.25) == (
        "pgstack-run: 3 running | 120 done | 5 failed (1 dead) | 45.2 jobs/s"
    )
    assert summary_line(WorkerStats(cancelled=2), 0, 0) == (
        "pgstack-run: 0 running | 0 done | 0 failed | 2 cancelled | 0.0 jobs/s"
    )


def read_pty(fd: int, until: str, timeout: float) -> str:
    out = b""
    deadline = time.monotonic() + timeout
    while until.encode() not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            out += chunk
    return out.decode(errors="replace")


def test_live_summary_on_a_terminal_plain_lines_elsewhere(database_url, db, handlers_file):
    for _ in range(20):
        db.execute("select dbos.enqueue('ok', '{}')")
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [str(BIN / "pgstack-run"), str(handlers_file), "--until-empty"],
            env={**os.environ, "DATABASE_URL": database_url, "TERM": "xterm"},
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=follower,
        )
        os.close(follower)
        follower = -1
        screen = read_pty(leader, "stopped", timeout=30)
        assert proc.wait(30) == 0, screen
        screen += read_pty(leader, "\n", timeout=1)
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    # The line is redrawn in place (carriage return, erase line) and ends counting all 20.
    assert "\r\x1b[Kpgstack-run: " in screen
    assert "| 20 done | 0 failed |" in screen
    assert "jobs/s" in screen
    # A log line is printed above the summary line, not glued to it.
    assert re.search(r"\r\x1b\[K\S+ \S+ INFO pgstack.worker: worker \S+ stopped\r?\n", screen)

    # Not a terminal: plain log lines, no control characters.
    db.execute("select dbos.enqueue('ok', '{}')")
    result = subprocess.run(
        [str(BIN / "pgstack-run"), str(handlers_file), "--until-empty"],
        env={**os.environ, "DATABASE_URL": database_url, "TERM": "xterm"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stderr
    assert "\r" not in result.stderr
    assert "completed in" in result.stderr


@pytest.mark.parametrize(
    ("blocked", "program", "args", "extra"),
    [
        ("prometheus_client", "pgstack.cli.run", ["--metrics-port", "9108"], "metrics"),
        ("rich", "pgstack.cli.main", ["dbos", "status", "--watch"], "watch"),
    ],
)
def test_without_the_extra_one_line_says_which(
    database_url, handlers_file, blocked, program, args, extra
):
    if program == "pgstack.cli.run":
        args = [str(handlers_file), *args]
    code = (
        f"import sys\nsys.modules[{blocked!r}] = None\n"
        f"from {program} import main\nsys.exit(main({args!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f'pip install "pgstack[{extra}]"' in lines[0]
