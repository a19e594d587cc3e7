"""Shared by the Python peer scripts: argument parsing, handler timing, output.

Every peer script (run inside that peer's own venv) speaks the same small
protocol with the harness:

* ``enqueue --mode single|bulk|paced --count N [--interval-ms MS] [--payload-bytes B]``
  prints one JSON object ``{"seconds": ...}`` timed inside the process;
* ``worker --concurrency N [--sleep-ms MS] --out FILE`` runs until SIGTERM, then
  writes ``{"records": [[start, end, enqueued_at], ...]}`` to FILE; when its
  first handler has run it creates FILE.ready (the harness's sign that the
  process is up and claiming).

Times are wall-clock seconds (``time.time()``) so that the harness, the
enqueuer and the worker share one host clock.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["migrate", "enqueue", "worker"])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--mode", choices=["single", "bulk", "paced"], default="single")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--payload-bytes", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--sleep-ms", type=float, default=0.0)
    parser.add_argument("--out", default="")
    return parser.parse_args(argv)


def payload(size: int) -> dict[str, Any]:
    """The job payload: empty, or one string field that makes it ``size`` bytes of JSON."""
    if size <= 0:
        return {}
    return {"data": "x" * max(0, size - len('{"data": ""}'))}


def paced_payload() -> dict[str, Any]:
    """A latency probe: the enqueue time travels in the payload."""
    return {"t": time.time()}


class Recorder:
    """Collects ``[start, end, enqueued_at]`` for every handler run in this process."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.records: list[tuple[float, float, float | None]] = []

    def add(self, start: float, enqueued_at: float | None) -> None:
        if not self.records:
            open(f"{self.out}.ready", "w").close()
        self.records.append((start, time.time(), enqueued_at))

    def dump(self) -> None:
        with open(self.out, "w", encoding="utf-8") as out:
            json.dump({"records": self.records}, out)


def report_seconds(seconds: float) -> None:
    print(json.dumps({"seconds": seconds}), flush=True)


def paced(count: int, interval_ms: float) -> list[float]:
    """Deadlines ``interval_ms`` apart, starting now (sleep until each, then enqueue)."""
    start = time.perf_counter()
    return [start + i * interval_ms / 1000.0 for i in range(count)]
