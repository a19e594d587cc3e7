"""Threads for ``def`` handlers.

Unlike ``ThreadPoolExecutor``, its threads are daemons: a handler that hangs (past its
timeout, or past the shutdown timeout) never keeps the process from exiting. Threads
are made on demand, so a thread stuck in an abandoned handler does not take a slot
from the next job: the worker's concurrency limit, not the pool, bounds the threads
that run handlers.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_WorkItem = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class HandlerThreads(Executor):
    def __init__(self, name: str = "pgstack-handler") -> None:
        self._name = name
        self._queue: queue.SimpleQueue[_WorkItem | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if kwargs:
            raise TypeError("HandlerThreads.submit takes positional arguments only")
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the handler threads are shut down")
            self._queue.put((future, fn, args))
            if self._idle == 0:
                self._threads += 1
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{self._threads}", daemon=True
                )
                thread.start()
            else:
                self._idle -= 1
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as error:  # the handler's, handed to the awaiting task
                    future.set_exception(error)
            del item, future
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Idle threads end at once; busy ones end when their handler returns. Never
        waits for them: they are daemons."""
        with self._lock:
            self._closed = True
            for _ in range(self._threads):
                self._queue.put(None)
