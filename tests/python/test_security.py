"""Security: each role can do what it is for and nothing else; no dynamic SQL in the
queue's functions; passwords never reach logs or errors."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from conftest import ADMIN_URL, BIN, HANDLERS, scalar, wait_for


@pytest.fixture
def connect_as(database_url: str) -> Iterator[Any]:
    """connect_as("dbos_worker"): a connection as a fresh login role that is a member of it."""
    made: list[str] = []
    conns: list[psycopg.Connection[Any]] = []

    def connect(member_of: str | None) -> psycopg.Connection[Any]:
        login = f"pgstack_test_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'create role "{login}" login')
            if member_of:
                admin.execute(f'grant "{member_of}" to "{login}"')
        made.append(login)
        conn = psycopg.connect(make_conninfo(database_url, user=login), autocommit=True)
        conns.append(conn)
        return conn

    yield connect
    for conn in conns:
        conn.close()
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        for login in made:
            admin.execute(f'drop role if exists "{login}"')


def denied(conn: psycopg.Connection[Any], query: str, params: Any = None) -> bool:
    try:
        conn.execute(query, params)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_the_enqueuer_may_only_enqueue_and_read_its_job(connect_as, db):
    conn = connect_as("dbos_enqueuer")
    job_id = scalar(conn, "select dbos.enqueue('send-email', '{\"to\": \"a\"}')")
    assert scalar(conn, "select status from dbos.get_job(%s)", (job_id,)) == "pending"
    assert conn.execute("select dbos.enqueue_many(array['a'], array['{}'::jsonb])").fetchall()
    assert denied(conn, "select * from dbos.claim_job('w')")
    assert denied(conn, "select dbos.cancel_job(%s)", (job_id,))
    assert denied(conn, "select * from dbos.list_jobs()")
    assert denied(conn, "select * from dbos.job_queue")
    assert denied(conn, "update dbos.job_queue set status = 'completed'")
    assert denied(conn, "insert into dbos.job_queue (job_name) values ('x')")
    assert scalar(db, "select count(*) from dbos.job_queue") == 2


def test_the_worker_may_run_jobs_but_not_operate_the_queue(connect_as, db):
    db.execute("select dbos.enqueue('x', '{}')")
    conn = connect_as("dbos_worker")
    job_id, token = conn.execute("select id, lease_token from dbos.claim_job('w')").fetchone()
    assert scalar(conn, "select dbos.heartbeat('w', array[%s::bigint])", (job_id,)) is None
    assert scalar(conn, "select dbos.complete_job(%s, 'w', %s)", (job_id, token)) is True
    assert scalar(conn, "select dbos.rescue_expired_jobs()") == 0
    assert scalar(conn, "select dbos.prune_jobs(interval '1 day')") == 0
    assert scalar(conn, "select max(version) from dbos.schema_migrations") >= 1
    assert denied(conn, "select dbos.cancel_job(%s)", (job_id,))
    assert denied(conn, "select dbos.set_queue_limit('q', 1)")
    assert denied(conn, "select * from dbos.failed_jobs")
    assert denied(conn, "delete from dbos.job_queue")


def test_the_admin_may_operate_and_read_everything(connect_as, db):
    job_id = scalar(db, "select dbos.enqueue('x', '{}')")
    conn = connect_as("dbos_admin")
    assert scalar(conn, "select dbos.cancel_job(%s)", (job_id,)) == "cancelled"
    assert scalar(conn, "select count(*) from dbos.job_queue") == 1
    assert conn.execute("select * from dbos.queue_stats").fetchall() == [("x", "cancelled", 1)]
    conn.execute("select dbos.set_queue_limit('q', 1)")
    assert denied(conn, "delete from dbos.job_queue")
    assert denied(conn, "select * from dbos.claim_batch('w', null, null, '{}', 1, 60)")


def test_a_role_without_grants_can_do_nothing(connect_as):
    conn = connect_as(None)
    assert denied(conn, "select dbos.enqueue('x')")
    assert denied(conn, "select * from dbos.job_queue")


def test_no_queue_function_builds_dynamic_sql(db):
    dynamic = db.execute(
        r"""
        select p.proname from pg_proc as p
        where p.pronamespace = 'dbos'::regnamespace and p.prosrc ~* '\mexecute\M'
        """
    ).fetchall()
    assert dynamic == []


def test_passwords_never_reach_the_worker_log(database_url):
    """Trust authentication ignores the password, so the worker runs with it in its URL."""
    params = conninfo_to_dict(database_url)
    host = params.get("host") or "127.0.0.1"
    url = f"postgresql://{params.get('user') or 'root'}:S3cretPassw0rd@{host}/{params['dbname']}"
    if host.startswith("/"):
        url = make_conninfo(database_url, password="S3cretPassw0rd")
    for target in (url, "postgresql://root:S3cretPassw0rd@127.0.0.1:1/nowhere"):
        process = subprocess.Popen(
            [str(BIN / "pgstack-run"), str(HANDLERS / "ledger.py"), "--database-url", target],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={"PGSTACK_LEDGER_URL": database_url, "PATH": "/usr/bin:/bin"},
        )
        lines: list[str] = []

        def started(process: subprocess.Popen[str] = process, lines: list[str] = lines) -> bool:
            line = process.stdout.readline() if process.stdout else ""
            lines.append(line)
            return "started:" in line or process.poll() is not None

        wait_for(started, timeout=20, message="the worker to start or fail")
        process.terminate()
        output, _ = process.communicate(timeout=30)
        text = "".join(lines) + output
        assert "S3cretPassw0rd" not in text
