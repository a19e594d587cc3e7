"""The worker's side of what users of the best queues expect: results, snooze,
permanent errors and retry policies, timeouts, transactional handlers, periodic jobs,
queues and their limits. The real `pgstack-run` in a subprocess, a real database."""

from __future__ import annotations

import signal

import pytest

from conftest import scalar, wait_for
from pgstack import JobSpec
from worker_helpers import FAST, events, go, job_row, max_overlap, status, wait_event, wait_status

HANDLERS = "features.py"


@pytest.fixture
def effects(db, ledger):
    db.execute("create table effects (job_key text)")
    return ledger


def dead_error(db, job_id: int) -> str | None:
    return scalar(db, "select error from dbos.failed_jobs where id = %s", (job_id,))


def test_a_handlers_return_value_is_stored_as_the_result(start_worker, ledger, dbos, db):
    start_worker(HANDLERS, *FAST, env=ledger)
    good = dbos.queue.enqueue("returns-a-result", {"n": 21})
    bad = dbos.queue.enqueue("returns-no-json", {}, max_attempts=1)
    wait_status(db, [good])
    assert dbos.queue.get_job(good).result == {"doubled": 42, "items": [1, 2, 3]}
    wait_for(lambda: dead_error(db, bad), message="the unstorable result to fail the job")
    assert "not JSON-serialisable" in dead_error(db, bad)


def test_snooze_runs_again_later_without_using_an_attempt(start_worker, ledger, dbos, db):
    start_worker(HANDLERS, *FAST, env=ledger)
    job_id = dbos.queue.enqueue("snoozes-once", {"key": "s"}, max_attempts=1)
    wait_status(db, [job_id])
    row = job_row(db, job_id)
    assert row["attempt"] == 1  # the snooze gave its attempt back
    assert events(db, "s", "started") == 2
    assert row["error"] is None


def test_permanent_errors_and_no_retry_exceptions_go_straight_to_the_dead_letter(
    start_worker, ledger, dbos, db
):
    start_worker(HANDLERS, *FAST, env=ledger)
    permanent = dbos.queue.enqueue("permanent-failure", {"key": "p"}, max_attempts=5)
    lookup = dbos.queue.enqueue(
        "no-retry-on-lookup", {"key": "l", "kind": "lookup"}, max_attempts=5
    )
    transient = dbos.queue.enqueue("no-retry-on-lookup", {"key": "t"}, max_attempts=3)
    wait_for(
        lambda: all(dead_error(db, i) for i in (permanent, lookup, transient)),
        message="the three jobs to be dead-lettered",
    )
    assert dead_error(db, permanent) == "PermanentError: the card number is invalid"
    assert events(db, "p", "started") == 1
    assert dead_error(db, lookup) == "KeyError: 'missing'"
    assert events(db, "l", "started") == 1
    assert events(db, "t", "started") == 3  # retried: 20 ms then 30 ms (capped)


def test_retry_policy_sets_the_backoff(start_worker, ledger, dbos, db):
    start_worker(HANDLERS, "--retry-delay-ms", "60000", env=ledger)
    job_id = dbos.queue.enqueue("no-retry-on-lookup", {"key": "b"}, max_attempts=3)
    # With the worker's 60 s the second attempt could not start within the deadline;
    # the handler's policy (20 ms, then 30 ms) runs all three and dead-letters the job.
    wait_for(lambda: dead_error(db, job_id), timeout=20, message="three attempts")
    assert dead_error(db, job_id) == "RuntimeError: transient"
    assert events(db, "b", "started") == 3


def test_an_async_job_past_its_timeout_is_cancelled_and_fails(start_worker, ledger, dbos, db):
    start_worker(HANDLERS, *FAST, env=ledger)
    job_id = dbos.queue.enqueue("slow-async-with-timeout", {"key": "a"}, max_attempts=1)
    wait_for(lambda: dead_error(db, job_id), timeout=5, message="the timeout")
    assert dead_error(db, job_id) == "TimeoutError: ran longer than its timeout of 0.5 s"
    assert events(db, "a", "ran") == 0


def test_a_sync_job_past_its_timeout_fails_and_its_thread_is_abandoned(
    start_worker, ledger, dbos, db
):
    start_worker(HANDLERS, *FAST, "--concurrency", "1", env=ledger)
    job_id = dbos.queue.enqueue("slow-sync-with-timeout", {"key": "s"}, max_attempts=1)
    wait_for(lambda: dead_error(db, job_id), timeout=5, message="the timeout")
    assert dead_error(db, job_id) == "TimeoutError: ran longer than its timeout of 0.5 s"
    # Its slot is free again while the abandoned thread still sleeps.
    other = dbos.queue.enqueue("returns-a-result", {"n": 1})
    wait_status(db, [other], timeout=2)
    assert events(db, "s", "thread-finished") == 0


def test_timeout_seconds_of_a_job_is_enforced_by_the_worker(start_worker, ledger, dbos, db):
    start_worker(HANDLERS, *FAST, env=ledger)
    job_id = dbos.queue.enqueue(
        "slow-by-job-timeout", {"key": "j"}, max_attempts=1, timeout_seconds=1
    )
    wait_for(lambda: dead_error(db, job_id), timeout=5, message="the timeout")
    assert dead_error(db, job_id) == "TimeoutError: ran longer than its timeout of 1 s"


def test_a_transactional_handler_commits_its_writes_with_the_completion(
    start_worker, effects, dbos, db
):
    start_worker(HANDLERS, *FAST, env=effects)
    ok = dbos.queue.enqueue("transactional-async", {"key": "ok"})
    failed = dbos.queue.enqueue("transactional-async", {"key": "no", "fail": True}, max_attempts=1)
    wait_status(db, [ok])
    wait_for(lambda: dead_error(db, failed), message="the failing job to be dead-lettered")
    assert db.execute("select job_key from effects").fetchall() == [("ok",)]
    sync = dbos.queue.enqueue("transactional-write", {"key": "sync"})
    wait_status(db, [sync])
    assert dbos.queue.get_job(sync).result == {"effect": "written"}
    assert scalar(db, "select count(*) from effects where job_key = 'sync'") == 1


def test_a_worker_killed_between_the_write_and_the_commit_leaves_no_trace(
    start_worker, effects, dbos, db
):
    """Exactly once inside the database: the write is never visible without the
    completion, even when the worker dies between them."""
    first = start_worker(HANDLERS, *FAST, "--lease-seconds", "2", env=effects)
    job_id = dbos.queue.enqueue("transactional-write", {"key": "k", "wait": True})
    wait_event(db, "k", "written")
    first.signal(signal.SIGKILL)
    first.wait()
    assert scalar(db, "select count(*) from effects") == 0
    assert status(db, job_id) == "running"
    go(db, "k")
    start_worker(HANDLERS, *FAST, "--lease-seconds", "2", env=effects)
    wait_status(db, [job_id], timeout=15)
    assert scalar(db, "select count(*) from effects where job_key = 'k'") == 1
    assert job_row(db, job_id)["attempt"] == 2


def test_a_cron_handler_is_enqueued_once_per_tick_across_workers(start_worker, ledger, dbos, db):
    for _ in range(3):
        start_worker(HANDLERS, *FAST, env=ledger)
    (schedule,) = dbos.queue.list_schedules()
    assert (schedule.schedule_name, schedule.cron) == ("every-minute", "* * * * *")
    # Make the tick due now rather than wait for the next minute.
    db.execute("update dbos.schedules set next_run_at = now()")
    wait_for(lambda: events(db, "cron", "ran") == 1, message="the tick's job")
    wait_for(
        lambda: scalar(db, "select next_run_at > now() from dbos.schedules"),
        message="the schedule to move on",
    )
    assert scalar(db, "select count(*) from dbos.job_queue where job_name = 'every-minute'") == 1


def test_workers_serve_their_queues_and_honour_a_queue_limit(start_worker, ledger, dbos, db):
    dbos.queue.set_queue_limit("serial", 1)
    start_worker("worker_cases.py", *FAST, "--queue", "serial", "--concurrency", "5", env=ledger)
    start_worker("worker_cases.py", *FAST, "--queue", "serial", "--concurrency", "5", env=ledger)
    other = dbos.queue.enqueue("record", {"key": "other"}, queue_name="elsewhere")
    ids = dbos.queue.enqueue_many(
        [JobSpec("slow", {"key": f"s{i}", "seconds": 0.1}, queue_name="serial") for i in range(6)]
    )
    wait_status(db, ids, timeout=20)
    assert max_overlap(db) == 1
    assert status(db, other) == "pending"


def test_a_serial_queue_drains_at_once_without_polling(start_worker, ledger, dbos, db):
    """Idle workers do not poll a full queue; finishing its job wakes them."""
    dbos.queue.set_queue_limit("serial", 1)
    start_worker("worker_cases.py", "--poll-interval", "60000", "--queue", "serial", env=ledger)
    ids = dbos.queue.enqueue_many(
        [JobSpec("record", {"key": f"r{i}"}, queue_name="serial") for i in range(5)]
    )
    wait_status(db, ids, timeout=5)
