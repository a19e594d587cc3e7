"""Handlers for tests/python/test_worker.py. Importing ``ledger`` registers its handlers
too (record, slow, slow-async, hang), so one file gives a worker everything it needs.

Every handler records what it did in table ``ledger``; handlers that must wait for the
test wait for a ``go`` row of their key (never for a guessed time)."""

from __future__ import annotations

import asyncio
import sys
import time

import psycopg
from ledger import _URL, record

import pgstack


def events(payload: dict, event: str) -> int:
    with psycopg.connect(_URL, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from ledger where job_key = %s and event = %s",
            (str(payload.get("key")), event),
        ).fetchone()
    return int(row[0]) if row else 0


def wait_for_go(payload: dict, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while events(payload, "go") == 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no go for {payload!r}")
        time.sleep(0.02)


# -- the shapes of handlers --------------------------------------------------------------


@pgstack.job("sync-payload-only")
def sync_payload_only(payload):
    record(payload)


@pgstack.job("async-payload-only")
async def async_payload_only(payload):
    await asyncio.to_thread(record, payload)


@pgstack.job("sync-with-progress")
def sync_with_progress(payload, report_progress):
    report_progress(30, "sync progress")
    record(payload)


@pgstack.job("async-with-progress")
async def async_with_progress(payload, report_progress):
    await report_progress(60, "async progress")  # the awaitable form
    report_progress(70, "async progress, not awaited")
    await asyncio.to_thread(record, payload)


# -- failures ----------------------------------------------------------------------------


@pgstack.job("always-fails")
def always_fails(payload):
    record(payload)
    raise ValueError("message")


def _recurse(n: int) -> int:
    return _recurse(n + 1) + 1


def _raise(kind: str) -> None:
    if kind == "SystemExit":
        sys.exit("handler called sys.exit")
    if kind == "KeyboardInterrupt":
        raise KeyboardInterrupt("handler interrupted")
    if kind == "RecursionError":
        _recurse(0)
    raise AssertionError(f"unknown kind {kind!r}")


@pgstack.job("raises-base")
def raises_base(payload):
    record(payload)
    _raise(payload["kind"])


@pgstack.job("raises-base-async")
async def raises_base_async(payload):
    record(payload)
    _raise(payload["kind"])


# -- progress and cancellation -----------------------------------------------------------


@pgstack.job("progress-then-wait")
def progress_then_wait(payload, report_progress):
    report_progress(42, "halfway there")
    record(payload, "started")
    wait_for_go(payload)
    record(payload)


@pgstack.job("progress-at-the-end")
def progress_at_the_end(payload, report_progress):
    record(payload, "started")
    wait_for_go(payload)
    report_progress(100, "done")  # the last word, just before the return


@pgstack.job("progress-odd-values")
def progress_odd_values(payload, report_progress):
    key = payload["key"]
    report_progress(float("inf"), "nul \x00 here")
    record(payload, "started")
    wait_for_go(payload)
    report_progress(-5, "below zero")
    record(payload, "second")
    wait_for_go({"key": f"{key}-2"})
    record(payload)


@pgstack.job("cancel-me-async")
async def cancel_me_async(payload):
    await asyncio.to_thread(record, payload, "started")
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        record(payload, "cancelled")
        raise
    record(payload)


@pgstack.job("cancel-me-sync")
def cancel_me_sync(payload, report_progress):
    record(payload, "started")
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            report_progress(5, "spinning")
            time.sleep(0.02)
    except pgstack.JobCancelled:
        record(payload, "cancelled")
        raise
    record(payload)


# -- crashes and shutdowns ---------------------------------------------------------------


@pgstack.job("hangs-the-first-time")
def hangs_the_first_time(payload):
    first = events(payload, "started") == 0
    record(payload, "started")
    if first:
        time.sleep(3600)
    record(payload)


@pgstack.job("hang-async")
async def hang_async(payload):
    await asyncio.to_thread(record, payload, "started")
    await asyncio.sleep(3600)
