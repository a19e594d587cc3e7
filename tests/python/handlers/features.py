"""Handlers for tests/python/test_worker_features.py: results, snooze, permanent errors,
retry policies, timeouts, transactional handlers and periodic jobs. Each records what
it did in table `ledger` (see ledger.py); waits are for a `go` row, never a guess."""

from __future__ import annotations

import asyncio
import time

from ledger import _URL, record
from worker_cases import events, wait_for_go

import pgstack
from pgstack import RetryPolicy


@pgstack.job("returns-a-result")
async def returns_a_result(payload):
    return {"doubled": payload["n"] * 2, "items": [1, 2, 3]}


@pgstack.job("returns-no-json")
def returns_no_json(payload):
    return {1, 2}


@pgstack.job("snoozes-once")
def snoozes_once(payload):
    record(payload, "started")
    if events(payload, "started") == 1:
        raise pgstack.Snooze(0.3)
    record(payload)


@pgstack.job("permanent-failure")
def permanent_failure(payload):
    record(payload, "started")
    raise pgstack.PermanentError("the card number is invalid")


@pgstack.job(
    "no-retry-on-lookup",
    retry=RetryPolicy(base_delay_ms=20, max_delay_ms=30, no_retry=(LookupError,)),
)
def no_retry_on_lookup(payload):
    record(payload, "started")
    if payload.get("kind") == "lookup":
        raise KeyError("missing")
    raise RuntimeError("transient")


@pgstack.job("slow-async-with-timeout", timeout=0.5)
async def slow_async_with_timeout(payload):
    record(payload, "started")
    await asyncio.sleep(30)
    record(payload)


@pgstack.job("slow-sync-with-timeout", timeout=0.5)
def slow_sync_with_timeout(payload):
    record(payload, "started")
    time.sleep(3)
    record(payload, "thread-finished")


@pgstack.job("slow-by-job-timeout")
async def slow_by_job_timeout(payload):
    record(payload, "started")
    await asyncio.sleep(30)


@pgstack.job("transactional-write", transactional=True)
def transactional_write(payload, report_progress, conn):
    conn.execute("insert into effects (job_key) values (%s)", (payload["key"],))
    record(payload, "written")  # on its own connection: visible at once
    if payload.get("wait"):
        wait_for_go(payload)
    return {"effect": "written"}


@pgstack.job("transactional-async", transactional=True)
async def transactional_async(payload, report_progress, conn):
    await conn.execute("insert into effects (job_key) values (%s)", (payload["key"],))
    if payload.get("fail"):
        raise RuntimeError("after the write")


@pgstack.job("every-minute", cron="* * * * *")
def every_minute(payload):
    record({"key": "cron"})


__all__ = ["_URL"]
