"""Handlers file for ``pgstack-run`` (the benchmark's no-op and sleeping job).

BENCH_OUT names the file that receives ``{"records": [[start, end, enqueued_at], ...]}``
when the worker exits; BENCH_SLEEP_MS makes the handler sleep.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import time
from typing import Any

from peer_common import Recorder

import pgstack

RECORDER = Recorder(os.environ["BENCH_OUT"])
SLEEP_S = float(os.environ.get("BENCH_SLEEP_MS", "0")) / 1000.0
atexit.register(RECORDER.dump)


@pgstack.job("noop")
async def noop(payload: dict[str, Any], report_progress: Any) -> None:
    start = time.time()
    if SLEEP_S:
        await asyncio.sleep(SLEEP_S)
    RECORDER.add(start, payload.get("t") if isinstance(payload, dict) else None)
