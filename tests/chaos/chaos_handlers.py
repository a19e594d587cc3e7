"""Handlers for the fault-injection suite (run by the real `pgstack-run`).

Every handler records its execution in table ``chaos_ledger`` of the job's database
(``CHAOS_LEDGER_URL``) before doing anything else, on one connection per process that
survives restarts and cuts of the server: the suite's check is that every completed job
appears there. Payloads carry ``k``, the job's key in ``chaos_enqueued``.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
import threading
import time
from typing import Any

import psycopg

import pgstack

_URL = os.environ["CHAOS_LEDGER_URL"]
_PID = os.getpid()
_lock = threading.Lock()
_conn: psycopg.Connection[Any] | None = None
# How long a handler keeps trying to reach its ledger (through restarts and cuts).
LEDGER_PATIENCE = 120.0


def _execute(query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Run one statement on the process's ledger connection, reconnecting until it works."""
    global _conn
    deadline = time.monotonic() + LEDGER_PATIENCE
    delay = 0.05
    while True:
        with _lock:
            try:
                if _conn is None or _conn.closed:
                    _conn = psycopg.connect(
                        _URL, autocommit=True, application_name="chaos-ledger", connect_timeout=5
                    )
                cursor = _conn.execute(query, params)
                return cursor.fetchall() if cursor.description else []
            except psycopg.OperationalError:
                if _conn is not None:
                    _conn.close()
                _conn = None
                if time.monotonic() > deadline:
                    raise
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def record(payload: Any, event: str = "start", detail: str | None = None) -> None:
    _execute(
        "insert into chaos_ledger (job_key, event, pid, detail) values (%s, %s, %s, %s)",
        (str(payload["k"]), event, _PID, detail),
    )


def go_action(payload: Any) -> str | None:
    """The action the suite chose for this process's run of the job, once it chose one."""
    rows = _execute(
        "select action from chaos_go where job_key = %s and pid = %s",
        (str(payload["k"]), _PID),
    )
    return str(rows[0][0]) if rows else None


# -- plain work ----------------------------------------------------------------------


@pgstack.job("work")
def work(payload: Any) -> None:
    record(payload)
    ms = float(payload.get("ms", 0))
    if ms:
        time.sleep(ms / 1000)


@pgstack.job("work-async")
async def work_async(payload: Any) -> None:
    await asyncio.to_thread(record, payload)
    ms = float(payload.get("ms", 0))
    if ms:
        await asyncio.sleep(ms / 1000)


# -- a handler that keeps the GIL: the heartbeater thread cannot run -------------------


def _gil_hog(seconds: float) -> None:
    """Keep the GIL for about ``seconds``: ``sum`` over a range is one C call that never
    lets another thread in (no bytecode runs, so no eval-breaker check)."""
    n = 2_000_000
    began = time.perf_counter()
    sum(range(n))
    per_item = max((time.perf_counter() - began) / n, 1e-10)
    sum(range(int(seconds / per_item)))


@pgstack.job("hog")
def hog(payload: Any) -> dict[str, int]:
    record(payload)
    _gil_hog(float(payload["seconds"]))
    record(payload, "end")
    return {"pid": _PID}


# -- a stale writer: waits for the suite's word, then completes, fails or reports -------


@pgstack.job("stale")
def stale(payload: Any, report_progress: Any) -> dict[str, int]:
    record(payload)
    deadline = time.monotonic() + 120
    while (action := go_action(payload)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no word for job {payload['k']}")
        if payload.get("cancellable"):
            report_progress(10, f"waiting in pid {_PID}")
        time.sleep(0.02)
    record(payload, "resumed", action)
    if action == "progress":
        report_progress(77, f"late progress from pid {_PID}")
        time.sleep(0.5)  # the heartbeater writes it (or learns the lease is lost)
        report_progress(88, f"late progress from pid {_PID}")
    elif action == "fail":
        raise RuntimeError(f"failed by pid {_PID}")
    return {"pid": _PID}


# -- a job that kills its worker -------------------------------------------------------


@pgstack.job("killer")
def killer(payload: Any) -> None:
    record(payload)
    how = payload.get("how", "exit")
    if how == "exit":
        os._exit(3)
    elif how == "sigkill":  # what the kernel's OOM killer does
        os.kill(_PID, signal.SIGKILL)
    elif how == "segv":
        ctypes.string_at(0)
    elif how == "abort":
        os.abort()
    time.sleep(60)


# -- poison ----------------------------------------------------------------------------


class UnprintableError(Exception):
    """An exception whose message cannot be read: ``str()`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("this exception refuses to be printed")


def _recurse(n: int) -> int:
    return _recurse(n + 1) + 1


def _poison(kind: str) -> Any:
    if kind == "SystemExit":
        sys.exit("handler called sys.exit")
    if kind == "KeyboardInterrupt":
        raise KeyboardInterrupt("handler interrupted")
    if kind == "RecursionError":
        return _recurse(0)
    if kind == "GeneratorExit":
        raise GeneratorExit("handler raised GeneratorExit")
    if kind == "MemoryError":
        raise MemoryError("handler ran out of memory")
    if kind == "nul-message":
        raise ValueError("a NUL \x00 in the message")
    if kind == "surrogate-message":
        raise ValueError("a lone surrogate \udcff and latin-1 \xff\xfe in the message")
    if kind == "huge-message":
        raise ValueError("x" * 2_000_000)
    if kind == "unprintable":
        raise UnprintableError()
    if kind == "nul-result":
        return {"s": "a NUL \x00 in the result"}
    if kind == "surrogate-result":
        return {"s": "a lone surrogate \ud800 in the result"}
    if kind == "unserialisable-result":
        return {1, 2, 3}
    if kind == "ok":
        return None
    raise AssertionError(f"unknown poison {kind!r}")


@pgstack.job("poison")
def poison(payload: Any) -> Any:
    record(payload)
    return _poison(payload["kind"])


@pgstack.job("poison-async")
async def poison_async(payload: Any) -> Any:
    await asyncio.to_thread(record, payload)
    return _poison(payload["kind"])


@pgstack.job("echo")
def echo(payload: Any) -> dict[str, Any]:
    """Checks a big or odd payload arrived whole: its size and a digest of its text."""
    import hashlib
    import json

    record(payload)
    body = payload.get("body")
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return {"chars": len(text), "sha1": hashlib.sha1(text.encode()).hexdigest()}
