"""Transactional handlers: the handler's writes and the job's completion commit in one
transaction, or not at all. Exactly once for effects inside this database; at least
once, as always, for everything else.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pgstack import queries
from pgstack.connections import connect_kwargs
from pgstack.payloads import to_json
from pgstack.registry import Handler
from pgstack.worker.held import HeldJob


class LeaseLost(Exception):
    """The completion was refused inside the handler's transaction (the job was rescued,
    claimed again or cancelled meanwhile), so its writes were rolled back."""


def _kwargs(worker_id: str) -> dict[str, Any]:
    kwargs = connect_kwargs(f"pgstack transactions {worker_id}"[:63])
    kwargs["autocommit"] = False
    return kwargs


class Transactions:
    """Connection pools for transactional handlers, opened only if some exist."""

    def __init__(self, conninfo: str, worker_id: str, size: int, lease_seconds: int) -> None:
        self._worker_id = worker_id
        self._lease_seconds = lease_seconds
        # Made in open(), inside the worker's event loop.
        self._async_pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._sync_pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._conninfo = conninfo
        self._size = size

    async def open(self) -> None:
        self._async_pool = AsyncConnectionPool(
            self._conninfo,
            min_size=0,
            max_size=self._size,
            kwargs=_kwargs(self._worker_id),
            open=False,
            check=AsyncConnectionPool.check_connection,
        )
        await self._async_pool.open()
        self._sync_pool = ConnectionPool(
            self._conninfo,
            min_size=0,
            max_size=self._size,
            kwargs=_kwargs(self._worker_id),
            open=True,
            check=ConnectionPool.check_connection,
        )

    async def close(self) -> None:
        if self._async_pool is not None:
            await self._async_pool.close(timeout=5)
        if self._sync_pool is not None:
            self._sync_pool.close(timeout=5)

    def _finish_params(self, job: HeldJob, result: Any) -> tuple[Any, ...]:
        result_json = (
            None if result is None else to_json(result, what=f"result of {job.describe()}")
        )
        return (job.id, self._worker_id, job.lease_token, result_json)

    def _progress_params(self, job: HeldJob) -> tuple[Any, ...]:
        # Written in the job's transaction, whose complete_job then holds the row: a
        # heartbeater's write still on its way lands before it, or finds the job done.
        return job.progress_params(self._lease_seconds)[1]

    async def run_async(self, handler: Handler, job: HeldJob) -> Any:
        assert self._async_pool is not None, "Transactions.open() first"
        async with self._async_pool.connection() as conn, conn.transaction():
            result = await handler.fn(job.payload, job.report_progress, conn)
            if job.progress_unwritten:
                await conn.execute(queries.REPORT_PROGRESS, self._progress_params(job))
            cursor = await conn.execute(queries.COMPLETE_JOB, self._finish_params(job, result))
            row = await cursor.fetchone()
            if not (row and row[0]):
                raise LeaseLost(f"{job.describe()}: completion refused, its writes rolled back")
        return result

    def run_sync(self, handler: Handler, job: HeldJob) -> Any:
        assert self._sync_pool is not None, "Transactions.open() first"
        with self._sync_pool.connection() as conn, conn.transaction():
            result = handler.fn(job.payload, job.report_progress, conn)
            if job.progress_unwritten:
                conn.execute(queries.REPORT_PROGRESS, self._progress_params(job))
            row = conn.execute(queries.COMPLETE_JOB, self._finish_params(job, result)).fetchone()
            if not (row and row[0]):
                raise LeaseLost(f"{job.describe()}: completion refused, its writes rolled back")
        return result
