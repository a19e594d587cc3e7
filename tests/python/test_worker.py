"""The worker end to end: the real `pgstack-run` in a subprocess against a real database.

Handlers live in handlers/worker_cases.py (which also loads handlers/ledger.py) and
record what they did in table `ledger`; times are read from the database's clock.
Waits are for conditions, with deadlines; idle workers are recognised by their
claimer's connection sitting idle after `seconds_until_next_job`.
"""

from __future__ import annotations

import itertools
import signal
import time
from datetime import timedelta

from conftest import scalar, wait_for
from pgstack import JobSpec
from worker_helpers import (
    FAST,
    events,
    go,
    job_row,
    max_overlap,
    purposes,
    seconds,
    status,
    wait_event,
    wait_idle,
    wait_status,
    worker_backends,
)

HANDLERS = "worker_cases.py"


# -- handler shapes ----------------------------------------------------------------------


def test_sync_and_async_handlers_with_and_without_report_progress(start_worker, ledger, dbos, db):
    start_worker(HANDLERS, *FAST, env=ledger)
    names = [
        "sync-payload-only",
        "async-payload-only",
        "sync-with-progress",
        "async-with-progress",
    ]
    ids = dbos.queue.enqueue_many([(name, {"key": name}) for name in names])
    wait_status(db, ids)
    for name, job_id in zip(names, ids, strict=True):
        assert events(db, name, "ran") == 1, name
        row = job_row(db, job_id)
        assert row["attempt"] == 1
        assert row["error"] is None


def test_progress_is_visible_while_the_job_runs(start_worker, ledger, dbos, db):
    worker = start_worker(HANDLERS, *FAST, env=ledger)
    job_id = dbos.queue.enqueue("progress-then-wait", {"key": "p"})
    wait_event(db, "p")
    row = wait_for(
        lambda: (r := job_row(db, job_id))["progress"] is not None and r,
        timeout=5,
        message="the reported progress to be written",
    )
    assert row["status"] == "running"
    assert (row["progress"], row["progress_message"]) == (42, "halfway there")
    go(db, "p")
    wait_status(db, [job_id])
    assert "heartbeater:" not in worker.log()


def test_the_last_progress_is_stored_when_the_heartbeater_cannot_write_it(
    start_worker, ledger, dbos, db
):
    """A progress reported just before the return is written before the completion,
    even when the heartbeater's write of it fails (its connection was cut): the
    completer waits for that write to settle and, unconfirmed, writes it itself."""
    start_worker(HANDLERS, *FAST, "--worker-id", "w-last", env=ledger)
    job_id = dbos.queue.enqueue("progress-at-the-end", {"key": "end"})
    wait_event(db, "end")
    heartbeater = [pid for pid, name in worker_backends(db, "w-last") if " heartbeater " in name]
    assert len(heartbeater) == 1
    assert scalar(db, "select pg_terminate_backend(%s)", (heartbeater[0],))
    go(db, "end")
    wait_status(db, [job_id])
    row = job_row(db, job_id)
    assert (row["progress"], row["progress_message"]) == (100, "done")


def test_odd_progress_values_are_clamped_and_never_block_other_progress(
    start_worker, ledger, dbos, db
):
    """inf clamps to 100 and -5 to 0; a NUL in the message (which PostgreSQL text cannot
    hold) is escaped. Neither fails the job nor wedges the progress of other jobs."""
    worker = start_worker(HANDLERS, *FAST, env=ledger)
    odd = dbos.queue.enqueue("progress-odd-values", {"key": "odd"})
    wait_event(db, "odd")
    row = wait_for(
        lambda: (r := job_row(db, odd))["progress"] is not None and r,
        timeout=5,
        message="the odd progress",
    )
    assert (row["progress"], row["progress_message"]) == (100, "nul \\x00 here")
    plain = dbos.queue.enqueue("progress-then-wait", {"key": "plain"})
    wait_event(db, "plain")
    wait_for(
        lambda: job_row(db, plain)["progress"] == 42,
        timeout=5,
        message="the progress of the well-behaved job",
    )
    go(db, "odd")
    wait_event(db, "odd", "second")
    wait_for(
        lambda: job_row(db, odd)["progress_message"] == "below zero",
        timeout=5,
        message="the second progress of the odd job",
    )
    assert job_row(db, odd)["progress"] == 0
    go(db, "odd-2", "plain")
    wait_status(db, [odd, plain])
    assert "heartbeater:" not in worker.log()


# -- failures ----------------------------------------------------------------------------


def test_retries_with_backoff_then_dead_letter(start_worker, ledger, dbos, db):
    # A long poll interval: retries must start on time because the worker knows when
    # they are due, not because it happens to poll.
    start_worker(HANDLERS, "--retry-delay-ms", "300", "--poll-interval", "60000", env=ledger)
    job_id = dbos.queue.enqueue("always-fails", {"key": "f"}, max_attempts=3)

    delays = []
    for attempt, backoff in [(1, 0.3), (2, 0.6)]:
        row = wait_for(
            lambda a=attempt: (
                (r := job_row(db, job_id)) and r["status"] == "pending" and r["attempt"] == a and r
            ),
            interval=0.01,
            message=f"attempt {attempt} to fail and wait for its retry",
        )
        assert row["error"] == "ValueError: message"
        # scheduled_for = time of the failure + backoff; the failure follows the claim
        # (started_at) by the handler's few milliseconds.
        delay = seconds(row["scheduled_for"] - row["started_at"])
        assert backoff <= delay < backoff + 0.2, (attempt, delay)
        delays.append(delay)

    wait_for(
        lambda: scalar(db, "select count(*) from dbos.failed_jobs where id = %s", (job_id,)),
        message="the job to be dead-lettered",
    )
    assert job_row(db, job_id) is None
    dead = dbos.queue.list_dead_letter_jobs()
    assert [(d.id, d.attempt, d.max_attempts, d.error) for d in dead] == [
        (job_id, 3, 3, "ValueError: message")
    ]
    runs = [r[0] for r in db.execute("select at from ledger where job_key = 'f' order by at")]
    assert len(runs) == 3
    gaps = [seconds(b - a) for a, b in itertools.pairwise(runs)]
    assert 0.3 <= gaps[0] < 0.6, gaps
    assert 0.6 <= gaps[1] < 0.9, gaps


def test_handler_raising_base_exceptions_fails_the_job_not_the_worker(
    start_worker, ledger, dbos, db
):
    worker = start_worker(HANDLERS, *FAST, env=ledger)
    kinds = ["SystemExit", "KeyboardInterrupt", "RecursionError"]
    specs = [
        JobSpec(name, {"key": f"{name}-{kind}", "kind": kind}, max_attempts=1)
        for name in ("raises-base", "raises-base-async")
        for kind in kinds
    ]
    ids = dbos.queue.enqueue_many(specs)
    wait_for(
        lambda: (
            scalar(db, "select count(*) from dbos.failed_jobs where id = any(%s)", (ids,))
            == len(ids)
        ),
        message="every job to be dead-lettered",
    )
    errors = dict(db.execute("select id, error from dbos.failed_jobs").fetchall())
    for job_id, spec in zip(ids, specs, strict=True):
        expected = {
            "SystemExit": "SystemExit: handler called sys.exit",
            "KeyboardInterrupt": "KeyboardInterrupt: handler interrupted",
            "RecursionError": "RecursionError: maximum recursion depth exceeded",
        }[spec.payload["kind"]]
        assert errors[job_id].startswith(expected), (spec, errors[job_id])
    # The worker is still alive and still working.
    after = dbos.queue.enqueue("record", {"key": "after"})
    wait_status(db, [after])
    assert worker.process.poll() is None


# -- the claim ----------------------------------------------------------------------------


def test_concurrency_limit_counts_threads_and_tasks_together(start_worker, ledger, dbos, db):
    start_worker(HANDLERS, "--concurrency", "3", *FAST, env=ledger)
    specs = [
        JobSpec("slow" if n % 2 else "slow-async", {"key": f"c{n}", "seconds": 0.25})
        for n in range(20)
    ]
    ids = dbos.queue.enqueue_many(specs)
    wait_status(db, ids, timeout=20)
    assert scalar(db, "select count(*) from ledger where event = 'ran'") == 20
    assert max_overlap(db) == 3


def test_prefetched_jobs_keep_their_lease_while_they_wait(start_worker, ledger, dbos, db):
    worker = start_worker(
        HANDLERS,
        "--concurrency",
        "1",
        "--prefetch",
        "1",
        "--lease-seconds",
        "2",
        *FAST,
        env=ledger,
    )
    busy, waiting = dbos.queue.enqueue_many(
        [("progress-then-wait", {"key": "busy"}), ("record", {"key": "waiting"})]
    )
    wait_event(db, "busy")
    first = wait_for(
        lambda: (r := job_row(db, waiting))["status"] == "running" and r,
        message="the second job to be prefetched",
    )
    # Heartbeats (every 0.5 s) extend the waiting job's lease past its first expiry.
    wait_for(
        lambda: job_row(db, waiting)["lease_expires_at"] > first["lease_expires_at"],
        timeout=3,
        message="the prefetched job's lease to be extended",
    )
    wait_for(
        lambda: scalar(db, "select now() > %s", (first["lease_expires_at"],)),
        timeout=3,
        message="its first lease to be over",
    )
    row = job_row(db, waiting)
    assert (row["status"], row["attempt"], row["error"]) == ("running", 1, None)
    go(db, "busy")
    wait_status(db, [busy, waiting])
    assert job_row(db, waiting)["attempt"] == 1
    assert events(db, "waiting") == 1
    assert "rescued" not in worker.log()


def test_only_claims_job_names_it_has_handlers_for(start_worker, ledger, dbos, db):
    start_worker(HANDLERS, *FAST, env=ledger)
    stranger, known = dbos.queue.enqueue_many(
        [("nobody-handles-this", {"key": "s"}), ("record", {"key": "k"})]
    )
    wait_status(db, [known])
    # A later job too, so the worker has claimed again since.
    later = dbos.queue.enqueue("record", {"key": "later"})
    wait_status(db, [later])
    row = job_row(db, stranger)
    assert (row["status"], row["attempt"], row["locked_by"]) == ("pending", 0, None)


def test_listen_wakes_an_idle_worker_at_once(start_worker, ledger, dbos, db):
    start_worker(HANDLERS, "--poll-interval", "60000", "--worker-id", "w-listen", env=ledger)
    for n in range(3):
        wait_idle(db, "w-listen")
        job_id = dbos.queue.enqueue("record", {"key": f"l{n}"})
        wait_status(db, [job_id], timeout=5)
        row = job_row(db, job_id)
        assert seconds(row["started_at"] - row["created_at"]) < 0.5, row


def test_scheduled_job_starts_on_time_without_a_notify_when_due(start_worker, ledger, dbos, db):
    start_worker(HANDLERS, "--poll-interval", "60000", "--worker-id", "w-sched", env=ledger)
    wait_idle(db, "w-sched")
    # One statement: the job due now wakes the worker (NOTIFY); nothing tells it when
    # the second one falls due.
    now_id, later_id = dbos.queue.enqueue_many(
        [
            JobSpec("record", {"key": "now"}),
            JobSpec("record", {"key": "later"}, scheduled_for=timedelta(seconds=1)),
        ]
    )
    wait_status(db, [now_id], timeout=5)
    assert status(db, later_id) == "pending"
    wait_status(db, [later_id], timeout=5)
    row = job_row(db, later_id)
    assert 1.0 <= seconds(row["started_at"] - row["created_at"]) < 1.3, row


def test_scheduled_job_enqueued_alone_starts_on_time_on_an_idle_worker(
    start_worker, ledger, dbos, db
):
    start_worker(HANDLERS, "--poll-interval", "60000", "--worker-id", "w-alone", env=ledger)
    wait_idle(db, "w-alone")
    job_id = dbos.queue.enqueue("record", {"key": "alone"}, timedelta(seconds=1))
    wait_status(db, [job_id], timeout=2.5)
    row = job_row(db, job_id)
    assert 1.0 <= seconds(row["started_at"] - row["created_at"]) < 1.3, row


# -- cancellation ------------------------------------------------------------------------


def test_cancelled_pending_job_never_runs(start_worker, ledger, dbos, db):
    start_worker(HANDLERS, *FAST, env=ledger)
    job_id = dbos.queue.enqueue("record", {"key": "doomed"}, timedelta(seconds=0.5))
    assert dbos.queue.cancel_job(job_id) == "cancelled"
    # A job due after the cancelled one would have been: once it ran, the other would have.
    marker = dbos.queue.enqueue("record", {"key": "marker"}, timedelta(seconds=0.7))
    wait_status(db, [marker])
    row = job_row(db, job_id)
    assert (row["status"], row["attempt"]) == ("cancelled", 0)
    assert events(db, "doomed") == 0


def test_cancelled_prefetched_job_never_starts(start_worker, ledger, dbos, db):
    start_worker(HANDLERS, "--concurrency", "1", "--prefetch", "2", *FAST, env=ledger)
    blocker, waiting = dbos.queue.enqueue_many(
        [("progress-then-wait", {"key": "blocker"}), ("record", {"key": "waiting"})]
    )
    wait_event(db, "blocker")
    wait_for(lambda: status(db, waiting) == "running", message="the second job to be prefetched")
    assert dbos.queue.cancel_job(waiting) == "cancel_requested"
    wait_status(db, [waiting], "cancelled", timeout=3)
    go(db, "blocker")
    wait_status(db, [blocker])
    assert events(db, "waiting") == 0


def test_cancel_running_jobs_async_task_cancelled_sync_report_raises(
    start_worker, ledger, dbos, db
):
    start_worker(HANDLERS, *FAST, env=ledger)
    ids = dbos.queue.enqueue_many(
        [("cancel-me-async", {"key": "a"}), ("cancel-me-sync", {"key": "s"})]
    )
    wait_event(db, "a")
    wait_event(db, "s")
    started = time.monotonic()
    assert [dbos.queue.cancel_job(i) for i in ids] == ["cancel_requested"] * 2
    wait_status(db, ids, "cancelled", timeout=5)
    # The listener hears the cancel at once; heartbeats (every 15 s here) are not needed.
    assert time.monotonic() - started < 2
    for key in ("a", "s"):
        assert events(db, key, "cancelled") == 1, key  # the handler saw it
        assert events(db, key, "ran") == 0, key
    for job_id in ids:
        assert job_row(db, job_id)["error"].startswith("JobCancelled")


def test_without_listen_jobs_are_polled_and_cancels_come_with_the_heartbeat(
    start_worker, ledger, dbos, db
):
    worker = start_worker(
        HANDLERS,
        *("--no-listen", "--poll-interval", "200", "--lease-seconds", "2"),
        *("--worker-id", "w-poll"),
        env=ledger,
    )
    wait_for(lambda: "claimer" in purposes(db, "w-poll"), message="the worker's claimer")
    assert "listener" not in purposes(db, "w-poll")
    ids = dbos.queue.enqueue_many(
        [("cancel-me-async", {"key": "a"}), ("cancel-me-sync", {"key": "s"})]
    )
    wait_event(db, "a")
    wait_event(db, "s")
    started = time.monotonic()
    assert [dbos.queue.cancel_job(i) for i in ids] == ["cancel_requested"] * 2
    wait_status(db, ids, "cancelled", timeout=5)
    # Heartbeats every lease / 4 = 0.5 s carry the news.
    assert time.monotonic() - started < 1.5
    assert events(db, "a", "cancelled") == events(db, "s", "cancelled") == 1
    assert worker.process.poll() is None


# -- shutdown and crashes ----------------------------------------------------------------


def test_sigterm_drains_running_jobs_and_releases_prefetched_ones(start_worker, ledger, dbos, db):
    worker = start_worker(HANDLERS, "--concurrency", "2", "--prefetch", "3", *FAST, env=ledger)
    ids = dbos.queue.enqueue_many(
        [
            ("progress-then-wait", {"key": "r1"}),
            ("progress-then-wait", {"key": "r2"}),
            *[("record", {"key": f"p{n}"}) for n in range(3)],
        ]
    )
    running, prefetched = ids[:2], ids[2:]
    wait_event(db, "r1")
    wait_event(db, "r2")
    wait_status(db, ids, "running")  # the three others claimed ahead, not started
    worker.signal(signal.SIGTERM)
    # Released at once, while the running jobs still run.
    wait_status(db, prefetched, "pending", timeout=5)
    assert [status(db, i) for i in running] == ["running", "running"]
    assert worker.process.poll() is None
    go(db, "r1", "r2")
    assert worker.wait(15) == 0
    wait_status(db, running)
    for job_id in prefetched:
        row = job_row(db, job_id)
        assert (row["status"], row["attempt"], row["locked_by"]) == ("pending", 0, None)
    assert scalar(db, "select count(*) from dbos.job_queue where status = 'running'") == 0
    assert sum(events(db, f"p{n}") for n in range(3)) == 0


def test_shutdown_timeout_releases_hanging_jobs_and_exits(start_worker, ledger, dbos, db):
    worker = start_worker(HANDLERS, "--shutdown-timeout", "1", *FAST, env=ledger)
    ids = dbos.queue.enqueue_many([("hang", {"key": "h"}), ("hang-async", {"key": "ha"})])
    wait_event(db, "h")
    wait_event(db, "ha")
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    assert time.monotonic() - started < 4
    for job_id in ids:
        row = job_row(db, job_id)
        assert (row["status"], row["attempt"], row["locked_by"]) == ("pending", 0, None)


def test_jobs_of_a_killed_worker_are_completed_by_another_after_the_lease(
    start_worker, ledger, dbos, db
):
    lease = ("--lease-seconds", "2", "--retry-delay-ms", "50")
    doomed = start_worker(HANDLERS, *lease, "--worker-id", "w-doomed", env=ledger)
    job_id = dbos.queue.enqueue("hangs-the-first-time", {"key": "k"})
    wait_event(db, "k")
    assert job_row(db, job_id)["locked_by"] == "w-doomed"
    # The survivor idles with a long poll: it must pick the job up because it rescued it.
    start_worker(HANDLERS, *lease, "--poll-interval", "60000", "--worker-id", "w-ok", env=ledger)
    wait_idle(db, "w-ok")
    doomed.signal(signal.SIGKILL)
    doomed.wait(5)
    killed = time.monotonic()
    wait_status(db, [job_id], timeout=8)
    # Lease (2 s from the last heartbeat) + a rescue interval (0.5 s) + the backoff.
    assert time.monotonic() - killed < 4
    row = job_row(db, job_id)
    assert (row["attempt"], row["locked_by"]) == (2, "w-ok")
    assert "lease expired" in row["error"]
    pids = db.execute("select distinct pid from ledger where job_key = 'k'").fetchall()
    assert len(pids) == 2


def test_reconnects_after_its_connections_are_terminated(start_worker, ledger, dbos, db):
    worker = start_worker(HANDLERS, "--poll-interval", "60000", "--worker-id", "w-rc", env=ledger)
    first = dbos.queue.enqueue("record", {"key": "before"})
    wait_status(db, [first])
    during = dbos.queue.enqueue("progress-then-wait", {"key": "during"})
    wait_event(db, "during")
    expected = ["claimer", "completer", "heartbeater", "listener"]
    wait_for(
        lambda: purposes(db, "w-rc") == expected,
        message="the worker's four connections",
    )
    killed = db.execute(
        """
        select pg_terminate_backend(pid) from pg_stat_activity
        where datname = current_database() and application_name like 'pgstack%%'
          and application_name like '%% w-rc'
        """
    ).fetchall()
    assert killed == [(True,)] * 4
    ids = dbos.queue.enqueue_many(
        [(name, {"key": f"after-{name}"}) for name in ("sync-with-progress", "async-payload-only")]
    )
    go(db, "during")
    wait_status(db, [*ids, during], timeout=10)
    # The job that ran through the outage kept its claim: completed on its first attempt.
    assert job_row(db, during)["attempt"] == 1
    assert events(db, "during", "ran") == 1
    # The listener listens again: an idle worker still wakes at once.
    wait_idle(db, "w-rc")
    job_id = dbos.queue.enqueue("record", {"key": "later"})
    wait_status(db, [job_id], timeout=5)
    row = job_row(db, job_id)
    assert seconds(row["started_at"] - row["created_at"]) < 0.5
    assert "reconnected" in worker.log()
    assert worker.process.poll() is None
