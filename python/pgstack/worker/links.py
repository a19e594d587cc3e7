"""Database connections of the worker that survive a restart of the server.

A link owns one connection and runs statements on it; when the connection is lost it
logs once, reconnects with exponential backoff, and runs the statement again. Every
statement the worker sends is safe to repeat: claims that were lost with the connection
come back through their leases, and completions, failures and heartbeats are fenced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import set_json_loads

from pgstack.config import redact_message
from pgstack.connections import connect_kwargs

logger = logging.getLogger("pgstack.worker")

FIRST_DELAY = 0.1
MAX_DELAY = 5.0
CONNECT_TIMEOUT = 5


def int_array(values: list[int]) -> str:
    """An array of integers as PostgreSQL's array text ('{1,2,3}'), for a parameter cast
    to bigint[] or int[]: built in one join, far cheaper than adapting a list per item."""
    return "{" + ",".join(map(str, values)) + "}"


def json_loads(data: str | bytes) -> Any:
    """jsonb to Python for the worker's connections: the default JSON decoder, without
    json.loads' encoding detection; an empty object (the default payload) costs nothing."""
    if data == b"{}":
        return {}
    return _decode(data if isinstance(data, str) else data.decode())


_decode = json.JSONDecoder().decode


class LinkGaveUp(Exception):
    """The link stopped retrying because the worker is shutting down."""


def _lost_connection(error: psycopg.Error) -> bool:
    return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)


def link_kwargs(purpose: str, worker_id: str, *, asynchronous_commit: bool) -> dict[str, Any]:
    """Connection options of a worker link. With ``asynchronous_commit`` its commits do
    not wait for the WAL flush: a crash of the server can undo the last fraction of a
    second of claims, completions, failures and heartbeats, which only makes those jobs
    run again (at least once, as always) and never loses one. Enqueues, made by
    clients, are never asynchronous."""
    kwargs = connect_kwargs(f"pgstack {purpose} {worker_id}"[:63])
    if asynchronous_commit:
        kwargs["options"] = "-c synchronous_commit=off"
    return kwargs


class AsyncLink:
    """One asyncio connection that reconnects with backoff."""

    def __init__(
        self, conninfo: str, purpose: str, worker_id: str, *, asynchronous_commit: bool = False
    ) -> None:
        self.conninfo = conninfo
        self.purpose = purpose
        self._kwargs = link_kwargs(purpose, worker_id, asynchronous_commit=asynchronous_commit)
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._down_since: float | None = None

    async def connection(
        self, give_up: Callable[[], bool] | None = None
    ) -> psycopg.AsyncConnection[Any]:
        delay = FIRST_DELAY
        while self._conn is None or self._conn.closed:
            try:
                self._conn = await psycopg.AsyncConnection.connect(
                    self.conninfo, connect_timeout=CONNECT_TIMEOUT, **self._kwargs
                )
                set_json_loads(json_loads, self._conn)
            except psycopg.Error as error:
                self._note_down(error)
                if give_up is not None and give_up():
                    raise LinkGaveUp(self.purpose) from error
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)
        self._note_up()
        return self._conn

    async def fetch(
        self,
        query: str,
        params: Any = None,
        *,
        give_up: Callable[[], bool] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Run ``query`` and return its rows. A lost connection (or a deadlock, or any
        other error that says "try again") is retried after reconnecting, until it works
        or ``give_up()`` says to stop (:class:`LinkGaveUp`). Any other database error
        is the statement's own: it is raised, for the caller to decide."""
        delay = FIRST_DELAY
        while True:
            conn = await self.connection(give_up)
            try:
                cursor = await conn.execute(query, params)
                return await cursor.fetchall() if cursor.description else []
            except psycopg.Error as error:
                if not _lost_connection(error):
                    raise
                self._note_down(error)
                await self.close()
                if give_up is not None and give_up():
                    raise LinkGaveUp(self.purpose) from error
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with contextlib.suppress(psycopg.Error, OSError, asyncio.TimeoutError):
                await asyncio.wait_for(conn.close(), timeout=2)

    def _note_down(self, error: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning(
                "%s: database connection lost, reconnecting: %s",
                self.purpose,
                redact_message(str(error).strip(), self.conninfo),
            )

    def _note_up(self) -> None:
        if self._down_since is not None:
            logger.warning(
                "%s: reconnected after %.1f s", self.purpose, time.monotonic() - self._down_since
            )
            self._down_since = None


class SyncLink:
    """The same, for the heartbeater's thread; its waits end early when ``stop`` is set."""

    def __init__(
        self,
        conninfo: str,
        purpose: str,
        worker_id: str,
        stop: threading.Event,
        *,
        asynchronous_commit: bool = False,
    ) -> None:
        self.conninfo = conninfo
        self.purpose = purpose
        self._kwargs = link_kwargs(purpose, worker_id, asynchronous_commit=asynchronous_commit)
        self._stop = stop
        self._conn: psycopg.Connection[Any] | None = None
        self._down_since: float | None = None
        self._delay = FIRST_DELAY

    def fetch(
        self, query: str, params: Any = None, *, settled: Callable[[], None] | None = None
    ) -> list[tuple[Any, ...]] | None:
        """Run ``query`` once; on failure log, drop the connection, wait the backoff and
        return ``None`` (the heartbeater simply tries again on its next tick).
        ``settled`` is called once the statement has run or failed, before any wait."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(
                    self.conninfo, connect_timeout=CONNECT_TIMEOUT, **self._kwargs
                )
            cursor = self._conn.execute(query, params)
            rows = cursor.fetchall() if cursor.description else []
        except psycopg.Error as error:
            if _lost_connection(error):
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    logger.warning(
                        "%s: database connection lost, reconnecting: %s",
                        self.purpose,
                        redact_message(str(error).strip(), self.conninfo),
                    )
                self.close()
            else:
                logger.error("%s: %s", self.purpose, redact_message(str(error), self.conninfo))
            if settled is not None:
                settled()
            self._stop.wait(self._delay)
            self._delay = min(self._delay * 2, MAX_DELAY)
            return None
        if self._down_since is not None:
            logger.warning(
                "%s: reconnected after %.1f s", self.purpose, time.monotonic() - self._down_since
            )
            self._down_since = None
        self._delay = FIRST_DELAY
        if settled is not None:
            settled()
        return rows

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                conn.close()
