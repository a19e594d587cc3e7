"""LISTEN for wake-ups and cancels; a checked connection, re-LISTENed after every reconnect."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg

from pgstack import queries
from pgstack.worker.links import AsyncLink

logger = logging.getLogger("pgstack.worker")


class Listener:
    """Calls ``on_wake()`` when jobs are due and ``on_cancel(job_id)`` when one is cancelled.

    Notifications are hints: after a reconnect (when some may have been missed) it calls
    ``on_wake()`` once, and the worker polls anyway. Every ``check_interval`` seconds
    without a notification it makes a round trip; a connection that fails it or does not
    answer within ``check_interval`` is replaced, so a silently dead listener cannot
    leave the worker deaf.
    """

    def __init__(
        self,
        link: AsyncLink,
        on_wake: Callable[[], None],
        on_cancel: Callable[[int], None],
        check_interval: float,
    ) -> None:
        self._link = link
        self._on_wake = on_wake
        self._on_cancel = on_cancel
        self._check_interval = check_interval
        self.listening = asyncio.Event()

    async def run(self) -> None:
        while True:
            conn = await self._link.connection()
            try:
                await conn.execute(queries.LISTEN)
                self.listening.set()
                self._on_wake()
                while True:
                    async for notice in conn.notifies(timeout=self._check_interval):
                        if notice.channel == queries.CANCEL_CHANNEL:
                            self._cancel(notice.payload)
                        else:
                            self._on_wake()
                    await asyncio.wait_for(
                        conn.execute(queries.HEALTH_CHECK), timeout=self._check_interval
                    )
            except (psycopg.Error, asyncio.TimeoutError, OSError) as error:
                self.listening.clear()
                logger.warning(
                    "listener: connection lost or unresponsive (%s); reconnecting",
                    type(error).__name__,
                )
                await self._link.close()
                await asyncio.sleep(0.1)

    def _cancel(self, payload: str) -> None:
        try:
            job_id = int(payload)
        except ValueError:
            logger.warning("listener: ignored a cancel notification with payload %r", payload)
            return
        self._on_cancel(job_id)
