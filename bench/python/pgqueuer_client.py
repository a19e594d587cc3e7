"""PgQueuer peer: install, enqueue (single / list form) and worker.

Run inside bench/.peers/venv-pgqueuer; see peer_common for the protocol.
PgQueuer's per-worker concurrency cap is ``max_concurrent_tasks``; it must be
at least twice ``batch_size``, so the worker fetches ``concurrency // 2`` jobs
per dequeue, the largest batch that cap allows.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time

import asyncpg
from peer_common import Recorder, paced, paced_payload, parse_args, payload, report_seconds
from pgqueuer import QueueManager
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from pgqueuer.queries import Queries

ARGS = parse_args()
RECORDER = Recorder(ARGS.out)
SLEEP_S = ARGS.sleep_ms / 1000.0


async def enqueue(queries: Queries) -> None:
    body = json.dumps(payload(ARGS.payload_bytes)).encode()
    if ARGS.mode == "single":
        begin = time.perf_counter()
        for _ in range(ARGS.count):
            await queries.enqueue("noop", body)
        report_seconds(time.perf_counter() - begin)
    elif ARGS.mode == "bulk":
        begin = time.perf_counter()
        await queries.enqueue(["noop"] * ARGS.count, [body] * ARGS.count, [0] * ARGS.count)
        report_seconds(time.perf_counter() - begin)
    else:
        for deadline in paced(ARGS.count, ARGS.interval_ms):
            await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
            await queries.enqueue("noop", json.dumps(paced_payload()).encode())
        report_seconds(0.0)


async def work(driver: AsyncpgDriver) -> None:
    qm = QueueManager(Queries(driver))

    @qm.entrypoint("noop")
    async def noop(job: Job) -> None:
        start = time.time()
        if SLEEP_S:
            await asyncio.sleep(SLEEP_S)
        # Like any real handler, read the payload (PgQueuer hands over raw bytes).
        RECORDER.add(start, json.loads(job.payload or b"{}").get("t"))

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, qm.shutdown.set)
    await qm.run(
        batch_size=max(1, ARGS.concurrency // 2),
        max_concurrent_tasks=ARGS.concurrency,
    )
    RECORDER.dump()


async def main() -> None:
    connection = await asyncpg.connect(ARGS.database_url)
    driver = AsyncpgDriver(connection)
    try:
        if ARGS.command == "migrate":
            await Queries(driver).install()
        elif ARGS.command == "enqueue":
            await enqueue(Queries(driver))
        else:
            await work(driver)
    finally:
        await connection.close()


asyncio.run(main())
