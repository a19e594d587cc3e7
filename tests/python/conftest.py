"""Fixtures: a migrated template database per test session, and a fresh clone per test.

The server is PGSTACK_TEST_ADMIN_URL (default: the local socket); tests create their
own databases with unique names and drop them, so nothing depends on leftovers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pgstack.dbos import PgStackDBOS
from pgstack.migrate import migrate

ADMIN_URL = os.environ.get("PGSTACK_TEST_ADMIN_URL", "postgresql:///postgres")
HANDLERS = Path(__file__).resolve().parent / "handlers"
BIN = Path(sys.executable).parent


def _create_database(template: str | None = None) -> tuple[str, str]:
    name = f"pgstack_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        suffix = f' template "{template}"' if template else ""
        admin.execute(f'create database "{name}"{suffix}')
    return name, make_conninfo(ADMIN_URL, dbname=name)


def _drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    name, url = _create_database()
    try:
        migrate(url)
        yield name
    finally:
        _drop_database(name)


@pytest.fixture
def empty_database_url() -> Iterator[str]:
    """A database with nothing in it (not even the schema)."""
    name, url = _create_database()
    try:
        yield url
    finally:
        _drop_database(name)


@pytest.fixture
def database_url(template_database: str) -> Iterator[str]:
    """A fresh, migrated database of its own for this test."""
    name, url = _create_database(template_database)
    try:
        yield url
    finally:
        _drop_database(name)


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the test's database."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def dbos(database_url: str) -> Iterator[PgStackDBOS]:
    client = PgStackDBOS(connection_string=database_url, retry_delay_ms=50)
    try:
        yield client
    finally:
        client.close()


def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def scalar(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


class WorkerProcess:
    """A real `pgstack-run` in a subprocess, for signals and crashes."""

    def __init__(self, database_url: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.log_path = (
            Path(os.environ.get("TMPDIR", "/tmp")) / f"pgstack-worker-{uuid.uuid4().hex[:8]}.log"
        )
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [str(BIN / "pgstack-run"), *args, "--database-url", database_url],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def wait_until_logged(self, text: str, timeout: float = 15.0) -> None:
        wait_for(
            lambda: text in self.log() or self.process.poll() is not None,
            timeout=timeout,
            message=f"worker log line {text!r}",
        )
        assert text in self.log(), f"worker exited ({self.process.returncode}):\n{self.log()}"

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._log.close()
        self.log_path.unlink(missing_ok=True)


@pytest.fixture
def start_worker(database_url: str) -> Iterator[Callable[..., WorkerProcess]]:
    """``start_worker("handlers.py", "--concurrency", "4")``: handler files are looked up
    in tests/python/handlers; the worker is killed at the end of the test if still alive."""
    started: list[WorkerProcess] = []

    def start(handlers: str, *args: str, env: dict[str, str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(database_url, str(HANDLERS / handlers), *args, env=env)
        started.append(worker)
        worker.wait_until_logged("started:")
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def ledger(database_url: str, db: psycopg.Connection[Any]) -> dict[str, str]:
    """Table `ledger` for handlers/ledger.py; returns the env its worker needs."""
    db.execute(
        "create table ledger (job_key text, event text, pid int, at timestamptz default now())"
    )
    return {"PGSTACK_LEDGER_URL": database_url}
