"""``pgstack``: migrate the schema, inspect the queue, and act on jobs."""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from datetime import datetime, timedelta

from pgstack.cli.errors import Parser, fail, run_command
from pgstack.cli.output import table, to_json
from pgstack.client import JobQueue
from pgstack.config import database_url
from pgstack.connections import SingleConnection
from pgstack.migrate import migrate, pending_script
from pgstack.models import STATUSES

PROG = "pgstack"
STATUS_COLUMNS = (*STATUSES, "dead")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _job_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a job id is a whole number, got {text!r}") from None


def _aware_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a timezone, e.g. {text}+00:00")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument(
        "--database-url",
        default=argparse.SUPPRESS,
        help="PostgreSQL connection string (default: $DATABASE_URL)",
    )
    parser = Parser(prog=PROG, description=__doc__, parents=[common])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    cmd = commands.add_parser("migrate", parents=[common], help="apply pending migrations")
    cmd.add_argument(
        "--print",
        action="store_true",
        dest="print_sql",
        help="print the SQL of pending migrations instead of applying it",
    )

    dbos = commands.add_parser("dbos", parents=[common], help="inspect and operate the queue")
    actions = dbos.add_subparsers(dest="action", required=True, parser_class=Parser)

    cmd = actions.add_parser("status", parents=[common], help="job counts by name and status")
    cmd.add_argument("--json", action="store_true", help="machine-readable output")

    cmd = actions.add_parser("list", parents=[common], help="the newest jobs")
    cmd.add_argument("--status", choices=STATUSES)
    cmd.add_argument("--limit", type=_positive, default=50)
    cmd.add_argument("--json", action="store_true", help="machine-readable output")

    cmd = actions.add_parser("dead", parents=[common], help="dead-lettered jobs, newest first")
    cmd.add_argument("--limit", type=_positive, default=50)
    cmd.add_argument("--json", action="store_true", help="machine-readable output")

    cmd = actions.add_parser(
        "retry",
        parents=[common],
        help="replay a dead-lettered job, or run a waiting pending job now",
    )
    cmd.add_argument("id", type=_job_id)

    cmd = actions.add_parser("cancel", parents=[common], help="cancel a pending or running job")
    cmd.add_argument("id", type=_job_id)

    cmd = actions.add_parser("enqueue", parents=[common], help="enqueue a job")
    cmd.add_argument("job_name")
    cmd.add_argument("payload", nargs="?", default="{}", help="JSON payload (default {})")
    when = cmd.add_mutually_exclusive_group()
    when.add_argument("--delay", type=float, metavar="SECONDS", help="run after this many seconds")
    when.add_argument(
        "--at",
        type=_aware_time,
        metavar="ISO-TIME",
        help="run at this time (with a timezone, e.g. 2026-12-01T09:00:00+00:00)",
    )
    cmd.add_argument("--max-attempts", type=_positive)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    explicit_url: str | None = getattr(args, "database_url", None)
    resolved: list[str] = []

    def url() -> str | None:
        return resolved[0] if resolved else explicit_url

    def command() -> int:
        resolved.append(database_url(explicit_url))
        if args.command == "migrate":
            return _migrate(resolved[0], args)
        source = SingleConnection(resolved[0])
        try:
            return _dbos(JobQueue(source), args)
        finally:
            source.close()

    return run_command(PROG, command, url)


def _migrate(url: str, args: argparse.Namespace) -> int:
    if args.print_sql:
        script = pending_script(url)
        print(script if script else "-- nothing to apply: the schema is up to date")
        return 0
    applied = migrate(url)
    if applied:
        for migration in applied:
            print(f"applied {migration.file_name}")
    else:
        print("nothing to apply: the schema is up to date")
    return 0


def _dbos(queue: JobQueue, args: argparse.Namespace) -> int:
    action = args.action
    if action == "status":
        _print_status(queue, as_json=args.json)
    elif action == "list":
        jobs = queue.list_jobs(args.status, args.limit)
        if args.json:
            print(to_json(jobs))
        else:
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
    elif action == "dead":
        dead = queue.list_dead_letter_jobs(args.limit)
        if args.json:
            print(to_json(dead))
        else:
            print(
                table(
                    ["id", "job_name", "attempts", "failed_at", "error", "payload"],
                    [
                        (
                            d.id,
                            d.job_name,
                            f"{d.attempt}/{d.max_attempts}",
                            d.failed_at,
                            d.error,
                            d.payload,
                        )
                        for d in dead
                    ],
                    widths={1: 40, 4: 60, 5: 40},
                )
            )
    elif action == "retry":
        new_id = queue.retry_job(args.id)
        if new_id == args.id:
            print(f"job {args.id} is due now")
        else:
            print(f"dead-letter job {args.id} replayed as job {new_id}")
    elif action == "cancel":
        outcome = queue.cancel_job(args.id)
        messages = {
            "cancelled": f"job {args.id} cancelled",
            "cancel_requested": f"job {args.id} is running: cancel requested, its worker stops it",
        }
        print(messages.get(outcome, f"job {args.id} is already {outcome}: nothing to cancel"))
    elif action == "enqueue":
        try:
            payload = json.loads(args.payload)
        except json.JSONDecodeError as error:
            fail(PROG, f"payload is not valid JSON: {error}")
        when = timedelta(seconds=args.delay) if args.delay is not None else args.at
        job_id = queue.enqueue(args.job_name, payload, when, args.max_attempts)
        print(job_id)
    return 0


def _print_status(queue: JobQueue, *, as_json: bool) -> None:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUS_COLUMNS, 0))
    for line in queue.stats():
        counts[line.job_name][line.status] = line.jobs
    if as_json:
        print(to_json({name: counts[name] for name in sorted(counts)}))
        return
    totals = {s: sum(c[s] for c in counts.values()) for s in STATUS_COLUMNS}
    rows = [(name, *(counts[name][s] for s in STATUS_COLUMNS)) for name in sorted(counts)]
    rows.append(("(all)", *(totals[s] for s in STATUS_COLUMNS)))
    print(table(["job_name", *STATUS_COLUMNS], rows, widths={0: 40}))
    print(f"\ndead letters: {totals['dead']}")


if __name__ == "__main__":
    sys.exit(main())
