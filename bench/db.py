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


def load_without_indexes(
    conn: psycopg.Connection, tables: list[str], statements: Iterable[str]
) -> None:
    """Run a bulk load with the tables' secondary indexes dropped, then rebuild them.

    One transaction; the indexes come back exactly as they were (their own
    DDL, from pg_get_indexdef).  Indexes that back a constraint (primary keys,
    unique constraints) stay in place.  Building an index once is several times
    faster than inserting a million rows into it one by one.
    """
    with conn.transaction():
        saved = conn.execute(
            """select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
               from pg_index i
               where i.indrelid = any(%s::regclass[])
                 and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)""",
            (tables,),
        ).fetchall()
        for name, _definition in saved:
            conn.execute(f"drop index {name}")
        execute(conn, statements)
        conn.execute("set local maintenance_work_mem = '256MB'")
        for _name, definition in saved:
            conn.execute(definition)


def fetch_int(conn: psycopg.Connection, sql: str, *params: object) -> int:
    """The single integer a query returns (0 for NULL or no row)."""
    row = conn.execute(sql, params).fetchone()
    return 0 if row is None or row[0] is None else int(row[0])
