"""procrastinate peer: schema, enqueue (defer / batch_defer) and worker.

Run inside bench/.peers/venv-procrastinate; see peer_common for the protocol.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import procrastinate
from peer_common import Recorder, paced, paced_payload, parse_args, payload, report_seconds

ARGS = parse_args()
RECORDER = Recorder(ARGS.out)
SLEEP_S = ARGS.sleep_ms / 1000.0

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=ARGS.database_url))


@app.task(name="noop")
async def noop(**kwargs: Any) -> None:
    start = time.time()
    if SLEEP_S:
        await asyncio.sleep(SLEEP_S)
    RECORDER.add(start, kwargs.get("t"))


async def enqueue() -> None:
    body = payload(ARGS.payload_bytes)
    if ARGS.mode == "single":
        begin = time.perf_counter()
        for _ in range(ARGS.count):
            await noop.defer_async(**body)
        report_seconds(time.perf_counter() - begin)
    elif ARGS.mode == "bulk":
        begin = time.perf_counter()
        await noop.batch_defer_async(*([body] * ARGS.count))
        report_seconds(time.perf_counter() - begin)
    else:
        for deadline in paced(ARGS.count, ARGS.interval_ms):
            await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
            await noop.defer_async(**paced_payload())
        report_seconds(0.0)


async def main() -> None:
    async with app.open_async():
        if ARGS.command == "migrate":
            await app.schema_manager.apply_schema_async()
        elif ARGS.command == "enqueue":
            await enqueue()
        else:
            # procrastinate installs its own SIGTERM handler: graceful stop, then return.
            await app.run_worker_async(concurrency=ARGS.concurrency)
            RECORDER.dump()


asyncio.run(main())
