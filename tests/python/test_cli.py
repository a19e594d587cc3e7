"""The command lines, run for real in subprocesses: `pgstack` and the errors of `pgstack-run`.

Every failure must be one line on stderr and a non-zero exit, never a traceback, and
never show a password.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from conftest import BIN, scalar, wait_for
from pgstack.migrate import load_migrations
from pgstack.models import Job

WORKER = "cli-test"
PASSWORD = "s3cret"
PASSWORD_URLS = [
    f"postgresql://u:{PASSWORD}@127.0.0.1:1/x",
    f"host=127.0.0.1 port=1 user=u password={PASSWORD} dbname=x",
]
NO_SUCH_JOB = "987654321"
# For errors found before any connection: if one were made, it would fail differently.
UNUSED_URL = "postgresql://pgstack@127.0.0.1:1/unused"

# Every `pgstack` command that needs a database.
DATABASE_COMMANDS = [
    ["migrate"],
    ["migrate", "--print"],
    ["dbos", "status"],
    ["dbos", "status", "--json"],
    ["dbos", "list"],
    ["dbos", "list", "--status", "pending", "--json"],
    ["dbos", "dead"],
    ["dbos", "retry", "1"],
    ["dbos", "cancel", "1"],
    ["dbos", "enqueue", "x", "{}"],
]
QUEUE_COMMANDS = [c for c in DATABASE_COMMANDS if c[0] == "dbos"]


def run(
    *args: str, url: str | None = None, program: str = "pgstack", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a console script of the venv; DATABASE_URL is only what ``url`` says."""
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if url is not None:
        environment["DATABASE_URL"] = url
    environment.update(env or {})
    return subprocess.run(
        [str(BIN / program), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def ok(*args: str, url: str | None) -> str:
    result = run(*args, url=url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def error_line(result: subprocess.CompletedProcess[str], *fragments: str, code: int = 1) -> str:
    """The single line a failed command writes on stderr (and nothing on stdout)."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    assert ": error: " in lines[0]
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def table(text: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of an aligned table (cells split on whitespace)."""
    lines = text.splitlines()
    assert set(lines[1].replace(" ", "")) <= {"-"}, text
    rows = []
    for line in lines[2:]:
        if not line.strip():
            break
        rows.append(line.split())
    return lines[0].split(), rows


# -- putting jobs in states, through the queue's own functions -------------------------


def claim(db: psycopg.Connection, name: str) -> tuple[int, int]:
    row = db.execute(
        "select id, lease_token from dbos.claim_job(%s, array[%s], 1, 60)", (WORKER, name)
    ).fetchone()
    assert row is not None, f"no {name} job to claim"
    return row[0], row[1]


def complete(db: psycopg.Connection, name: str) -> int:
    job_id, token = claim(db, name)
    assert scalar(db, "select dbos.complete_job(%s, %s, %s)", (job_id, WORKER, token))
    return job_id


def fail(db: psycopg.Connection, name: str, retry_delay_ms: int = 3_600_000) -> tuple[int, str]:
    job_id, token = claim(db, name)
    outcome = scalar(
        db,
        "select dbos.fail_job(%s, 'boom', %s, %s, %s)",
        (job_id, retry_delay_ms, WORKER, token),
    )
    return job_id, outcome


def dead_letter(dbos, db: psycopg.Connection, name: str, payload: object) -> int:
    dbos.queue.enqueue(name, payload, max_attempts=1)
    job_id, outcome = fail(db, name)
    assert outcome == "dead"
    return job_id


# -- pgstack migrate ---------------------------------------------------------------------


def test_migrate_applies_each_migration_then_has_nothing_to_apply(empty_database_url):
    names = [m.file_name for m in load_migrations()]
    out = ok("migrate", "--database-url", empty_database_url, url=None)
    assert out.splitlines() == [f"applied {name}" for name in names]
    with psycopg.connect(empty_database_url) as conn:
        assert scalar(conn, "select count(*) from dbos.schema_migrations") == len(names)
        assert scalar(conn, "select to_regclass('dbos.job_queue')") is not None
    assert ok("migrate", url=empty_database_url) == "nothing to apply: the schema is up to date\n"
    assert ok("migrate", "--print", url=empty_database_url) == (
        "-- nothing to apply: the schema is up to date\n"
    )


def test_migrate_print_shows_the_sql_without_applying_it(empty_database_url):
    script = ok("migrate", "--print", url=empty_database_url)
    for migration in load_migrations():
        assert f"-- {migration.file_name}\nbegin;\n" in script
    assert "create table dbos.job_queue" in script
    assert script.count("insert into dbos.schema_migrations") == len(load_migrations())
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        assert scalar(conn, "select to_regnamespace('dbos')") is None
        conn.execute(script.encode())  # what a user's own migration tool would run
    assert ok("migrate", url=empty_database_url) == "nothing to apply: the schema is up to date\n"


def test_migrate_refuses_a_dbos_schema_it_did_not_create(empty_database_url):
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("create schema dbos")
    for args in (["migrate"], ["migrate", "--print"]):
        error_line(run(*args, url=empty_database_url), "not created by pgstack")


# -- pgstack dbos status -----------------------------------------------------------------


def test_status_counts_jobs_by_name_and_status_and_the_dead_letters(dbos, db, database_url):
    q = dbos.queue
    for _ in range(3):
        q.enqueue("email", {})
    complete(db, "email")
    q.enqueue("invoice", {})
    claim(db, "invoice")
    q.cancel_job(q.enqueue("invoice", {}))
    dead_letter(dbos, db, "doomed", {})
    zero = dict.fromkeys(["pending", "running", "completed", "cancelled", "dead"], 0)
    expected = {
        "doomed": {**zero, "dead": 1},
        "email": {**zero, "pending": 2, "completed": 1},
        "invoice": {**zero, "running": 1, "cancelled": 1},
    }

    assert json.loads(ok("dbos", "status", "--json", url=database_url)) == expected

    out = ok("dbos", "status", url=database_url)
    header, rows = table(out)
    assert header == ["job_name", "pending", "running", "completed", "cancelled", "dead"]
    counts = {row[0]: dict(zip(header[1:], map(int, row[1:]), strict=True)) for row in rows}
    assert counts == {
        **expected,
        "(all)": {"pending": 2, "running": 1, "completed": 1, "cancelled": 1, "dead": 1},
    }
    assert [row[0] for row in rows] == ["doomed", "email", "invoice", "(all)"]
    assert out.splitlines()[-1] == "dead letters: 1"


def test_status_of_an_empty_queue(database_url):
    assert json.loads(ok("dbos", "status", "--json", url=database_url)) == {}
    out = ok("dbos", "status", url=database_url)
    assert table(out)[1] == [["(all)", "0", "0", "0", "0", "0"]]
    assert out.splitlines()[-1] == "dead letters: 0"


# -- pgstack dbos list -------------------------------------------------------------------


def test_list_shows_the_newest_jobs_first_of_a_status_up_to_a_limit(dbos, db, database_url):
    ids = [dbos.queue.enqueue("resize", {"n": n}) for n in range(5)]
    done = complete(db, "resize")  # the oldest
    newest_first = [str(i) for i in reversed(ids)]

    header, rows = table(ok("dbos", "list", url=database_url))
    assert header[:4] == ["id", "job_name", "status", "attempt"]
    assert [row[0] for row in rows] == newest_first
    assert {row[0]: (row[2], row[3]) for row in rows}[str(done)] == ("completed", "1/3")

    _, rows = table(ok("dbos", "list", "--status", "pending", url=database_url))
    assert [row[0] for row in rows] == newest_first[:-1]
    assert {row[2] for row in rows} == {"pending"}

    _, rows = table(ok("dbos", "list", "--limit", "2", url=database_url))
    assert [row[0] for row in rows] == newest_first[:2]

    jobs = json.loads(ok("dbos", "list", "--status", "completed", "--json", url=database_url))
    assert [(j["id"], j["status"], j["attempt"], j["payload"]) for j in jobs] == [
        (done, "completed", 1, {"n": 0})
    ]
    assert set(jobs[0]) == {f.name for f in dataclasses.fields(Job)}
    assert datetime.fromisoformat(jobs[0]["completed_at"]).tzinfo is not None

    jobs = json.loads(
        ok("dbos", "list", "--status", "pending", "--limit", "1", "--json", url=database_url)
    )
    assert [j["id"] for j in jobs] == [ids[-1]]
    assert json.loads(ok("dbos", "list", "--status", "cancelled", "--json", url=database_url)) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "dead"], "argument --status: invalid choice: 'dead'"),
        (["--status", "PENDING"], "invalid choice"),
        (["--limit", "0"], "argument --limit: must be at least 1, got 0"),
        (["--limit", "ten"], "argument --limit: not a whole number: 'ten'"),
        (["--limit", str(2**31)], "argument --limit: must be at most 2147483647"),
    ],
)
def test_list_refuses_bad_options(args, message):
    error_line(run("dbos", "list", *args, url=UNUSED_URL), message, code=2)


# -- pgstack dbos dead -------------------------------------------------------------------


def test_dead_lists_dead_letters_newest_first(dbos, db, database_url):
    first = dead_letter(dbos, db, "export", {"report": "q1"})
    second = dead_letter(dbos, db, "export", {"report": "q2"})

    header, rows = table(ok("dbos", "dead", url=database_url))
    assert header[:3] == ["id", "job_name", "attempts"]
    assert [(row[0], row[1], row[2]) for row in rows] == [
        (str(second), "export", "1/1"),
        (str(first), "export", "1/1"),
    ]

    dead = json.loads(ok("dbos", "dead", "--limit", "1", "--json", url=database_url))
    assert len(dead) == 1
    assert dead[0]["id"] == second
    assert (dead[0]["payload"], dead[0]["error"]) == ({"report": "q2"}, "boom")
    assert (dead[0]["attempt"], dead[0]["max_attempts"]) == (1, 1)
    assert datetime.fromisoformat(dead[0]["failed_at"]) >= datetime.fromisoformat(
        dead[0]["original_created_at"]
    )
    error_line(run("dbos", "dead", "--limit", "-1", url=database_url), "--limit", code=2)


def test_dead_with_no_dead_letters(database_url):
    assert len(ok("dbos", "dead", url=database_url).splitlines()) == 2  # the header only
    assert json.loads(ok("dbos", "dead", "--json", url=database_url)) == []


# -- pgstack dbos retry ------------------------------------------------------------------


def test_retry_replays_a_dead_letter_as_a_new_job(dbos, db, database_url):
    dead_id = dead_letter(dbos, db, "charge", {"order": 456})
    out = ok("dbos", "retry", str(dead_id), url=database_url)
    match = re.fullmatch(rf"dead-letter job {dead_id} replayed as job (\d+)\n", out)
    assert match, out
    new_id = int(match[1])
    assert new_id != dead_id
    job = dbos.queue.get_job(new_id)
    assert job is not None
    assert (job.job_name, job.payload, job.status) == ("charge", {"order": 456}, "pending")
    assert (job.attempt, job.max_attempts) == (0, 1)
    assert scalar(db, "select count(*) from dbos.failed_jobs") == 0
    # Replayed once: the dead letter is gone.
    error_line(run("dbos", "retry", str(dead_id), url=database_url), f"job {dead_id} not found")


def test_retry_makes_a_pending_job_waiting_for_its_retry_due_now(dbos, db, database_url):
    job_id = dbos.queue.enqueue("sync", {})
    assert fail(db, "sync", retry_delay_ms=3_600_000) == (job_id, "pending")
    assert scalar(
        db,
        "select scheduled_for > now() + interval '59 minutes' from dbos.job_queue where id = %s",
        (job_id,),
    )

    assert ok("dbos", "retry", str(job_id), url=database_url) == f"job {job_id} is due now\n"
    job = dbos.queue.get_job(job_id)
    assert job is not None
    assert (job.status, job.attempt, job.error) == ("pending", 1, "boom")
    assert scalar(db, "select scheduled_for <= now() from dbos.job_queue where id = %s", (job_id,))

    later = dbos.queue.enqueue("sync", {}, scheduled_for=timedelta(days=1))
    assert ok("dbos", "retry", str(later), url=database_url) == f"job {later} is due now\n"
    assert scalar(db, "select scheduled_for <= now() from dbos.job_queue where id = %s", (later,))


def test_retry_refuses_running_finished_and_unknown_jobs(dbos, db, database_url):
    dbos.queue.enqueue("a", {})
    running, _ = claim(db, "a")
    dbos.queue.enqueue("b", {})
    completed = complete(db, "b")
    for job_id, status in ((running, "running"), (completed, "completed")):
        error_line(
            run("dbos", "retry", str(job_id), url=database_url),
            f"job {job_id} is {status}: only a pending or dead-lettered job can be retried",
        )
    error_line(run("dbos", "retry", NO_SUCH_JOB, url=database_url), f"job {NO_SUCH_JOB} not found")
    assert dbos.queue.get_job(completed).status == "completed"


# -- pgstack dbos cancel -----------------------------------------------------------------


def test_cancel_a_pending_job_and_the_jobs_that_have_nothing_to_cancel(dbos, db, database_url):
    q = dbos.queue
    pending = q.enqueue("report", {})
    assert ok("dbos", "cancel", str(pending), url=database_url) == f"job {pending} cancelled\n"
    job = q.get_job(pending)
    assert job.status == "cancelled"
    assert job.completed_at is not None
    assert ok("dbos", "cancel", str(pending), url=database_url) == (
        f"job {pending} is already cancelled: nothing to cancel\n"
    )

    q.enqueue("report", {})
    completed = complete(db, "report")
    assert ok("dbos", "cancel", str(completed), url=database_url) == (
        f"job {completed} is already completed: nothing to cancel\n"
    )
    assert q.get_job(completed).status == "completed"

    dead = dead_letter(dbos, db, "doomed", {})
    assert ok("dbos", "cancel", str(dead), url=database_url) == (
        f"job {dead} is already dead: nothing to cancel\n"
    )
    assert scalar(db, "select count(*) from dbos.failed_jobs where id = %s", (dead,)) == 1

    error_line(run("dbos", "cancel", NO_SUCH_JOB, url=database_url), f"job {NO_SUCH_JOB} not found")


def test_cancel_a_running_job_asks_its_worker_to_stop_it(
    start_worker, ledger, dbos, db, database_url
):
    start_worker("ledger.py", env=ledger)
    job_id = dbos.queue.enqueue("slow", {"key": "long", "seconds": 60})
    wait_for(
        lambda: scalar(db, "select count(*) from ledger where job_key = 'long'"),
        message="the slow job to start",
    )
    assert ok("dbos", "cancel", str(job_id), url=database_url) == (
        f"job {job_id} is running: cancel requested, its worker stops it\n"
    )
    wait_for(
        lambda: dbos.queue.get_job(job_id).status == "cancelled",
        timeout=15,
        message="the worker to stop the cancelled job",
    )
    assert scalar(db, "select count(*) from ledger where job_key = 'long' and event = 'ran'") == 0


# -- pgstack dbos enqueue ----------------------------------------------------------------


def enqueued(dbos, database_url: str, *args: str) -> Job:
    out = ok("dbos", "enqueue", *args, url=database_url)
    assert re.fullmatch(r"\d+\n", out), out
    job = dbos.queue.get_job(int(out))
    assert job is not None
    return job


def test_enqueue_prints_the_new_id(dbos, db, database_url):
    job = enqueued(dbos, database_url, "send-welcome-email", '{"email": "u@example.com"}')
    assert (job.job_name, job.payload) == ("send-welcome-email", {"email": "u@example.com"})
    assert (job.status, job.attempt, job.max_attempts) == ("pending", 0, 3)
    assert scalar(db, "select scheduled_for <= now() from dbos.job_queue where id = %s", (job.id,))
    assert enqueued(dbos, database_url, "no-payload").payload == {}
    for text, value in [("[1, 2]", [1, 2]), ('"text"', "text"), ("null", None), ("3.5", 3.5)]:
        assert enqueued(dbos, database_url, "any-json", text).payload == value


def test_enqueue_with_a_delay_a_time_and_max_attempts(dbos, db, database_url):
    job = enqueued(dbos, database_url, "send-reminder", '{"userId": "123"}', "--delay", "3600")
    delay = scalar(db, "select scheduled_for - now() from dbos.job_queue where id = %s", (job.id,))
    assert timedelta(minutes=59) < delay <= timedelta(hours=1)

    at = datetime(2031, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    job = enqueued(dbos, database_url, "send-reminder", "{}", "--at", at.isoformat())
    assert job.scheduled_for == at

    job = enqueued(
        dbos, database_url, "critical-payment", '{"orderId": "456"}', "--max-attempts", "10"
    )
    assert job.max_attempts == 10


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["x", "{bad"], "payload is not valid JSON", 1),
        (["x", "NaN"], "is not JSON-serialisable", 1),
        (["", "{}"], "job_name must be 1 to 255 characters", 1),
        (["x", "{}", "--at", "2031-01-02T03:04:05"], "argument --at: give a timezone", 2),
        (["x", "{}", "--at", "tomorrow"], "argument --at: not an ISO time", 2),
        (["x", "{}", "--at", "9999-12-31T23:00:00-14:00"], "argument --at: out of range", 2),
        (["x", "{}", "--delay", "soon"], "argument --delay: not a number of seconds", 2),
        (["x", "{}", "--delay", "-1"], "argument --delay: must be 0 or more seconds", 2),
        (["x", "{}", "--delay", "nan"], "argument --delay", 2),
        (["x", "{}", "--delay", "inf"], "argument --delay", 2),
        (["x", "{}", "--delay", "1e300"], "argument --delay: too far in the future", 2),
        (["x", "{}", "--delay", "1", "--at", "2031-01-01T00:00:00+00:00"], "not allowed with", 2),
        (["x", "{}", "--max-attempts", "0"], "argument --max-attempts: must be at least 1", 2),
        (["x", "{}", "extra"], "unrecognized arguments: extra", 2),
        ([], "the following arguments are required: job_name", 2),
    ],
)
def test_enqueue_refuses_bad_input_and_writes_nothing(request, args, message, code):
    if code == 2:  # a usage error, refused before connecting
        error_line(run("dbos", "enqueue", *args, url=UNUSED_URL), message, code=code)
        return
    database_url = request.getfixturevalue("database_url")
    error_line(run("dbos", "enqueue", *args, url=database_url), message, code=code)
    with psycopg.connect(database_url) as conn:
        assert scalar(conn, "select count(*) from dbos.job_queue") == 0


# -- usage and connection errors ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: command"),
        (["dbos"], "the following arguments are required: action"),
        (["serve"], "invalid choice: 'serve'"),
        (["dbos", "retry"], "give a job id, or --name NAME --all"),
        (["dbos", "retry", "abc"], "a job id is a whole number"),
        (["dbos", "cancel", "0"], "a job id is a whole number from 1"),
        (["dbos", "cancel", str(2**63)], "a job id is a whole number from 1"),
        (["dbos", "status", "--verbose"], "unrecognized arguments: --verbose"),
    ],
)
def test_usage_errors(args, message):
    error_line(run(*args, url=UNUSED_URL), message, code=2)


@pytest.mark.parametrize("args", [[], ["migrate"], ["dbos"], ["dbos", "enqueue"]])
def test_help(args):
    result = run(*args, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: pgstack")


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=" ".join)
def test_without_a_database_url_says_what_to_set(args):
    error_line(run(*args), "set DATABASE_URL", "--database-url")


# Each command once, the password URL given each way (in DATABASE_URL or --database-url,
# as a URL or as keywords): the server is unreachable, the message says so, without it.
UNREACHABLE = [
    (args, PASSWORD_URLS[i % 2], ("env", "flag")[i // 2 % 2])
    for i, args in enumerate(DATABASE_COMMANDS)
]


@pytest.mark.parametrize(
    ("args", "url", "given"), UNREACHABLE, ids=[" ".join(a) for a, _, _ in UNREACHABLE]
)
def test_an_unreachable_database_is_named_without_its_password(args, url, given):
    result = run(*args, url=url) if given == "env" else run(*args, "--database-url", url)
    error_line(result, "cannot reach the database", '"127.0.0.1", port 1')
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "url",
    [f"postgresql://u:{PASSWORD}@[::1/x", f"postgresql://u:{PASSWORD}@h/x?nonsense=1"],
    ids=["bad-host", "bad-option"],
)
def test_an_invalid_url_is_named_without_its_password(url):
    for program in ("pgstack", "pgstack-run"):
        args = ["dbos", "status"] if program == "pgstack" else ["handlers.py"]
        result = run(*args, url=url, program=program)
        error_line(result, "invalid database URL")
        assert PASSWORD not in result.stderr


@pytest.mark.parametrize("args", QUEUE_COMMANDS, ids=" ".join)
def test_a_database_without_the_schema_says_to_migrate(empty_database_url, args):
    error_line(run(*args, url=empty_database_url), "run `pgstack migrate`")


def test_a_reader_that_goes_away_ends_the_output_quietly(dbos, database_url):
    dbos.queue.enqueue_many("bulk", [{"n": n} for n in range(3000)])
    env = {**os.environ, "DATABASE_URL": database_url}
    with subprocess.Popen(
        [str(BIN / "pgstack"), "dbos", "list", "--limit", "3000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    ) as process:
        assert process.stdout.readline().startswith("id")
        process.stdout.close()  # like `| head -1`
        stderr = process.stderr.read()
        code = process.wait(30)
    assert stderr == ""
    assert code == 141


# -- pgstack-run -------------------------------------------------------------------------


@pytest.fixture
def handlers_file(tmp_path: Path) -> Path:
    path = tmp_path / "handlers.py"
    path.write_text('import pgstack\n\n@pgstack.job("noop")\ndef noop(payload):\n    pass\n')
    return path


def run_worker(*args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    return run(*args, url=url, program="pgstack-run")


def test_run_a_missing_file_or_module(tmp_path):
    error_line(run_worker(str(tmp_path / "missing.py"), url=UNUSED_URL), "no such handlers file")
    error_line(run_worker("no_such.module", url=UNUSED_URL), "no such file or module: no_such")
    error_line(run_worker(str(tmp_path), url=UNUSED_URL), "is a directory")


def test_run_a_file_without_handlers(tmp_path):
    empty = tmp_path / "empty.py"
    empty.write_text("ANSWER = 42\n")
    error_line(run_worker(str(empty), url=UNUSED_URL), "no handlers registered", "@pgstack.job")


def test_run_against_a_database_without_the_schema(empty_database_url, handlers_file):
    error_line(
        run_worker(str(handlers_file), url=empty_database_url),
        "the database has no pgstack schema: run `pgstack migrate`",
    )


def test_run_without_a_database_or_with_an_unreachable_one(handlers_file):
    error_line(run_worker(str(handlers_file)), "set DATABASE_URL")
    for url in PASSWORD_URLS:
        result = run_worker(str(handlers_file), "--database-url", url)
        error_line(result, "cannot use the database", "port=1")
        assert PASSWORD not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--keep", "soon"], "argument --keep: not a duration"),
        (["--keep=-1h"], "argument --keep: not a duration"),
        (["--keep", "5w"], "argument --keep: not a duration"),
        (["--concurrency", "0"], "argument --concurrency: must be at least 1"),
        (["--retry-delay-ms", "-1"], "argument --retry-delay-ms: must be at least 0"),
        (["--poll-interval", "fast"], "argument --poll-interval: not a number"),
        (["--log-level", "loud"], "argument --log-level: invalid choice"),
    ],
)
def test_run_refuses_bad_options(handlers_file, args, message):
    error_line(run_worker(str(handlers_file), *args, url=UNUSED_URL), message, code=2)


def test_run_without_targets():
    error_line(run_worker(url=UNUSED_URL), "the following arguments are required", code=2)


# -- priorities, queues, unique jobs, schedules, bulk operations -------------------------


def test_enqueue_with_priority_queue_dedup_key_and_timeout(dbos, database_url):
    first = ok(
        "dbos",
        "enqueue",
        "report",
        "--priority",
        "7",
        "--queue",
        "reports",
        "--dedup-key",
        "daily",
        "--timeout",
        "30",
        url=database_url,
    )
    again = ok("dbos", "enqueue", "report", "--dedup-key", "daily", url=database_url)
    assert first == again
    job = dbos.queue.get_job(int(first))
    assert (job.priority, job.queue_name, job.dedup_key, job.timeout_seconds) == (
        7,
        "reports",
        "daily",
        30,
    )


def test_retry_and_cancel_all_of_a_name(dbos, db, database_url):
    for n in range(3):
        dead_letter(dbos, db, "doomed", {"n": n})
    out = ok("dbos", "retry", "--name", "doomed", "--all", url=database_url)
    assert out.startswith("replayed 3 dead-letter job(s) of doomed as job(s) ")
    assert dbos.queue.list_dead_letter_jobs() == []
    assert ok("dbos", "cancel", "--name", "doomed", "--all", url=database_url) == (
        "cancelled 3 pending job(s) of doomed\n"
    )
    error_line(run("dbos", "retry", "--name", "doomed", url=database_url), "--all", code=2)
    error_line(run("dbos", "cancel", url=database_url), "job id", code=2)


def test_limit_prune_and_schedules(dbos, db, database_url):
    assert ok("dbos", "limit", "emails", "1", url=database_url) == (
        "queue emails: at most 1 running job(s)\n"
    )
    assert scalar(db, "select concurrency_limit from dbos.queues where queue_name = 'emails'") == 1
    assert ok("dbos", "limit", "emails", "none", url=database_url) == "queue emails: no limit\n"
    error_line(run("dbos", "limit", "emails", "-1", url=database_url), "0 or more", code=2)

    dbos.queue.enqueue("x", {})
    complete(db, "x")
    db.execute("update dbos.job_queue set completed_at = now() - interval '8 days'")
    assert (
        ok("dbos", "prune", "--older-than", "7d", url=database_url) == "pruned 1 finished job(s)\n"
    )

    out = ok(
        "dbos",
        "schedule",
        "nightly",
        "0 3 * * *",
        "report",
        '{"kind": "nightly"}',
        url=database_url,
    )
    assert out.startswith("schedule nightly: next run at ")
    (row,) = json.loads(ok("dbos", "schedules", "--json", url=database_url))
    assert (row["schedule_name"], row["cron"], row["job_name"], row["payload"]) == (
        "nightly",
        "0 3 * * *",
        "report",
        {"kind": "nightly"},
    )
    error_line(run("dbos", "schedule", "bad", "61 * * * *", url=database_url), "minute field")
    assert ok("dbos", "unschedule", "nightly", url=database_url) == "schedule nightly removed\n"
    error_line(run("dbos", "unschedule", "nightly", url=database_url), "no schedule named")
