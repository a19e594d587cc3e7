"""Handlers for worker tests: each records its execution in table `ledger` of the job's
database, so tests can count how often a job ran (the URL comes from DATABASE_URL)."""

from __future__ import annotations

import asyncio
import os
import time

import psycopg

import pgstack

_URL = os.environ["PGSTACK_LEDGER_URL"]


def record(payload: dict, event: str = "ran") -> None:
    with psycopg.connect(_URL, autocommit=True) as conn:
        conn.execute(
            "insert into ledger (job_key, event, pid) values (%s, %s, %s)",
            (str(payload.get("key")), event, os.getpid()),
        )


@pgstack.job("record")
def record_job(payload: dict) -> None:
    record(payload)


@pgstack.job("slow")
def slow_job(payload: dict, report_progress) -> None:
    record(payload, "started")
    deadline = time.monotonic() + float(payload.get("seconds", 1))
    while time.monotonic() < deadline:
        report_progress(50, "working")
        time.sleep(0.05)
    record(payload)


@pgstack.job("slow-async")
async def slow_async_job(payload: dict) -> None:
    record(payload, "started")
    await asyncio.sleep(float(payload.get("seconds", 1)))
    record(payload)


@pgstack.job("hang")
def hang_job(payload: dict) -> None:
    record(payload, "started")
    time.sleep(3600)
