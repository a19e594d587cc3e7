#!/usr/bin/env python3
"""Benchmark pgstack against graphile-worker, PgQueuer, procrastinate and pgbench.

    python3 bench/run.py                 # the full run (what `make bench` calls)
    python3 bench/run.py --quick         # one round, small counts: a smoke test
    python3 bench/run.py --systems pgstack,graphile-fast --workloads drain_1p

Installs missing peers under bench/.peers/, gives every system its own fresh
databases, runs the rounds interleaved (round 1: every system once, ...),
prints one table per workload and writes bench/results/<timestamp>.json and
bench/results/latest.json.  See bench/README.md.
"""

from __future__ import annotations

import peers

if __name__ == "__main__":
    peers.ensure_harness_venv()  # psycopg lives in bench/.peers/venv-harness

import argparse
import datetime
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import report
from db import Server, execute, fetch_int, load_without_indexes
from measure import Figures, Target
from procs import run_checked
from systems.base import QueueSystem
from systems.graphile import Graphile
from systems.pgbench import PgBench
from systems.pgqueuer import PgQueuer
from systems.pgstack import PgStack
from systems.procrastinate import Procrastinate
from workloads import FULL, QUICK, WORKLOADS, Sizes, Workload

SYSTEMS = ["pgstack", "graphile", "graphile-fast", "pgqueuer", "procrastinate", "pgbench"]
# Seconds since the run began, counting the harness venv bootstrap before re-execution.
CLOCK = time.monotonic() - (time.time() - peers.started_at())


def log(message: str) -> None:
    print(f"[{time.monotonic() - CLOCK:6.1f}s] {message}", file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 round, small counts")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; --quick 1)")
    parser.add_argument("--systems", help=f"comma-separated subset of {','.join(SYSTEMS)}")
    parser.add_argument(
        "--workloads", help=f"comma-separated subset of {','.join(w.key for w in WORKLOADS)}"
    )
    parser.add_argument(
        "--pgstack-src",
        type=Path,
        default=peers.BENCH.parent,
        help="pgstack source tree to benchmark (default: the repository holding bench/)",
    )
    parser.add_argument(
        "--cap-seconds", type=float, help="cut a drain this long after its jobs were enqueued"
    )
    parser.add_argument("--pg-host", default=os.environ.get("PGHOST", "/var/run/postgresql"))
    parser.add_argument("--pg-port", type=int, default=int(os.environ.get("PGPORT", "5432")))
    parser.add_argument("--pg-user", default=Server().user)
    parser.add_argument("--results-dir", type=Path, default=peers.BENCH / "results")
    args = parser.parse_args()
    for option, known in (("systems", SYSTEMS), ("workloads", [w.key for w in WORKLOADS])):
        chosen = getattr(args, option)
        unknown = set(chosen.split(",")) - set(known) if chosen else set()
        if unknown:
            parser.error(f"unknown {option}: {', '.join(sorted(unknown))}")
    return args


def select_systems(args: argparse.Namespace, notes: list[str]) -> list[QueueSystem]:
    """The queue systems asked for (pgbench is not one: it has no worker)."""
    systems: list[QueueSystem] = []
    for key in (args.systems or ",".join(SYSTEMS)).split(","):
        if key == "pgstack":
            pgstack = PgStack(args.pgstack_src.resolve())
            if pgstack.available():
                systems.append(pgstack)
            elif args.systems:
                sys.exit(f"pgstack: no pyproject.toml in {args.pgstack_src} (see --pgstack-src)")
            else:
                notes.append(f"pgstack skipped: no pyproject.toml in {args.pgstack_src}")
        elif key in ("graphile", "graphile-fast"):
            systems.append(Graphile(fast=key == "graphile-fast"))
        elif key == "pgqueuer":
            systems.append(PgQueuer())
        elif key == "procrastinate":
            systems.append(Procrastinate())
    return systems


def machine(server: Server) -> dict[str, Any]:
    with server.connect("postgres") as conn:
        rows = conn.execute(
            "select name, setting from pg_settings where name in ('autovacuum', "
            "'synchronous_commit', 'fsync', 'shared_buffers', 'server_version')"
        ).fetchall()
    meminfo = Path("/proc/meminfo").read_text().split()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(int(meminfo[1]) / 1024**2, 1),
        "postgres": dict(rows),
        "node": node.stdout.strip(),
        "python": sys.version.split()[0],
    }


class Databases:
    """Every database this run creates, under names no one else uses; all dropped at the end."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.names: list[str] = []
        self.suffix = f"{os.getpid()}_{secrets.token_hex(2)}"
        self.lock = threading.Lock()

    def create(self, stem: str) -> str:
        name = f"bench_{stem.replace('-', '_')}_{self.suffix}"
        self.server.create_database(name)
        with self.lock:
            self.names.append(name)
        return name

    def drop_all(self) -> None:
        for name in reversed(self.names):
            try:
                self.server.drop_database(name)
            except Exception as error:  # keep dropping the others
                log(f"could not drop {name}: {error}")
        self.names.clear()


def prepare(
    system: QueueSystem, server: Server, dbs: Databases, sizes: Sizes, history: bool, logs: Path
) -> dict[str, Target]:
    """The system's main database and, for workload 5, its history database."""
    targets: dict[str, Target] = {}
    for kind in ("main", "history") if history else ("main",):
        name = dbs.create(system.key if kind == "main" else f"{system.key}-hist")
        url = server.url(name)
        run_checked(system.migrate_command(url), logs / f"{system.key}-migrate.log", timeout=300)
        target = Target(system=system, url=url, conn=server.connect(name), logs=logs)
        if kind == "history":
            begin = time.monotonic()
            load_without_indexes(target.conn, system.tables, system.history_sql(sizes.history))
            execute(target.conn, [f"vacuum analyze {table}" for table in system.tables])
            target.baseline = fetch_int(target.conn, system.max_id_sql())
            target.history = True
            target.notes.append(system.history_note(sizes.history))
            took = time.monotonic() - begin
            log(f"{system.key}: history of {sizes.history:,} finished jobs in {took:.1f}s")
        targets[kind] = target
    return targets


class Rounds:
    """The interleaved rounds and the raw figures they produce."""

    def __init__(self, sizes: Sizes, rounds: int, workloads: list[Workload]) -> None:
        self.sizes = sizes
        self.rounds = rounds
        self.workloads = workloads
        self.table: dict[str, Any] = {
            w.key: {"key": w.key, "title": w.title(sizes), "metric": w.metric, "rows": {}}
            for w in workloads
        }

    def row(self, workload: str, key: str, label: str, kind: str, notes: list[str]) -> list[Any]:
        rows = self.table[workload]["rows"]
        row = rows.setdefault(key, {"label": label, "kind": kind, "notes": notes, "rounds": []})
        figures: list[Any] = row["rounds"]
        return figures

    def record(self, where: str, metric: str, run: Callable[[], Figures]) -> Figures:
        at = round(time.monotonic() - CLOCK, 1)  # seconds into the run, to see drift
        try:
            figures = run()
        except Exception as error:
            log(f"{where}: FAILED {error}")
            traceback.print_exc(file=sys.stderr)
            return {"error": str(error), "at_s": at}
        figures["at_s"] = at
        value = figures[metric]
        shown = f"{value:,.2f} ms" if metric.endswith("_ms") else f"{value:,.0f} jobs/s"
        log(f"{where}: {shown}{' (capped)' if figures.get('capped') else ''}")
        return figures

    def run(
        self,
        systems: list[QueueSystem],
        targets: dict[str, dict[str, Target]],
        bench: PgBench | None,
    ) -> None:
        for number in range(self.rounds):
            # Rotate the order every round so that no system always goes first.
            shift = number % max(1, len(systems))
            order = systems[shift:] + systems[:shift]
            for workload in self.workloads:
                where = f"round {number + 1}/{self.rounds} {workload.key}"
                for system in order:
                    self._system(workload, system, targets[system.key], where)
                if bench is not None:
                    sizes = self.sizes
                    for limit in bench.runs_for(
                        workload.key, sizes.enqueue_single, sizes.pgbench_jobs
                    ):
                        rounds = self.row(
                            workload.key, limit.key, limit.label, "limit", limit.notes
                        )
                        rounds.append(self.record(f"{where} {limit.key}", "jobs_per_s", limit.run))

    def _system(
        self, workload: Workload, system: QueueSystem, targets: dict[str, Target], where: str
    ) -> None:
        if workload.enqueue and not system.runs_enqueue:
            return
        target = targets["history" if workload.on_history else "main"]
        kind = "pgstack" if system.key == "pgstack" else "peer"
        notes = list(target.notes) if workload.on_history else []
        rounds = self.row(workload.key, system.key, system.label, kind, notes)
        rounds.append(
            self.record(
                f"{where} {system.key}", workload.metric, lambda: workload.run(target, self.sizes)
            )
        )


def main() -> int:
    args = parse_args()
    sizes = QUICK if args.quick else FULL
    if args.cap_seconds is not None:
        sizes = replace(sizes, cap_s=args.cap_seconds)
    rounds = args.rounds or (1 if args.quick else 3)
    chosen = (args.systems or ",".join(SYSTEMS)).split(",")
    wanted = (args.workloads or ",".join(w.key for w in WORKLOADS)).split(",")
    workloads = [w for w in WORKLOADS if w.key in wanted]
    started = datetime.datetime.now(datetime.timezone.utc)
    notes: list[str] = []
    systems = select_systems(args, notes)
    server = Server(host=args.pg_host, port=args.pg_port, user=args.pg_user)

    log("installing peers where missing")
    for system in systems:
        system.install()
    installed = time.monotonic() - CLOCK
    log(f"peers ready in {installed:.1f}s")

    logs = args.results_dir / f"logs-{started:%Y%m%dT%H%M%SZ}"
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "meta": {
            "started_at": f"{started:%Y-%m-%dT%H:%M:%SZ}",
            "rounds": rounds,
            "quick": args.quick,
            "sizes": asdict(sizes),
            "systems": [s.key for s in systems] + (["pgbench"] if "pgbench" in chosen else []),
            "versions": [s.version() for s in systems],
            "machine": machine(server),
            "notes": notes,
            "logs": str(logs),
        },
    }
    dbs = Databases(server)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still drop the databases
    plan = Rounds(sizes, rounds, workloads)
    try:
        history = any(w.on_history for w in workloads)
        # Setup is not measured: two systems at a time (one per core).
        with ThreadPoolExecutor(max_workers=2) as setup:
            ready = setup.map(lambda s: prepare(s, server, dbs, sizes, history, logs), systems)
            targets = {system.key: target for system, target in zip(systems, ready, strict=True)}
        bench = None
        if "pgbench" in chosen:
            name = dbs.create("pgbench")
            bench = PgBench(server, name, server.connect(name))
            bench.migrate()
        results["meta"]["setup_seconds"] = round(time.monotonic() - CLOCK - installed, 1)
        log("databases ready; measuring")
        plan.run(systems, targets, bench)
    finally:
        dbs.drop_all()
    results["workloads"] = plan.table
    results["meta"]["install_seconds"] = round(installed, 1)
    results["meta"]["wall_seconds"] = round(time.monotonic() - CLOCK, 1)
    report.finish(results)
    print(report.render(results))
    for note in notes:
        print(f"note: {note}")
    path = report.write(results, args.results_dir)
    print(f"\nwall time {results['meta']['wall_seconds']:.0f} s; results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
