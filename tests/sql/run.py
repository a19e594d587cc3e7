"""Run the pgTAP suite (tests/sql/*.sql) with pg_prove against a fresh database.

The database is built by `pgstack migrate`, gets the pgtap extension, and is dropped
afterwards. The server is PGSTACK_TEST_ADMIN_URL (default: the local socket).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgstack.migrate import migrate

HERE = Path(__file__).resolve().parent
ADMIN_URL = os.environ.get("PGSTACK_TEST_ADMIN_URL", "postgresql:///postgres")


def pg_prove_command(url: str, files: list[str]) -> list[str]:
    """pg_prove takes psql-style options, not a connection string."""
    params = conninfo_to_dict(url)
    command = ["pg_prove", "--failures", "--dbname", str(params["dbname"])]
    for key, flag in (("host", "--host"), ("port", "--port"), ("user", "--username")):
        if params.get(key):
            command += [flag, str(params[key])]
    return [*command, *sys.argv[1:], *files]


def pg_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    password = conninfo_to_dict(url).get("password")
    if password:
        env["PGPASSWORD"] = str(password)
    return env


def main() -> int:
    files = sorted(str(p) for p in HERE.glob("*.sql"))
    if not files:
        print("tests/sql: no pgTAP test files found", file=sys.stderr)
        return 1
    if shutil.which("pg_prove") is None:
        print(
            "tests/sql: pg_prove not found: install the Debian package "
            "libtap-parser-sourcehandler-pgtap-perl (or run .ci/run as root)",
            file=sys.stderr,
        )
        return 1
    name = f"pgstack_sqltest_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    url = make_conninfo(ADMIN_URL, dbname=name)
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            try:
                conn.execute("create extension pgtap")
            except psycopg.errors.FeatureNotSupported as error:
                print(
                    f"tests/sql: pgTAP is not installed on the server ({error}); install the "
                    "Debian package postgresql-15-pgtap (or run .ci/run as root)",
                    file=sys.stderr,
                )
                return 1
        return subprocess.run(pg_prove_command(url, files), env=pg_env(url), check=False).returncode
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


if __name__ == "__main__":
    sys.exit(main())
