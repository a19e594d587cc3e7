"""Lending connections to the client: a lazily opened pool, or a single connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from pgstack.config import describe

# Every connection of pgstack says who it is in pg_stat_activity.
APPLICATION_NAME = "pgstack"


def connect_kwargs(application_name: str = APPLICATION_NAME) -> dict[str, Any]:
    """Options for every connection: autocommit, a name, and TCP keepalives so a
    half-open connection is noticed in seconds rather than hours."""
    return {
        "autocommit": True,
        "application_name": application_name,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }


class LazyPool:
    """A psycopg pool opened on first use, so creating a client never connects."""

    def __init__(self, conninfo: str, *, max_size: int = 4) -> None:
        self.conninfo = conninfo
        self._max_size = max_size
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._lock = threading.Lock()

    def _open(self) -> ConnectionPool[psycopg.Connection[Any]]:
        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.conninfo,
                    min_size=1,
                    max_size=self._max_size,
                    kwargs=connect_kwargs(),
                    open=True,
                    name=f"pgstack {describe(self.conninfo)}",
                )
            return self._pool

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._open().connection() as conn:
            yield conn

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


class SingleConnection:
    """One connection, opened on first use: for the CLI's one-shot commands."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._conn: psycopg.Connection[Any] | None = None

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.conninfo, **connect_kwargs())
        yield self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
