"""PostgreSQL access for the harness: connection URLs, scratch databases, SQL."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class Server:
    """Where the benchmark databases live; every system gets databases on this server."""

    host: str = "/var/run/postgresql"
    port: int = 5432
    user: str = os.environ.get("PGUSER") or getpass.getuser()

    def url(self, database: str) -> str:
        # One URL form that libpq, asyncpg and node-postgres all read, for a
        # unix socket directory as well as a TCP host.
        if self.host.startswith("/"):
            return f"postgresql://{self.user}@/{database}?host={self.host}&port={self.port}"
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str) -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True)

    def create_database(self, name: str) -> None:
        with self.connect("postgres") as conn:
            conn.execute(f'create database "{name}"')

    def drop_database(self, name: str) -> None:
        # Only ever called with names this run created; FORCE ends our own
        # leftover sessions (a worker that did not exit) so the drop cannot hang.
        with self.connect("postgres") as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def execute(conn: psycopg.Connection, statements: Iterable[str]) -> None:
    for statement in statements:
        conn.execute(statement)


def fetch_int(conn: psycopg.Connection, sql: str, *params: object) -> int:
    """The single integer a query returns (0 for NULL or no row)."""
    row = conn.execute(sql, params).fetchone()
    return 0 if row is None or row[0] is None else int(row[0])
