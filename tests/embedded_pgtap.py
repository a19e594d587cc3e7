#!/usr/bin/env python3
"""Make pgTAP loadable into pgstack's embedded PostgreSQL, for the test suite.

pgTAP is plain SQL (no C library), so the files Debian ships for the system
PostgreSQL (``postgresql-NN-pgtap``) work in the embedded server once they sit
in its ``share/extension`` folder. This is test tooling, kept out of the
package on purpose: it copies files into the installed wheel and depends on a
Debian package on the developer's or CI's machine.

As a script it starts the embedded server (data in ``PGSTACK_EMBEDDED_DIR`` or
the default), installs the files, runs ``CREATE EXTENSION IF NOT EXISTS pgtap``
in database ``pgstack`` and prints shell ``export`` lines, so that::

    eval "$(python tests/embedded_pgtap.py)"
    pg_prove --psql-bin "$PGSTACK_PSQL" tests/sql/*.sql

runs the SQL tests against it (PGHOST is the socket folder).

With ``--`` and a command, it runs the command instead, with
``PGSTACK_TEST_ADMIN_URL`` set to the embedded server (its ``postgres``
database), so the test suites create their databases there::

    python tests/embedded_pgtap.py -- pytest tests/python      # what `make test PG=18` does

That server keeps its data in ``<default data folder>-tests`` (as root
``/var/lib/pgstack/root-tests``), apart from the one `make demo` uses, unless
``PGSTACK_EMBEDDED_DIR`` says otherwise; it keeps running afterwards (stop it with
``PGSTACK_EMBEDDED_DIR=... pgstack embedded stop``; `.ci/run` does).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

try:
    from pgstack.embedded import ENV_DIR, bin_directory, data_directory, database_url
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    from pgstack.embedded import ENV_DIR, bin_directory, data_directory, database_url

SOURCES = Path("/usr/share/postgresql")  # Debian: <major>/extension/pgtap*


def pgtap_source() -> Path:
    """The extension folder of the newest system PostgreSQL that has pgTAP."""
    found = [c.parent for c in SOURCES.glob("*/extension/pgtap.control")]
    if not found:
        raise FileNotFoundError(
            f"pgTAP not found under {SOURCES}: apt-get install postgresql-15-pgtap"
        )

    def major(path: Path) -> int:
        digits = re.sub(r"\D", "", path.parent.name)
        return int(digits or 0)

    return max(found, key=major)


def extension_directory() -> Path:
    """The embedded server's share/extension folder."""
    sharedir = subprocess.run(
        [str(bin_directory() / "pg_config"), "--sharedir"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return Path(sharedir) / "extension"


def install_pgtap() -> None:
    """Copy pgtap.control and pgtap--*.sql into the embedded server (idempotent)."""
    source, dest = pgtap_source(), extension_directory()
    for src in [source / "pgtap.control", *sorted(source.glob("pgtap--*.sql"))]:
        target = dest / src.name
        if not target.exists() or target.read_bytes() != src.read_bytes():
            shutil.copyfile(src, target)
            target.chmod(0o644)  # read by the server's own OS user when run as root


def run_with_test_server(command: list[str]) -> int:
    """Run ``command`` with the test suites pointed at the embedded server."""
    from psycopg.conninfo import make_conninfo

    if not os.environ.get(ENV_DIR):
        default = data_directory()
        os.environ[ENV_DIR] = str(default.with_name(default.name + "-tests"))
    install_pgtap()
    admin = make_conninfo(database_url(), dbname="postgres")
    print(f"embedded_pgtap: tests on the embedded PostgreSQL in {os.environ[ENV_DIR]}", flush=True)
    env = {**os.environ, "PGSTACK_TEST_ADMIN_URL": admin}
    return subprocess.run(command, env=env, check=False).returncode


def main() -> None:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    if "--" in sys.argv:
        command = sys.argv[sys.argv.index("--") + 1 :]
        if not command:
            sys.exit("embedded_pgtap: give a command after --")
        sys.exit(run_with_test_server(command))
    install_pgtap()
    url = database_url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgtap")
    params = conninfo_to_dict(url)
    env = {
        "PGHOST": params["host"],
        "PGPORT": params["port"],
        "PGUSER": params["user"],
        "PGDATABASE": params["dbname"],
        "DATABASE_URL": url,
        "PGSTACK_PSQL": str(bin_directory() / "psql"),
    }
    for name, value in env.items():
        print(f"export {name}={shlex.quote(str(value))}")


if __name__ == "__main__":
    main()
