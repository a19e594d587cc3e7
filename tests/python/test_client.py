"""The client API: enqueue (alone, many, in the caller's transaction) and read jobs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

import pgstack
from conftest import scalar
from pgstack import JobSpec
from pgstack.dbos import PgStackDBOS


def test_enqueue_returns_an_id_and_get_job_reads_it_back(dbos):
    job_id = dbos.queue.enqueue("send-welcome-email", {"email": "u@example.com"})
    job = dbos.queue.get_job(job_id)
    assert isinstance(job_id, int)
    assert job is not None
    assert (job.id, job.job_name, job.payload) == (
        job_id,
        "send-welcome-email",
        {"email": "u@example.com"},
    )
    assert (job.status, job.attempt, job.max_attempts, job.error) == ("pending", 0, 3, None)
    assert job.started_at is None
    assert job.completed_at is None
    assert job.progress is None


def test_max_retries_is_the_default_max_attempts(database_url):
    with PgStackDBOS(connection_string=database_url, max_retries=7) as dbos:
        assert dbos.queue.get_job(dbos.queue.enqueue("x", {})).max_attempts == 7
        assert dbos.queue.get_job(dbos.queue.enqueue("x", {}, max_attempts=2)).max_attempts == 2


def test_payload_defaults_to_an_empty_object_and_takes_any_json_value(dbos):
    q = dbos.queue
    assert q.get_job(q.enqueue("x")).payload == {}
    for value in [None, 3, "text", [1, {"a": None}], True]:
        assert q.get_job(q.enqueue("x", value)).payload == value


def test_scheduled_for_a_time_or_a_delay_from_the_database_clock(dbos, db):
    q = dbos.queue
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert q.get_job(q.enqueue("x", {}, scheduled_for=at)).scheduled_for == at
    job_id = q.enqueue("x", {}, scheduled_for=timedelta(hours=1))
    delay = scalar(db, "select scheduled_for - now() from dbos.job_queue where id = %s", (job_id,))
    assert timedelta(minutes=59) < delay <= timedelta(hours=1)
    with pytest.raises(ValueError, match="timezone-aware"):
        q.enqueue("x", {}, scheduled_for=datetime(2030, 1, 1))


def test_a_payload_that_is_not_json_is_refused_and_nothing_is_written(dbos, db):
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        dbos.queue.enqueue("x", {"when": {1, 2}})
    with pytest.raises(pgstack.PayloadError):
        dbos.queue.enqueue("x", {"n": float("nan")})
    with pytest.raises(pgstack.PayloadError):
        dbos.queue.enqueue_many("x", [{}, {"bad": object()}])
    assert scalar(db, "select count(*) from dbos.job_queue") == 0


def test_bad_arguments_raise_invalid_argument_naming_the_value(dbos, db):
    with pytest.raises(pgstack.InvalidArgument, match="job_name must be 1 to 255"):
        dbos.queue.enqueue("", {})
    with pytest.raises(pgstack.InvalidArgument, match="max_attempts must be at least 1, got 0"):
        dbos.queue.enqueue("x", {}, max_attempts=0)
    with pytest.raises(ValueError, match="status must be one of"):
        dbos.queue.list_jobs(status="finished")
    assert scalar(db, "select count(*) from dbos.job_queue") == 0


def test_enqueue_joins_the_callers_transaction(dbos, database_url, db):
    db.execute("create table orders (id int primary key)")
    with psycopg.connect(database_url) as conn:
        with conn.transaction():
            conn.execute("insert into orders values (1)")
            kept = dbos.queue.enqueue("invoice", {"order": 1}, conn=conn)
        with conn.transaction(force_rollback=True):
            conn.execute("insert into orders values (2)")
            dropped = dbos.queue.enqueue("invoice", {"order": 2}, conn=conn)
    assert dbos.queue.get_job(kept) is not None
    assert dbos.queue.get_job(dropped) is None
    assert scalar(db, "select array_agg(id) from orders") == [1]


def test_enqueue_accepts_a_transaction_object(dbos, database_url):
    with psycopg.connect(database_url) as conn, conn.transaction() as tx:
        job_id = dbos.queue.enqueue("x", {}, conn=tx)
    assert dbos.queue.get_job(job_id) is not None


def test_enqueue_many_forms_return_ids_in_order(dbos):
    q = dbos.queue
    ids = q.enqueue_many("email", [{"n": i} for i in range(5)])
    assert ids == sorted(ids)
    assert len(ids) == 5
    assert [q.get_job(i).payload["n"] for i in ids] == [0, 1, 2, 3, 4]
    later = datetime(2031, 1, 1, tzinfo=timezone.utc)
    mixed = q.enqueue_many([("a", 1), JobSpec("b", 2, scheduled_for=later, max_attempts=9)])
    a, b = (q.get_job(i) for i in mixed)
    assert (a.job_name, a.payload, a.max_attempts) == ("a", 1, 3)
    assert (b.job_name, b.scheduled_for, b.max_attempts) == ("b", later, 9)
    delayed = q.enqueue_many("x", [1, 2], scheduled_for=timedelta(minutes=5))
    assert all(q.get_job(i).scheduled_for > datetime.now(timezone.utc) for i in delayed)
    assert q.enqueue_many("x", []) == []


def test_enqueue_many_is_one_statement_all_or_nothing(dbos, db):
    with pytest.raises(pgstack.InvalidArgument, match="job 3 of 3"):
        dbos.queue.enqueue_many([("a", 1), ("b", 2), ("", 3)])
    assert scalar(db, "select count(*) from dbos.job_queue") == 0


def test_list_jobs_newest_first_with_status_filter_and_limit(dbos, db):
    q = dbos.queue
    ids = q.enqueue_many("x", list(range(4)))
    db.execute("select dbos.cancel_job(%s)", (ids[0],))
    assert [j.id for j in q.list_jobs()] == ids[::-1]
    assert [j.id for j in q.list_jobs(limit=2)] == ids[:1:-1]
    assert [j.id for j in q.list_jobs(status="cancelled")] == [ids[0]]
    assert [j.id for j in q.list_jobs(status="pending")] == ids[:0:-1]


def test_dead_letters_newest_first_and_replay(dbos, db):
    q = dbos.queue
    dead = []
    for n in range(2):
        job_id = q.enqueue("doomed", {"n": n}, max_attempts=1)
        db.execute("select dbos.claim_job('w', array['doomed'])")
        assert scalar(db, "select dbos.fail_job(%s, 'boom')", (job_id,)) == "dead"
        dead.append(job_id)
    letters = q.list_dead_letter_jobs()
    assert [d.id for d in letters] == dead[::-1]
    assert (letters[0].error, letters[0].attempt, letters[0].max_attempts) == ("boom", 1, 1)
    assert q.get_job(dead[0]) is None
    new_id = q.retry_dead_letter_job(dead[0])
    replayed = q.get_job(new_id)
    assert (replayed.job_name, replayed.payload, replayed.attempt, replayed.max_attempts) == (
        "doomed",
        {"n": 0},
        0,
        1,
    )
    assert [d.id for d in q.list_dead_letter_jobs()] == [dead[1]]
    with pytest.raises(pgstack.JobNotFound, match=str(dead[0])):
        q.retry_dead_letter_job(dead[0])


def test_cancel_and_retry_now(dbos, db):
    q = dbos.queue
    later = q.enqueue("x", {}, scheduled_for=timedelta(hours=1))
    assert q.retry_job(later) == later
    assert scalar(db, "select scheduled_for <= now() from dbos.job_queue where id = %s", (later,))
    assert q.cancel_job(later) == "cancelled"
    assert q.cancel_job(later) == "cancelled"
    with pytest.raises(pgstack.InvalidJobState, match="cancelled"):
        q.retry_job(later)
    with pytest.raises(pgstack.JobNotFound):
        q.cancel_job(123456)


def test_stats_count_by_name_and_status_with_dead_letters(dbos, db):
    q = dbos.queue
    q.enqueue_many("a", [1, 2])
    doomed = q.enqueue("b", {}, max_attempts=1)
    db.execute("select dbos.claim_job('w', array['b'])")
    db.execute("select dbos.fail_job(%s, 'x')", (doomed,))
    counts = {(c.job_name, c.status): c.jobs for c in q.stats()}
    assert counts == {("a", "pending"): 2, ("b", "dead"): 1}


def test_missing_database_url_says_what_to_set(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(pgstack.ConfigurationError, match="set DATABASE_URL"):
        PgStackDBOS()


def test_enqueue_notifies_once_per_statement(dbos, database_url):
    """One NOTIFY per enqueueing transaction, however many rows; a job due later wakes
    the workers too (an idle one re-reads when its next job is due)."""
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("listen dbos_job_queue")
        dbos.queue.enqueue_many("x", list(range(50)))
        dbos.queue.enqueue("x", {}, scheduled_for=timedelta(hours=1))
        with psycopg.connect(database_url) as conn, conn.transaction():
            for _ in range(5):
                dbos.queue.enqueue("y", {}, conn=conn)
        notices = list(listener.notifies(timeout=0.5))
    assert [n.channel for n in notices] == ["dbos_job_queue"] * 3
