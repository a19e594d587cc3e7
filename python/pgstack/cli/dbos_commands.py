"""The ``pgstack dbos ...`` actions: read the queue and act on it through the client."""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable

from pgstack.cli.errors import fail
from pgstack.cli.output import table, to_json
from pgstack.client import JobQueue
from pgstack.models import STATUSES

PROG = "pgstack"
STATUS_COLUMNS = (*STATUSES, "dead")


def parse_payload(text: str) -> object:
    """The payload argument, parsed when the command line is (before any database is
    reached): invalid JSON is a one-line error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        fail(PROG, f"payload is not valid JSON: {error}")
    except RecursionError:
        fail(PROG, "payload is nested too deeply")


def _one_or_all(args: argparse.Namespace, verb: str) -> bool:
    """True for ``--name X --all``; False for an id; a usage error otherwise."""
    if args.all or args.name:
        if args.id is not None or not (args.all and args.name):
            fail(PROG, f"{verb}: give either a job id, or --name NAME --all", 2)
        return True
    if args.id is None:
        fail(PROG, f"{verb}: give a job id, or --name NAME --all", 2)
    return False


def status(queue: JobQueue, args: argparse.Namespace) -> None:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUS_COLUMNS, 0))
    for line in queue.stats():
        counts[line.job_name][line.status] = line.jobs
    if args.json:
        print(to_json({name: counts[name] for name in sorted(counts)}))
        return
    totals = {s: sum(c[s] for c in counts.values()) for s in STATUS_COLUMNS}
    rows = [(name, *(counts[name][s] for s in STATUS_COLUMNS)) for name in sorted(counts)]
    rows.append(("(all)", *(totals[s] for s in STATUS_COLUMNS)))
    print(table(["job_name", *STATUS_COLUMNS], rows, widths={0: 40}))
    print(f"\ndead letters: {totals['dead']}")


def list_jobs(queue: JobQueue, args: argparse.Namespace) -> None:
    jobs = queue.list_jobs(args.status, args.limit)
    if args.json:
        print(to_json(jobs))
        return
    print(
        table(
            ["id", "job_name", "status", "attempt", "scheduled_for", "progress", "error"],
            [
                (
                    j.id,
                    j.job_name,
                    j.status,
                    f"{j.attempt}/{j.max_attempts}",
                    j.scheduled_for,
                    j.progress,
                    j.error,
                )
                for j in jobs
            ],
            widths={1: 40, 6: 60},
        )
    )


def dead(queue: JobQueue, args: argparse.Namespace) -> None:
    letters = queue.list_dead_letter_jobs(args.limit)
    if args.json:
        print(to_json(letters))
        return
    print(
        table(
            ["id", "job_name", "attempts", "failed_at", "error", "payload"],
            [
                (d.id, d.job_name, f"{d.attempt}/{d.max_attempts}", d.failed_at, d.error, d.payload)
                for d in letters
            ],
            widths={1: 40, 4: 60, 5: 40},
        )
    )


def retry(queue: JobQueue, args: argparse.Namespace) -> None:
    if _one_or_all(args, "retry"):
        new_ids = queue.retry_dead_letter_jobs(args.name)
        print(
            f"replayed {len(new_ids)} dead-letter job(s) of {args.name}"
            + (f" as job(s) {', '.join(map(str, new_ids))}" if new_ids else "")
        )
        return
    new_id = queue.retry_job(args.id)
    if new_id == args.id:
        print(f"job {args.id} is due now")
    else:
        print(f"dead-letter job {args.id} replayed as job {new_id}")


def cancel(queue: JobQueue, args: argparse.Namespace) -> None:
    if _one_or_all(args, "cancel"):
        print(f"cancelled {queue.cancel_pending_jobs(args.name)} pending job(s) of {args.name}")
        return
    # dbos.cancel_job answers 'cancelled' both for the pending job it just cancelled
    # and for a job cancelled before: the status before tells them apart
    # (cancelled is final, so the answer cannot go stale).
    before = queue.get_job(args.id)
    outcome = queue.cancel_job(args.id)
    if outcome == "cancelled" and before is not None and before.status == "cancelled":
        print(f"job {args.id} is already cancelled: nothing to cancel")
    elif outcome == "cancelled":
        print(f"job {args.id} cancelled")
    elif outcome == "cancel_requested":
        print(f"job {args.id} is running: cancel requested, its worker stops it")
    else:
        print(f"job {args.id} is already {outcome}: nothing to cancel")


def enqueue(queue: JobQueue, args: argparse.Namespace) -> None:
    payload = args.payload
    when = args.delay if args.delay is not None else args.at
    job_id = queue.enqueue(
        args.job_name,
        payload,
        when,
        args.max_attempts,
        priority=args.priority,
        queue_name=args.queue_name,
        dedup_key=args.dedup_key,
        timeout_seconds=args.timeout_seconds,
    )
    print(job_id)


def prune(queue: JobQueue, args: argparse.Namespace) -> None:
    print(f"pruned {queue.prune_jobs(args.older_than)} finished job(s)")


def limit(queue: JobQueue, args: argparse.Namespace) -> None:
    queue.set_queue_limit(args.queue_name, args.concurrency_limit)
    if args.concurrency_limit is None:
        print(f"queue {args.queue_name}: no limit")
    else:
        print(f"queue {args.queue_name}: at most {args.concurrency_limit} running job(s)")


def schedules(queue: JobQueue, args: argparse.Namespace) -> None:
    rows = queue.list_schedules()
    if args.json:
        print(to_json(rows))
        return
    print(
        table(
            ["schedule", "cron", "timezone", "job_name", "next_run_at", "last_run_at"],
            [
                (r.schedule_name, r.cron, r.timezone, r.job_name, r.next_run_at, r.last_run_at)
                for r in rows
            ],
        )
    )


def schedule(queue: JobQueue, args: argparse.Namespace) -> None:
    next_run = queue.schedule(
        args.schedule_name,
        args.cron,
        args.job_name,
        args.payload,
        timezone=args.timezone,
    )
    print(f"schedule {args.schedule_name}: next run at {next_run.isoformat()}")


def unschedule(queue: JobQueue, args: argparse.Namespace) -> None:
    if not queue.unschedule(args.schedule_name):
        fail(PROG, f"no schedule named {args.schedule_name!r}")
    print(f"schedule {args.schedule_name} removed")


ACTIONS: dict[str, Callable[[JobQueue, argparse.Namespace], None]] = {
    "status": status,
    "list": list_jobs,
    "dead": dead,
    "retry": retry,
    "cancel": cancel,
    "enqueue": enqueue,
    "prune": prune,
    "limit": limit,
    "schedules": schedules,
    "schedule": schedule,
    "unschedule": unschedule,
}


def run_action(queue: JobQueue, args: argparse.Namespace) -> int:
    ACTIONS[args.action](queue, args)
    return 0
