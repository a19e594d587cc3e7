"""What users of the best queues expect, from the client and under concurrency:
priorities, queues with limits, unique jobs, periodic jobs, bulk operations."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

import pgstack
from conftest import scalar
from pgstack import JobSpec


def claim(db, worker="w", batch=1, queues=None):
    return [
        r[0]
        for r in db.execute(
            "select id from dbos.claim_job(%s, null, %s, 60, %s)", (worker, batch, queues)
        ).fetchall()
    ]


def test_higher_priority_runs_first_then_fifo(dbos, db):
    q = dbos.queue
    low = q.enqueue("x", {"n": "low"})
    high = q.enqueue("x", {"n": "high"}, priority=10)
    mid = q.enqueue("x", {"n": "mid"}, priority=5)
    high2 = q.enqueue("x", {"n": "high2"}, priority=10)
    assert [claim(db)[0] for _ in range(4)] == [high, high2, mid, low]
    assert q.get_job(high).priority == 10


def test_workers_serve_chosen_queues(dbos, db):
    q = dbos.queue
    email = q.enqueue("send", {}, queue_name="emails")
    report = q.enqueue("build", {}, queue_name="reports")
    default = q.enqueue("other", {})
    assert claim(db, batch=10, queues=["emails"]) == [email]
    assert sorted(claim(db, batch=10, queues=["reports", "default"])) == sorted([report, default])
    assert q.get_job(email).queue_name == "emails"


def test_queue_limit_holds_across_eight_concurrent_workers(dbos, database_url, db):
    """8 workers claim and complete from a queue limited to 3: never more than 3 run."""
    q = dbos.queue
    q.set_queue_limit("limited", 3)
    q.enqueue_many([JobSpec("work", {"n": i}, queue_name="limited") for i in range(120)])
    q.enqueue_many("free", [{"n": i} for i in range(40)])
    stop = threading.Event()
    peak = [0]

    def sample() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while not stop.is_set():
                running = scalar(
                    conn,
                    "select count(*) from dbos.job_queue"
                    " where queue_name = 'limited' and status = 'running'",
                )
                peak[0] = max(peak[0], running)

    def work(name: str) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while True:
                rows = conn.execute(
                    "select id, queue_name from dbos.claim_job(%s, null, 2)", (name,)
                ).fetchall()
                running = scalar(
                    conn,
                    "select count(*) from dbos.job_queue"
                    " where queue_name = 'limited' and status = 'running'",
                )
                assert running <= 3
                if not rows:
                    if (
                        scalar(
                            conn, "select count(*) from dbos.job_queue where status <> 'completed'"
                        )
                        == 0
                    ):
                        return
                    time.sleep(0.005)
                    continue
                time.sleep(0.002)
                conn.execute("select dbos.complete_jobs(%s)", ([r[0] for r in rows],))

    sampler = threading.Thread(target=sample)
    sampler.start()
    workers = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(8)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    stop.set()
    sampler.join()
    assert scalar(db, "select count(*) from dbos.job_queue where status = 'completed'") == 160
    assert 1 <= peak[0] <= 3


def test_a_paused_queue_is_not_claimed_until_its_limit_is_lifted(dbos, db):
    q = dbos.queue
    job_id = q.enqueue("x", {}, queue_name="paused")
    q.set_queue_limit("paused", 0)
    assert claim(db, batch=5) == []
    q.set_queue_limit("paused", None)
    assert claim(db, batch=5) == [job_id]


def test_dedup_key_returns_the_active_job_even_under_concurrent_enqueues(dbos, database_url):
    q = dbos.queue
    ids: list[int] = []
    barrier = threading.Barrier(8)

    def enqueue() -> None:
        with pgstack.dbos.PgStackDBOS(connection_string=database_url) as client:
            barrier.wait()
            for _ in range(10):
                ids.append(client.queue.enqueue("report", {}, dedup_key="daily-report"))

    threads = [threading.Thread(target=enqueue) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 80
    assert len(set(ids)) == 1
    job_id = ids[0]
    assert q.get_job(job_id).dedup_key == "daily-report"
    q.cancel_job(job_id)
    assert q.enqueue("report", {}, dedup_key="daily-report") != job_id


def test_periodic_jobs_enqueue_each_tick_once_however_many_callers(dbos, database_url, db):
    q = dbos.queue
    next_tick = q.schedule("tick", "* * * * *", "report", {"kind": "minutely"})
    assert next_tick > datetime.now(timezone.utc) - timedelta(seconds=5)
    db.execute("update dbos.schedules set next_run_at = now() - interval '1 minute'")
    counts: list[int] = []
    barrier = threading.Barrier(6)

    def call() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            barrier.wait()
            counts.append(scalar(conn, "select dbos.enqueue_due_schedules()"))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 1
    jobs = q.list_jobs()
    assert [(j.job_name, j.payload) for j in jobs] == [("report", {"kind": "minutely"})]
    (schedule,) = q.list_schedules()
    assert schedule.next_run_at > datetime.now(timezone.utc)
    assert q.unschedule("tick") is True
    assert q.unschedule("tick") is False
    with pytest.raises(pgstack.InvalidArgument, match="cron minute field"):
        q.schedule("bad", "61 * * * *")


def test_bulk_cancel_and_replay_by_name(dbos, db):
    q = dbos.queue
    q.enqueue_many("spam", [1, 2, 3])
    keep = q.enqueue("other", {})
    assert q.cancel_pending_jobs("spam") == 3
    assert {j.id for j in q.list_jobs(status="pending")} == {keep}
    for n in range(3):
        job_id = q.enqueue("doomed", {"n": n}, max_attempts=1, priority=4, queue_name="q1")
        db.execute("select dbos.claim_job('w', array['doomed'])")
        db.execute("select dbos.fail_job(%s, 'boom')", (job_id,))
    new_ids = q.retry_dead_letter_jobs("doomed")
    assert len(new_ids) == 3
    assert q.list_dead_letter_jobs() == []
    replayed = q.get_job(new_ids[0])
    assert (replayed.priority, replayed.queue_name, replayed.payload) == (4, "q1", {"n": 0})
