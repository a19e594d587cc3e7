"""`PgStackDBOS.start()` / `stop()`: the worker inside the caller's process, as on the
reference page: `queue.register(...)`, `start(poll_interval_ms)`, `stop()`."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from conftest import scalar, wait_for
from pgstack import ConfigurationError
from pgstack.dbos import PgStackDBOS


def statuses(db, ids):
    return [scalar(db, "select status from dbos.job_queue where id = %s", (i,)) for i in ids]


def test_start_returns_at_once_and_runs_registered_handlers(dbos, db):
    seen: list[tuple[str, object]] = []
    lock = threading.Lock()

    def plain(payload):
        with lock:
            seen.append(("plain", payload))

    dbos.queue.register("plain", plain)

    @dbos.queue.register("decorated")
    async def decorated(payload, report_progress):
        await report_progress(10, "decorated")
        with lock:
            seen.append(("decorated", payload))

    started = time.monotonic()
    dbos.start(poll_interval_ms=100)
    assert time.monotonic() - started < 3
    workers = [t for t in threading.enumerate() if t.name == "pgstack-worker"]
    assert len(workers) == 1
    assert workers[0].is_alive()

    ids = [dbos.queue.enqueue("plain", {"n": 1}), dbos.queue.enqueue("decorated", [2])]
    wait_for(lambda: statuses(db, ids) == ["completed"] * 2, message="both jobs to complete")
    assert sorted(seen, key=str) == [("decorated", [2]), ("plain", {"n": 1})]

    dbos.stop()
    assert not workers[0].is_alive()
    # Stopped: a new job stays pending.
    later = dbos.queue.enqueue("plain", {"n": 3})
    assert statuses(db, [later]) == ["pending"]
    # And start() works again after stop().
    dbos.start(poll_interval_ms=100)
    wait_for(lambda: statuses(db, [later]) == ["completed"], message="the job after a restart")


def test_stop_waits_for_a_running_job(dbos, db):
    started = threading.Event()
    finished = threading.Event()

    @dbos.queue.register("takes-a-while")
    async def takes_a_while(payload):
        started.set()
        await asyncio.sleep(0.5)
        finished.set()

    dbos.start(poll_interval_ms=100)
    job_id = dbos.queue.enqueue("takes-a-while", {})
    assert started.wait(10)
    assert not finished.is_set()
    dbos.stop()
    assert finished.is_set()
    # Its completion was written before stop() returned.
    assert statuses(db, [job_id]) == ["completed"]


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_start_without_the_schema_raises_configuration_error(empty_database_url):
    """Raised by start(), in the caller's thread; not also a traceback from the worker's."""
    with PgStackDBOS(connection_string=empty_database_url) as dbos:
        dbos.queue.register("anything", lambda payload: None)
        started = time.monotonic()
        with pytest.raises(ConfigurationError, match=r"no pgstack schema.*pgstack migrate"):
            dbos.start(poll_interval_ms=100)
        assert time.monotonic() - started < 5
