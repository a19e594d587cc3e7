"""The fault-injection suite: prove that no job is lost under faults, load and hostile input.

    python tests/chaos/run.py            # full scenarios (`make chaos`)
    python tests/chaos/run.py --short    # smaller and shorter (`make test-chaos-short`)
    python tests/chaos/run.py --only 1,7 # some scenarios

Each scenario makes its own database on the shared server (PGSTACK_TEST_ADMIN_URL) and
drops it; the scenarios that restart the server (2) or read its whole log (6) use a
private PostgreSQL 15 cluster made for the run and removed after it. Workers are the real
`pgstack-run`; their logs stay in tests/chaos/results/logs/. The figures are printed as a
table and written to tests/chaos/results/latest.json. Exit status 1 if any scenario
failed (a lost job is always a failure).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import RESULTS, Context, Figures, SharedServer
from scenarios_races import SCENARIOS as RACES
from scenarios_workers import SCENARIOS as WORKERS

from pgstack.migrate import migrate

SCENARIOS: dict[str, Callable[[Context], Figures]] = dict(
    sorted({**WORKERS, **RACES}.items(), key=lambda item: int(item[0]))
)
COLUMNS = ("enqueued", "completed", "cancelled", "dead", "duplicates", "lost")


def table(results: list[Figures]) -> str:
    head = f"{'#':>3} {'scenario':<50} " + " ".join(f"{c:>10}" for c in COLUMNS)
    head += f" {'seconds':>8}  result"
    lines = [head, "-" * len(head)]
    for fig in results:
        figures = " ".join(f"{getattr(fig, c):>10}" for c in COLUMNS)
        verdict = "ok" if fig.passed else "FAILED"
        lines.append(
            f"{fig.scenario:>3} {fig.title[:50]:<50} {figures} {fig.seconds:>8.1f}  {verdict}"
        )
    return "\n".join(lines)


def run(only: list[str] | None, short: bool) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    shared = SharedServer()
    template = f"pgstack_chaos_template_{uuid.uuid4().hex[:8]}"
    shared.create_database(template)
    ctx = Context(short=short, shared=shared, template=template, results=RESULTS)
    results: list[Figures] = []
    began = time.monotonic()
    try:
        migrate(shared.url(template))
        for key, scenario in SCENARIOS.items():
            if only and key not in only:
                continue
            started = time.monotonic()
            print(f"--- scenario {key}: {scenario.__name__} ...", flush=True)
            try:
                fig = scenario(ctx)
            except Exception as error:  # the scenario could not even finish its checks
                fig = Figures(key, scenario.__name__)
                fig.fail(f"{type(error).__name__}: {error}")
                fig.extra["traceback"] = traceback.format_exc()
            fig.seconds = round(time.monotonic() - started, 1)
            fig.passed = not fig.failures and fig.lost == 0
            if fig.lost and not fig.failures:
                fig.fail(f"{fig.lost} job(s) lost")
            results.append(fig)
            extra = {k: v for k, v in fig.extra.items() if k != "traceback"}
            print(f"    {'ok' if fig.passed else 'FAILED'} in {fig.seconds} s: {extra}")
            for failure in fig.failures:
                print(f"    FAIL: {failure[:2000]}")
    finally:
        ctx.close()
        with contextlib.suppress(psycopg.Error):
            shared.drop_database(template)
    total = round(time.monotonic() - began, 1)
    print()
    print(table(results))
    print(f"\n{'short' if short else 'full'} run: {total} s")
    report = {
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "mode": "short" if short else "full",
        "seconds": total,
        "passed": all(fig.passed for fig in results),
        "scenarios": [fig.__dict__ for fig in results],
    }
    path = RESULTS / ("latest-short.json" if short else "latest.json")
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"figures written to {path}")
    return 0 if report["passed"] else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="smaller counts, shorter runs")
    parser.add_argument("--only", help="comma-separated scenario numbers, e.g. 1,7")
    args = parser.parse_args()
    only = args.only.split(",") if args.only else None
    if only and (unknown := set(only) - set(SCENARIOS)):
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return run(only, args.short)


if __name__ == "__main__":
    sys.exit(main())
