"""The fault-injection suite's tools: databases (on the shared server or a private, throwaway
PostgreSQL 15 cluster), real `pgstack-run` worker processes, the ledger, and the figures
every scenario reports.

Nothing here waits a guessed time: every wait is for a condition, with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import make_conninfo

from pgstack.client import JobQueue, JobSpec
from pgstack.migrate import migrate

HERE = Path(__file__).resolve().parent
HANDLERS = HERE / "chaos_handlers.py"
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent
ADMIN_URL = os.environ.get("PGSTACK_TEST_ADMIN_URL", "postgresql:///postgres")
PG_BIN = Path(os.environ.get("CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))
SHARED_LOG = Path(os.environ.get("CHAOS_SHARED_LOG", "/var/log/postgresql/postgresql-15-main.log"))

T = TypeVar("T")

LEDGER_SCHEMA = """
create table chaos_enqueued (
  job_key text primary key,
  job_id bigint not null unique,
  enqueued_at timestamptz not null default clock_timestamp()
);
create table chaos_ledger (
  job_key text not null,
  event text not null,
  pid int not null,
  detail text,
  at timestamptz not null default clock_timestamp()
);
create index on chaos_ledger (job_key);
create table chaos_go (
  job_key text not null,
  pid int not null,
  action text not null,
  primary key (job_key, pid)
);
"""


class ScenarioFailed(AssertionError):
    """A check of a scenario failed; the message says which and with what figures."""


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float,
    message: str,
    interval: float = 0.05,
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ScenarioFailed(f"timed out after {timeout:g} s waiting for {message}")
        time.sleep(interval)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioFailed(message)


def scalar(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- servers -------------------------------------------------------------------------


class Server:
    """Where a scenario's database lives."""

    admin_url: str
    name: str

    def connect_admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10)

    def url(self, dbname: str) -> str:
        return make_conninfo(self.admin_url, dbname=dbname)

    def create_database(self, name: str, template: str | None = None) -> str:
        suffix = f' template "{template}"' if template else ""
        with self.connect_admin() as admin:
            admin.execute(f'create database "{name}"{suffix}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.connect_admin() as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')

    def log_lines(self, since: datetime, dbname: str) -> list[str]:
        raise NotImplementedError


class SharedServer(Server):
    """The developers' shared server: databases of our own only, never a restart."""

    name = "shared"

    def __init__(self) -> None:
        self.admin_url = ADMIN_URL

    def log_lines(self, since: datetime, dbname: str) -> list[str]:
        """Lines of the shared server's log written after ``since`` that name our database
        (its prefix is ``%m [%p] %q%u@%d``). Empty when the log cannot be read."""
        try:
            text = SHARED_LOG.read_text(errors="replace")
        except OSError:
            return []
        return _lines_since(text, since, lambda line: f"@{dbname} " in line)


def _lines_since(text: str, since: datetime, keep: Callable[[str], bool]) -> list[str]:
    stamp = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) UTC ")
    lines = []
    for line in text.splitlines():
        match = stamp.match(line)
        if not match:
            continue
        at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)
        if at >= since and keep(line):
            lines.append(line)
    return lines


class PrivateCluster(Server):
    """A throwaway PostgreSQL 15 cluster of our own, on a free port and a socket in its
    own directory, which a scenario may restart or kill. Removed by :meth:`remove`."""

    name = "private"

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pgstack-chaos-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "server.log"
        self.port = free_port()
        self.admin_url = make_conninfo(
            host=str(self.root), port=str(self.port), user="postgres", dbname="postgres"
        )
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# pgstack chaos suite\n"
                "listen_addresses = ''\n"
                "max_connections = 200\n"
                "fsync = on\n"
                "deadlock_timeout = '200ms'\n"
                "log_lock_waits = on\n"
                "log_line_prefix = '%m [%p] %q%u@%d %e '\n"
                "log_min_messages = warning\n"
            )
        self.start()

    def _options(self) -> str:
        return f"-p {self.port} -k {self.root}"

    def start(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            result = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log_path),
                "-o", self._options(), "-w", "start", check=False,
            )  # fmt: skip
            if result.returncode == 0:
                return
            # After a killed postmaster, its orphaned backends may hold the shared memory
            # a moment longer: try again until the deadline.
            if time.monotonic() > deadline:
                raise ScenarioFailed(f"private cluster did not start: {result.stderr.strip()}")
            time.sleep(0.2)

    def restart(self, mode: str = "immediate") -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", self._options(),
            "-m", mode, "-w", "restart",
        )  # fmt: skip

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def kill_postmaster(self) -> None:
        """SIGKILL the postmaster, as a crash of the machine's database would."""
        os.kill(self.postmaster_pid(), signal.SIGKILL)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_lines(self, since: datetime, dbname: str) -> list[str]:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return _lines_since(text, since, lambda line: True)


# -- a scenario's database -----------------------------------------------------------


class Database:
    """A fresh migrated database for one scenario, with the ledger tables."""

    def __init__(self, server: Server, template: str | None, label: str) -> None:
        self.server = server
        self.name = f"pgstack_chaos_{label}_{uuid.uuid4().hex[:8]}"
        self.url = server.create_database(self.name, template)
        if template is None:
            migrate(self.url)
        self.started_at = datetime.now(timezone.utc)
        with self.connect() as conn:
            conn.execute(LEDGER_SCHEMA)

    def connect(self, application_name: str = "chaos-runner") -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.url, autocommit=True, application_name=application_name, connect_timeout=10
        )

    def drop(self) -> None:
        self.server.drop_database(self.name)

    def enqueue(
        self,
        conn: psycopg.Connection[Any],
        specs: list[tuple[str, JobSpec]],
    ) -> list[int]:
        """Enqueue jobs through the client and record their keys in ``chaos_enqueued``, in
        one transaction: a job exists if and only if it is recorded."""
        queue = JobQueue(_NoPool())
        with conn.transaction():
            ids = queue.enqueue_many([spec for _, spec in specs], conn=conn)
            conn.execute(
                "insert into chaos_enqueued (job_key, job_id) "
                "select * from unnest(%s::text[], %s::bigint[])",
                ([key for key, _ in specs], ids),
            )
        return ids

    def deadlocks(self) -> list[str]:
        """Each deadlock the server logged for this database, with its DETAIL, CONTEXT
        and STATEMENT lines (same timestamp and pid)."""
        lines = self.server.log_lines(self.started_at, self.name)
        found = []
        for line in lines:
            if "deadlock detected" in line:
                prefix = line.split(" ERROR:")[0].rsplit(" ", 1)[0]
                found.append(" | ".join(x for x in lines if x.startswith(prefix)))
        return found


class _NoPool:
    """The client is only ever given ``conn=`` here."""

    def connection(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        raise RuntimeError("pass conn=")


def spec(key: str, name: str = "work", **payload: Any) -> tuple[str, JobSpec]:
    options = {
        option: payload.pop(option)
        for option in ("max_attempts", "queue_name", "priority", "scheduled_for")
        if option in payload
    }
    return key, JobSpec(name, {"k": key, **payload}, **options)


# -- accounting ----------------------------------------------------------------------

ACCOUNT = """
with runs as (
  select job_key, count(*) as runs
  from chaos_ledger where event = 'start' group by job_key
)
select
  count(*) as enqueued,
  count(*) filter (where j.status = 'completed') as completed,
  count(*) filter (where j.status = 'cancelled') as cancelled,
  count(*) filter (where d.id is not null) as dead,
  count(*) filter (where j.status in ('pending', 'running')) as unfinished,
  count(*) filter (where j.id is null and d.id is null) as vanished,
  count(*) filter (where j.status = 'completed' and r.runs is null) as completed_unrun,
  count(*) filter (where j.id is not null and d.id is not null) as in_both,
  count(*) filter (where r.runs > 1) as duplicates,
  count(*) filter (where d.id is not null and r.runs is null) as dead_unrun
from chaos_enqueued as e
left join dbos.job_queue as j on j.id = e.job_id
left join dbos.failed_jobs as d on d.id = e.job_id
left join runs as r on r.job_key = e.job_key
"""


@dataclass
class Account:
    enqueued: int
    completed: int
    cancelled: int
    dead: int
    unfinished: int
    vanished: int
    completed_unrun: int
    in_both: int
    duplicates: int
    dead_unrun: int

    @property
    def finished(self) -> int:
        return self.completed + self.cancelled + self.dead

    @property
    def lost(self) -> int:
        """Jobs that did not end as the queue promises: still waiting or running at the
        end, vanished from both tables, completed without ever running, or in both."""
        return self.unfinished + self.vanished + self.completed_unrun + self.in_both


def account(conn: psycopg.Connection[Any]) -> Account:
    row = conn.execute(ACCOUNT).fetchone()
    assert row is not None
    return Account(*(int(v or 0) for v in row))


def invariant_violations(conn: psycopg.Connection[Any]) -> list[str]:
    """The tables' invariants, as the suite reads them (beyond the CHECK constraints)."""
    checks = {
        "a job in both job_queue and failed_jobs": """
            select count(*) from dbos.job_queue j join dbos.failed_jobs d using (id)""",
        "attempt > max_attempts": """
            select count(*) from dbos.job_queue where attempt > max_attempts""",
        "running without a lease or holder": """
            select count(*) from dbos.job_queue
            where status = 'running' and (lease_expires_at is null or locked_by is null)""",
        "a lease on a job not running": """
            select count(*) from dbos.job_queue
            where status <> 'running' and lease_expires_at is not null""",
        "dead letter with attempts left and no permanent reason": """
            select count(*) from dbos.failed_jobs where attempt < max_attempts
              and error not like 'PermanentError%%'""",
    }
    found = []
    for what, query in checks.items():
        count = scalar(conn, query)
        if count:
            found.append(f"{count} x {what}")
    return found


def runs_by_job(conn: psycopg.Connection[Any]) -> dict[str, list[int]]:
    """Each job's runs, in order: the pids that started it."""
    runs: dict[str, list[int]] = {}
    for key, pid in conn.execute(
        "select job_key, pid from chaos_ledger where event = 'start' order by at, ctid"
    ):
        runs.setdefault(key, []).append(pid)
    return runs


# -- workers -------------------------------------------------------------------------


class Worker:
    """A real `pgstack-run` of the chaos handlers, logging to a file of the scenario."""

    def __init__(
        self,
        url: str,
        worker_id: str,
        log_dir: Path,
        args: Iterable[str] = (),
        handlers: Path = HANDLERS,
    ) -> None:
        self.worker_id = worker_id
        self.log_path = log_dir / f"{worker_id}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                str(BIN / "pgstack-run"),
                str(handlers),
                "--database-url",
                url,
                "--worker-id",
                worker_id,
                "--keep",
                "forever",
                *args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "CHAOS_LEDGER_URL": url, "PYTHONUNBUFFERED": "1"},
        )
        self.pid = self.process.pid
        self.stopped = False

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_started(self, timeout: float = 30) -> Worker:
        wait_for(
            lambda: "started:" in self.log() or self.process.poll() is not None,
            timeout=timeout,
            message=f"worker {self.worker_id} to start",
        )
        if "started:" not in self.log():
            raise ScenarioFailed(
                f"worker {self.worker_id} exited ({self.process.returncode}): {self.log()[-2000:]}"
            )
        return self

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            self.process.send_signal(signum)
        if signum == signal.SIGSTOP:
            self.stopped = True
        elif signum == signal.SIGCONT:
            self.stopped = False

    def kill(self) -> None:
        if self.alive():
            if self.stopped:
                self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ScenarioFailed(f"worker {self.worker_id} did not exit in {timeout:g} s") from None

    def close(self) -> None:
        self.kill()
        self._log.close()


class Workers:
    """The workers of one scenario; every one still alive is SIGKILLed at the end."""

    def __init__(self, url: str, log_dir: Path, args: Iterable[str] = ()) -> None:
        self.url = url
        self.log_dir = log_dir
        self.args = list(args)
        self.all: list[Worker] = []
        self._count = 0

    def start(self, *, extra: Iterable[str] = (), wait: bool = True) -> Worker:
        self._count += 1
        worker = Worker(self.url, f"chaos-w{self._count}", self.log_dir, [*self.args, *extra])
        self.all.append(worker)
        if wait:
            worker.wait_started()
        return worker

    def alive(self) -> list[Worker]:
        return [w for w in self.all if w.alive()]

    def count_in_logs(self, text: str) -> int:
        return sum(w.log().count(text) for w in self.all)

    def close(self) -> None:
        for worker in self.all:
            worker.close()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def worker_backends(conn: psycopg.Connection[Any], worker_id: str) -> list[int]:
    return [
        pid
        for (pid,) in conn.execute(
            """
            select pid from pg_stat_activity
            where datname = current_database() and application_name like %s
            """,
            (f"pgstack% {worker_id}",),
        )
    ]


class Observer:
    """The runner's view of a scenario's database, on a connection that is opened again
    whenever the server restarts or cuts it."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._conn: psycopg.Connection[Any] | None = None

    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self.database.connect()
        return self._conn

    def run(self, fn: Callable[[psycopg.Connection[Any]], T], timeout: float = 60) -> T:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return fn(self.conn())
            except psycopg.OperationalError:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def account(self) -> Account:
        return self.run(account)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def drain(
    observer: Observer,
    timeout: float,
    *,
    during: Callable[[Account], None] | None = None,
    interval: float = 0.1,
) -> Account:
    """Wait until every enqueued job has ended (or the deadline passes), calling
    ``during`` with the figures on each look; returns the final figures either way."""
    deadline = time.monotonic() + timeout
    while True:
        figures = observer.account()
        if figures.unfinished == 0 or time.monotonic() > deadline:
            return figures
        if during is not None:
            during(figures)
        time.sleep(interval)


# -- figures -------------------------------------------------------------------------


@dataclass
class Figures:
    scenario: str
    title: str
    enqueued: int = 0
    completed: int = 0
    cancelled: int = 0
    dead: int = 0
    duplicates: int = 0
    lost: int = 0
    seconds: float = 0.0
    passed: bool = False
    failures: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def take(self, figures: Account) -> None:
        self.enqueued = figures.enqueued
        self.completed = figures.completed
        self.cancelled = figures.cancelled
        self.dead = figures.dead
        self.duplicates = figures.duplicates
        self.lost = figures.lost
        self.extra.update(
            unfinished=figures.unfinished,
            vanished=figures.vanished,
            completed_unrun=figures.completed_unrun,
            in_both=figures.in_both,
            dead_unrun=figures.dead_unrun,
        )

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            self.failures.append(message)


@dataclass
class Context:
    """What a scenario gets: the shared server and its migrated template, the private
    cluster (made on first use), the size of the run and where logs go."""

    short: bool
    shared: SharedServer
    template: str
    results: Path
    _private: PrivateCluster | None = None
    _private_template: str | None = None

    def log_dir(self, scenario: str) -> Path:
        path = self.results / "logs" / scenario
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def shared_database(self, label: str) -> Database:
        return Database(self.shared, self.template, label)

    def private(self) -> PrivateCluster:
        if self._private is None:
            cluster = PrivateCluster()
            self._private = cluster
            cluster.init()
        return self._private

    def private_database(self, label: str) -> Database:
        cluster = self.private()
        if self._private_template is None:
            name = "pgstack_chaos_template"
            migrate(cluster.create_database(name))
            self._private_template = name
        return Database(cluster, self._private_template, label)

    def close(self) -> None:
        if self._private is not None:
            self._private.remove()
            self._private = None


@contextlib.contextmanager
def scenario_database(database: Database) -> Iterator[Database]:
    try:
        yield database
    finally:
        with contextlib.suppress(psycopg.Error):
            database.drop()
