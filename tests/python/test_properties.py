"""Property-based tests: random input to the SQL API, the Python client and the CLI.

Every call either succeeds or fails with a clear error: a proper SQLSTATE (class 22,
never XX000) from SQL, a pgstack exception from the client, one line on stderr from the
CLI (never a traceback). A failed call writes nothing, and the tables' invariants hold
after every step. A state machine drives the life of jobs (enqueue, claim, complete,
fail, cancel, rescue, release, heartbeat, progress) against a model of what each call
must do.

One database per module (cloned from the session's template): the invariants hold at
all times, so examples may share it; each example uses job names of its own.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)
from psycopg.types.json import Jsonb

from conftest import _create_database, _drop_database, scalar
from pgstack.cli.main import main as cli_main
from pgstack.client import JobQueue, JobSpec
from pgstack.connections import SingleConnection
from pgstack.errors import InvalidArgument, PayloadError, PgStackError

SETTINGS = settings(
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

INVARIANTS = {
    "in both job_queue and failed_jobs": (
        "select count(*) from dbos.job_queue j join dbos.failed_jobs d using (id)"
    ),
    "attempt > max_attempts": "select count(*) from dbos.job_queue where attempt > max_attempts",
    "dead letter with attempt > max_attempts": (
        "select count(*) from dbos.failed_jobs where attempt > max_attempts"
    ),
    "status outside its set": (
        "select count(*) from dbos.job_queue "
        "where status not in ('pending', 'running', 'completed', 'cancelled')"
    ),
    "running without a lease or holder": (
        "select count(*) from dbos.job_queue "
        "where status = 'running' and (lease_expires_at is null or locked_by is null)"
    ),
    "a lease on a job not running": (
        "select count(*) from dbos.job_queue "
        "where status <> 'running' and lease_expires_at is not null"
    ),
    "finished without completed_at, or the reverse": (
        "select count(*) from dbos.job_queue "
        "where (status in ('completed', 'cancelled')) <> (completed_at is not null)"
    ),
}


def check_invariants(conn: psycopg.Connection[Any]) -> None:
    broken = {what: n for what, q in INVARIANTS.items() if (n := scalar(conn, q))}
    assert not broken, broken


def rows(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    return (
        scalar(conn, "select count(*) from dbos.job_queue"),
        scalar(conn, "select count(*) from dbos.failed_jobs"),
    )


def assert_clear_sql_error(error: psycopg.Error) -> None:
    """A refusal the caller can act on: a data exception (class 22) with a message."""
    assert error.sqlstate is not None, f"no SQLSTATE: {error!r}"
    assert error.sqlstate != "XX000", f"internal error: {error}"
    assert error.sqlstate.startswith("22"), f"SQLSTATE {error.sqlstate}: {error}"
    assert error.diag.message_primary, error


@pytest.fixture(scope="module")
def prop_url(template_database: str) -> Iterator[str]:
    name, url = _create_database(template_database)
    try:
        yield url
    finally:
        _drop_database(name)


@pytest.fixture(scope="module")
def conn(prop_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(prop_url, autocommit=True) as connection:
        yield connection


# -- strategies ------------------------------------------------------------------------

# Text as users send it: any code point but surrogates (which UTF-8 cannot carry); NUL
# is drawn too where the value is JSON (PostgreSQL refuses \u0000 in jsonb).
plain_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
any_text = st.text(st.characters(blacklist_categories=("Cs",)))
names = st.one_of(
    st.sampled_from(["a", "send-email", "", " ", "x" * 255, "x" * 256, "ü" * 255, "ü" * 256]),
    plain_text,
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)
int4 = st.one_of(
    st.integers(min_value=-3, max_value=12),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.sampled_from([2**31, -(2**31) - 1, 2**63]),
)
times = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.just(timezone.utc),
    ).map(lambda t: t.isoformat()),
    st.sampled_from(["infinity", "-infinity", "epoch", "now"]),
)


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    return False


# -- SQL: enqueue and enqueue_many ------------------------------------------------------


@SETTINGS
@given(
    job_name=names,
    payload=json_values,
    scheduled_for=times,
    max_attempts=st.one_of(st.none(), int4),
    priority=st.one_of(st.none(), int4),
    queue_name=st.one_of(st.none(), names),
    dedup_key=st.one_of(st.none(), names),
    timeout_seconds=st.one_of(st.none(), int4),
)
def test_sql_enqueue_succeeds_or_refuses_clearly(
    conn, job_name, payload, scheduled_for, max_attempts, priority, queue_name, dedup_key,
    timeout_seconds,
):  # fmt: skip
    before = rows(conn)
    error: psycopg.Error | None = None
    try:
        job_id = scalar(
            conn,
            "select dbos.enqueue(%s, %s, %s::timestamptz, %s::int, %s::int, %s, %s, %s::int)",
            (
                job_name, Jsonb(payload), scheduled_for, max_attempts, priority, queue_name,
                dedup_key, timeout_seconds,
            ),
        )  # fmt: skip
    except psycopg.Error as caught:
        error = caught
    if error is not None:
        assert_clear_sql_error(error)
        assert rows(conn) == before, "a refused enqueue wrote something"
        # What was refused was really bad.
        assert (
            has_nul(payload)
            or not 1 <= len(job_name) <= 255
            or (queue_name is not None and not 1 <= len(queue_name) <= 255)
            or (dedup_key is not None and not 1 <= len(dedup_key) <= 255)
            or (max_attempts is not None and max_attempts < 1)
            or (timeout_seconds is not None and timeout_seconds < 1)
            or any(v is not None and not -(2**31) <= v < 2**31
                   for v in (max_attempts, priority, timeout_seconds))
            or scheduled_for in ("infinity", "-infinity")
        ), f"refused a valid job: {error}"  # fmt: skip
    else:
        # jsonb keeps numbers as numerics: compare as jsonb, not as Python floats.
        job = conn.execute(
            "select job_name, payload = %s, status, attempt, max_attempts, priority, queue_name "
            "from dbos.job_queue where id = %s",
            (Jsonb(payload), job_id),
        ).fetchone()
        assert job is not None
        assert job[0] == job_name
        assert job[1] is True
        assert job[2:4] == ("pending", 0)
        assert job[4] == (3 if max_attempts is None else max_attempts)
        assert job[5] == (priority or 0)
        assert job[6] == (queue_name or "default")
        # Leave no pending job behind for other examples' dedup keys.
        conn.execute("select dbos.cancel_job(%s)", (job_id,))
    check_invariants(conn)


@SETTINGS
@given(
    jobs=st.lists(st.tuples(names, json_values, st.one_of(st.none(), int4)), max_size=6),
    extra_payloads=st.integers(min_value=-1, max_value=1),
    delays=st.one_of(st.none(), st.lists(times, max_size=7)),
)
def test_sql_enqueue_many_all_or_nothing(conn, jobs, extra_payloads, delays):
    job_names = [name for name, _, _ in jobs]
    payloads = [Jsonb(p) for _, p, _ in jobs]
    if extra_payloads > 0:
        payloads.append(Jsonb({}))
    elif extra_payloads < 0 and payloads:
        payloads.pop()
    attempts = [a for _, _, a in jobs]
    before = rows(conn)
    try:
        ids = [
            r[0]
            for r in conn.execute(
                "select dbos.enqueue_many(%s::text[], %s::jsonb[], %s::timestamptz[], %s::int[])",
                (job_names, payloads, delays, attempts),
            )
        ]
    except psycopg.Error as error:
        assert_clear_sql_error(error)
        assert rows(conn) == before, "a refused enqueue_many wrote some of its jobs"
    else:
        assert len(ids) == len(jobs)
        assert ids == sorted(ids), "ids are not in the order given"
        stored = dict(
            conn.execute(
                "select id, job_name from dbos.job_queue where id = any(%s)", (ids,)
            ).fetchall()
        )
        assert [stored[i] for i in ids] == job_names
        conn.execute("select dbos.cancel_job(i) from unnest(%s::bigint[]) as i", (ids,))
    check_invariants(conn)


# -- SQL: fail_job and report_progress on a held job -----------------------------------


@SETTINGS
@given(
    error_text=st.one_of(st.none(), plain_text, st.just("e" * 100_000)),
    retry_delay_ms=st.one_of(st.none(), int4),
    max_retry_delay_ms=st.one_of(st.none(), int4),
    jitter=st.one_of(st.none(), st.floats()),
    right_worker=st.booleans(),
    right_token=st.sampled_from([True, False, None]),
    max_attempts=st.integers(min_value=1, max_value=3),
    permanent=st.one_of(st.none(), st.booleans()),
)
def test_sql_fail_job(
    conn, error_text, retry_delay_ms, max_attempts, max_retry_delay_ms, jitter, right_worker,
    right_token, permanent,
):  # fmt: skip
    name = f"prop-fail-{uuid.uuid4().hex[:8]}"
    job_id = scalar(conn, "select dbos.enqueue(%s, max_attempts => %s)", (name, max_attempts))
    token = conn.execute(
        "select lease_token from dbos.claim_job('w-prop', array[%s], 1, 60)", (name,)
    ).fetchone()[0]
    worker = "w-prop" if right_worker else "w-other"
    lease_token = None if right_token is None else (token if right_token else token + 1)
    before = rows(conn)
    error: psycopg.Error | None = None
    try:
        outcome = scalar(
            conn,
            "select dbos.fail_job(%s, %s, %s::int, %s, %s, %s::int, %s::float8, %s)",
            (
                job_id, error_text, retry_delay_ms, worker, lease_token, max_retry_delay_ms,
                jitter, permanent,
            ),
        )  # fmt: skip
    except psycopg.Error as caught:
        error = caught
    if error is not None:
        assert_clear_sql_error(error)
        assert rows(conn) == before
        assert (
            (retry_delay_ms is not None and not 0 <= retry_delay_ms < 2**31)
            or (max_retry_delay_ms is not None and not 0 <= max_retry_delay_ms < 2**31)
            or (jitter is not None and not 0 <= jitter <= 1)
        ), f"refused a valid failure: {error}"
        outcome = "refused"
    state = conn.execute(
        "select status, attempt, error, scheduled_for >= started_at "
        "from dbos.job_queue where id = %s",
        (job_id,),
    ).fetchone()
    dead = conn.execute(
        "select attempt, error from dbos.failed_jobs where id = %s", (job_id,)
    ).fetchone()
    if outcome == "refused":
        assert state is not None
        assert state[0] == "running"
    elif not right_worker or right_token is False:
        assert outcome is None
        assert state is not None
        assert state[:2] == ("running", 1)
    elif max_attempts == 1 or permanent:
        assert outcome == "dead"
        assert state is None
        assert dead is not None
        assert dead[1] == ("unknown error" if error_text is None else error_text)
    else:
        assert outcome == "pending"
        assert state is not None
        assert state[0] == "pending"
        assert state[3]
        assert state[2] == ("unknown error" if error_text is None else error_text)
    if state is not None:
        conn.execute("select dbos.cancel_job(%s)", (job_id,))
        conn.execute("select dbos.fail_job(%s, 'cleanup', 0, 'w-prop', null)", (job_id,))
    check_invariants(conn)


@SETTINGS
@given(
    progress=st.one_of(
        st.none(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "1e1000", "abc", ""]),
    ),
    message=st.one_of(st.none(), plain_text),
    lease_seconds=st.one_of(st.none(), int4),
    right_token=st.sampled_from([True, False, None]),
)
def test_sql_report_progress(conn, progress, message, lease_seconds, right_token):
    name = f"prop-progress-{uuid.uuid4().hex[:8]}"
    job_id = scalar(conn, "select dbos.enqueue(%s)", (name,))
    token = conn.execute(
        "select lease_token from dbos.claim_job('w-prop', array[%s], 1, 60)", (name,)
    ).fetchone()[0]
    lease_token = None if right_token is None else (token if right_token else token - 1)
    before = conn.execute(
        "select progress, progress_message, lease_expires_at from dbos.job_queue where id = %s",
        (job_id,),
    ).fetchone()
    error: psycopg.Error | None = None
    try:
        state = scalar(
            conn,
            "select dbos.report_progress(%s, %s::numeric, %s, %s::int, %s)",
            (job_id, None if progress is None else str(progress), message, lease_seconds,
             lease_token),
        )  # fmt: skip
    except psycopg.Error as caught:
        error = caught
    if error is not None:
        assert_clear_sql_error(error)
        assert (
            (lease_seconds is not None and not 1 <= lease_seconds < 2**31)
            or lease_seconds is None
            or str(progress).lower() in ("nan", "abc", "")
        ), f"refused valid progress: {error}"
        state = "refused"
    after = conn.execute(
        "select progress, progress_message, lease_expires_at from dbos.job_queue where id = %s",
        (job_id,),
    ).fetchone()
    if state in ("refused", "lost"):
        assert after == before, "a refused progress report changed the job"
        assert state == "refused" or right_token is False
    else:
        assert state == "held"
        if progress is not None:
            assert after[0] is not None
            assert 0 <= after[0] <= 100
        assert after[2] >= before[2], "the lease was shortened"
    conn.execute("select dbos.complete_job(%s)", (job_id,))
    check_invariants(conn)


# -- the Python client ---------------------------------------------------------------


class _Lend:
    """Lends the module's connection to the client, as a pool would."""

    conn: psycopg.Connection[Any] | None = None

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        assert self.conn is not None
        yield self.conn


CONNECTION = _Lend()


@pytest.fixture(autouse=True)
def _lend(conn: psycopg.Connection[Any]) -> Iterator[None]:
    CONNECTION.conn = conn
    yield
    CONNECTION.conn = None


@SETTINGS
@given(
    job_name=st.one_of(names, any_text),
    payload=st.one_of(json_values, st.just(float("nan")), st.just({1, 2}), st.just(b"bytes")),
    max_attempts=st.one_of(st.none(), st.integers(min_value=-2, max_value=10)),
)
def test_client_enqueue_raises_pgstack_errors_only(prop_url, conn, job_name, payload, max_attempts):
    queue = JobQueue(CONNECTION)
    before = rows(conn)
    refusal: PgStackError | None = None
    job_id = None
    try:
        job_id = queue.enqueue(job_name, payload, max_attempts=max_attempts)
    except (InvalidArgument, PayloadError) as caught:
        refusal = caught
    if refusal is not None:
        assert str(refusal)
        assert rows(conn) == before
    else:
        assert job_id is not None
        job = queue.get_job(job_id)
        assert job is not None
        assert job.job_name == job_name
        assert scalar(conn, "select payload = %s from dbos.job_queue where id = %s",
                      (Jsonb(payload), job_id))  # fmt: skip
        queue.cancel_job(job_id)
    check_invariants(conn)


@SETTINGS
@given(specs=st.lists(st.tuples(names, json_values), max_size=5))
def test_client_enqueue_many_all_or_nothing(prop_url, conn, specs):
    queue = JobQueue(CONNECTION)
    before = rows(conn)
    refusal: PgStackError | None = None
    ids: list[int] = []
    try:
        ids = queue.enqueue_many([JobSpec(name, payload) for name, payload in specs])
    except (InvalidArgument, PayloadError) as caught:
        refusal = caught
    if refusal is not None:
        assert str(refusal)
        assert rows(conn) == before
    else:
        assert len(ids) == len(specs)
        for job_id in ids:
            queue.cancel_job(job_id)
    check_invariants(conn)


# -- the CLI -------------------------------------------------------------------------


cli_words = st.one_of(
    plain_text,
    st.sampled_from(
        ["{}", "[]", "null", "1e400", '{"a": "\\u0000"}', "{", "--", "-1", "0", "nan", "inf",
         "1e308", "9" * 30, "2026-13-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00",
         "0001-01-01T00:00:00+00:00", "2026-01-01T00:00:00"]
    ),
)  # fmt: skip


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``pgstack`` in this process: its exit code, stdout and stderr. Any exception that
    escapes main() is what a user would see as a traceback."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli_main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, out.getvalue(), err.getvalue()


@settings(SETTINGS, max_examples=120)
@given(
    job_name=cli_words,
    payload=st.one_of(st.none(), cli_words, json_values.map(json.dumps)),
    options=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "--delay",
                    "--at",
                    "--max-attempts",
                    "--priority",
                    "--queue",
                    "--dedup-key",
                    "--timeout",
                ]
            ),
            cli_words,
        ),
        max_size=3,
    ),
)
def test_cli_enqueue_one_line_errors(prop_url, conn, job_name, payload, options):
    assume(not job_name.startswith("-"))
    argv = ["dbos", "enqueue", job_name]
    if payload is not None:
        assume(not payload.startswith("-"))
        argv.append(payload)
    for option, value in options:
        argv += [option, value]
    before = rows(conn)
    code, out, err = run_cli([*argv, "--database-url", prop_url])
    if code == 0:
        job_id = int(out.strip())
        conn.execute("select dbos.cancel_job(%s)", (job_id,))
    else:
        assert code in (1, 2), (code, err)
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("pgstack"), err
        assert ": error: " in err, err
        assert rows(conn) == before
    check_invariants(conn)


# -- the life of jobs, against a model -------------------------------------------------


@dataclass
class ModelJob:
    id: int
    max_attempts: int
    status: str = "pending"  # pending, running, completed, cancelled, dead
    attempt: int = 0
    token: int = 0
    holder: str | None = None
    cancel_requested: bool = False
    stale_tokens: set[int] = field(default_factory=set)


WORKERS = ("w-a", "w-b")


class JobLife(RuleBasedStateMachine):
    """Every call's answer and every job's row must match the model."""

    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.conn: psycopg.Connection[Any] = MACHINE_CONN[0]
        self.name = f"life-{uuid.uuid4().hex[:10]}"
        self.model: dict[int, ModelJob] = {}

    @initialize(target=jobs, count=st.integers(min_value=1, max_value=4))
    def first_jobs(self, count: int) -> Any:
        return multiple(*self._enqueue(count, 2))

    def _enqueue(self, count: int, max_attempts: int) -> list[int]:
        ids = [
            r[0]
            for r in self.conn.execute(
                "select dbos.enqueue_many(array_fill(%s::text, array[%s]), "
                "array_fill('{}'::jsonb, array[%s]), null, array_fill(%s, array[%s]))",
                (self.name, count, count, max_attempts, count),
            )
        ]
        for job_id in ids:
            self.model[job_id] = ModelJob(job_id, max_attempts)
        return ids

    @rule(target=jobs, count=st.integers(min_value=1, max_value=3),
          max_attempts=st.integers(min_value=1, max_value=3))  # fmt: skip
    def enqueue(self, count: int, max_attempts: int) -> Any:
        return multiple(*self._enqueue(count, max_attempts))

    @rule(worker=st.sampled_from(WORKERS), batch=st.integers(min_value=1, max_value=4))
    def claim(self, worker: str, batch: int) -> None:
        claimed = self.conn.execute(
            "select id, attempt, lease_token from dbos.claim_job(%s, array[%s], %s, 60)",
            (worker, self.name, batch),
        ).fetchall()
        pending = [j for j in self.model.values() if j.status == "pending"]
        assert len(claimed) == min(batch, len(pending))
        for job_id, attempt, token in claimed:
            job = self.model[job_id]
            assert job.status == "pending", f"claimed a {job.status} job"
            job.status, job.holder = "running", worker
            job.attempt += 1
            job.stale_tokens.add(job.token)
            job.token = token
            assert attempt == job.attempt

    def _token(self, job: ModelJob, stale: bool) -> int:
        return min(job.stale_tokens) if stale and job.stale_tokens else job.token

    def _fails(self, job: ModelJob) -> str:
        """What failing a held attempt does."""
        job.holder = None if not job.cancel_requested else job.holder
        if job.cancel_requested:
            job.status = "cancelled"
        elif job.attempt >= job.max_attempts:
            job.status = "dead"
        else:
            job.status = "pending"
        return job.status

    @rule(job_id=jobs, stale=st.booleans(), worker=st.sampled_from([*WORKERS, None]))
    def complete(self, job_id: int, stale: bool, worker: str | None) -> None:
        job = self.model[job_id]
        token = self._token(job, stale)
        done = scalar(self.conn, "select dbos.complete_job(%s, %s, %s)", (job_id, worker, token))
        expected = job.status == "running" and token == job.token and worker in (None, job.holder)
        assert done == expected, (job, token, worker)
        if done:
            job.status = "completed"

    @rule(job_id=jobs, stale=st.booleans(), worker=st.sampled_from([*WORKERS, None]))
    def fail(self, job_id: int, stale: bool, worker: str | None) -> None:
        job = self.model[job_id]
        token = self._token(job, stale)
        outcome = scalar(
            self.conn, "select dbos.fail_job(%s, 'boom', 0, %s, %s)", (job_id, worker, token)
        )
        if job.status == "running" and token == job.token and worker in (None, job.holder):
            assert outcome == self._fails(job)
        else:
            assert outcome is None

    @rule(job_id=jobs)
    def cancel(self, job_id: int) -> None:
        job = self.model[job_id]
        answer = scalar(self.conn, "select dbos.cancel_job(%s)", (job_id,))
        if job.status == "pending":
            assert answer == "cancelled"
            job.status = "cancelled"
        elif job.status == "running":
            assert answer == "cancel_requested"
            job.cancel_requested = True
        else:
            assert answer == job.status

    @rule(data=st.data())
    def expire_and_rescue(self, data: st.DataObject) -> None:
        running = sorted(j.id for j in self.model.values() if j.status == "running")
        expired = data.draw(st.lists(st.sampled_from(running), unique=True)) if running else []
        self.conn.execute(
            "update dbos.job_queue set lease_expires_at = now() - interval '1 second' "
            "where id = any(%s)",
            (expired,),
        )
        rescued = scalar(self.conn, "select dbos.rescue_expired_jobs(0)")
        assert rescued >= len(expired)  # other tests' expired jobs may come along
        for job_id in expired:
            self._fails(self.model[job_id])

    @rule(job_id=jobs, worker=st.sampled_from(WORKERS), stale=st.booleans())
    def release(self, job_id: int, worker: str, stale: bool) -> None:
        job = self.model[job_id]
        token = self._token(job, stale)
        released = scalar(
            self.conn, "select dbos.release_jobs(%s, array[%s]::bigint[], array[%s])",
            (worker, job_id, token),
        )  # fmt: skip
        if job.status == "running" and job.holder == worker and token == job.token:
            assert released == 1
            if job.cancel_requested:
                job.status = "cancelled"
            else:
                job.status, job.holder = "pending", None
                job.attempt -= 1
        else:
            assert released == 0

    @rule(job_id=jobs, worker=st.sampled_from(WORKERS), stale=st.booleans())
    def heartbeat(self, job_id: int, worker: str, stale: bool) -> None:
        job = self.model[job_id]
        token = self._token(job, stale)
        news = self.conn.execute(
            "select job_id, state from dbos.heartbeat(%s, array[%s]::bigint[], 60, array[%s])",
            (worker, job_id, token),
        ).fetchall()
        held = job.status == "running" and job.holder == worker and token == job.token
        if not held:
            assert news == [(job_id, "lost")]
        elif job.cancel_requested:
            assert news == [(job_id, "cancel_requested")]
        else:
            assert news == []

    @rule(job_id=jobs, stale=st.booleans(), value=st.integers(min_value=-50, max_value=150))
    def progress(self, job_id: int, stale: bool, value: int) -> None:
        job = self.model[job_id]
        token = self._token(job, stale)
        state = scalar(
            self.conn, "select dbos.report_progress(%s, %s, 'p', 60, %s)", (job_id, value, token)
        )
        if job.status != "running" or token != job.token:
            assert state == "lost"
        else:
            assert state == ("cancel_requested" if job.cancel_requested else "held")

    @invariant()
    def rows_match_the_model(self) -> None:
        if not self.model:
            return
        ids = list(self.model)
        live = {
            r[0]: r[1:]
            for r in self.conn.execute(
                "select id, status, attempt, locked_by, lease_token from dbos.job_queue "
                "where id = any(%s)",
                (ids,),
            )
        }
        dead = {
            r[0]: r[1]
            for r in self.conn.execute(
                "select id, attempt from dbos.failed_jobs where id = any(%s)", (ids,)
            )
        }
        for job in self.model.values():
            if job.status == "dead":
                assert job.id not in live, job
                assert dead.get(job.id) == job.attempt, job
                continue
            assert job.id not in dead, job
            status, attempt, locked_by, token = live[job.id]
            assert (status, attempt, token) == (job.status, job.attempt, job.token), (
                job, live[job.id],
            )  # fmt: skip
            if status == "running":
                assert locked_by == job.holder
        check_invariants(self.conn)


MACHINE_CONN: list[psycopg.Connection[Any]] = []


def test_the_life_of_jobs_matches_the_model(conn):
    MACHINE_CONN[:] = [conn]
    try:
        JobLife.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
        JobLife.TestCase().runTest()
    finally:
        MACHINE_CONN.clear()


DEPTH = 5000  # deeper than Python's recursion limit; PostgreSQL's jsonb takes it


def test_client_deeply_nested_payload_is_a_payload_error(prop_url, conn):
    """A payload the JSON encoder cannot handle (nested deeper than the interpreter's
    recursion limit) is refused like any unencodable payload: PayloadError, nothing
    written."""
    source = SingleConnection(prop_url)
    queue = JobQueue(source)
    deep: Any = 0
    for _ in range(DEPTH):
        deep = [deep]
    before = rows(conn)
    try:
        with pytest.raises(PgStackError):
            queue.enqueue("deep", deep)
    finally:
        source.close()
    assert rows(conn) == before


def test_cli_deeply_nested_payload_is_a_one_line_error(prop_url, conn):
    before = rows(conn)
    payload = "[" * DEPTH + "]" * DEPTH
    code, _, err = run_cli(["dbos", "enqueue", "deep", payload, "--database-url", prop_url])
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("pgstack: error: "), err
    assert rows(conn) == before
