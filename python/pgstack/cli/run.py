"""``pgstack-run``: run the handlers of some files or modules until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import timedelta

from pgstack.cli.durations import duration
from pgstack.cli.errors import Parser, fail
from pgstack.cli.loading import collect_handlers, import_target
from pgstack.config import database_url, describe, redact_message
from pgstack.errors import PgStackError
from pgstack.worker.runner import Worker, check_schema
from pgstack.worker.settings import WorkerSettings

PROG = "pgstack-run"
logger = logging.getLogger("pgstack.worker")


def _number(kind: type[int] | type[float], minimum: float) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=__doc__)
    parser.add_argument(
        "targets",
        nargs="+",
        metavar="handlers.py|package.module",
        help="files or modules that register handlers with @pgstack.job",
    )
    parser.add_argument("--database-url", help="PostgreSQL connection string ($DATABASE_URL)")
    parser.add_argument(
        "--concurrency", type=_number(int, 1), default=10, help="jobs running at once (default 10)"
    )
    parser.add_argument(
        "--poll-interval",
        type=_number(int, 1),
        default=5000,
        metavar="MS",
        help="fallback poll when no NOTIFY arrives (default 5000 ms)",
    )
    parser.add_argument(
        "--prefetch",
        type=_number(int, 0),
        default=None,
        metavar="N",
        help="jobs claimed ahead of free capacity (default: concurrency, 10-100)",
    )
    parser.add_argument(
        "--lease-seconds",
        type=_number(int, 1),
        default=60,
        help="lease of a claimed job, extended by heartbeats (default 60)",
    )
    parser.add_argument(
        "--retry-delay-ms",
        type=_number(int, 0),
        default=1000,
        help="base of the exponential backoff (default 1000)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=_number(float, 0),
        default=30.0,
        metavar="SECONDS",
        help="wait for running jobs on SIGTERM (default 30)",
    )
    parser.add_argument(
        "--keep",
        type=duration,
        default=timedelta(hours=24),
        help="prune finished jobs older than this (default 24h; 'forever' keeps)",
    )
    parser.add_argument("--no-listen", action="store_true", help="poll only, no LISTEN/NOTIFY")
    parser.add_argument(
        "--worker-id", help="the worker's name in locked_by (default host:pid:rand)"
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    url: str | None = None
    try:
        url = database_url(args.database_url)
        modules = [import_target(target) for target in args.targets]
        registry = collect_handlers(modules)
        if len(registry) == 0:
            raise PgStackError(
                f"no handlers registered by {' '.join(args.targets)}: "
                'decorate functions with @pgstack.job("job-name")'
            )
        extra = {"worker_id": args.worker_id} if args.worker_id else {}
        settings = WorkerSettings(
            concurrency=args.concurrency,
            prefetch=args.prefetch,
            poll_interval=args.poll_interval / 1000,
            lease_seconds=args.lease_seconds,
            retry_delay_ms=args.retry_delay_ms,
            shutdown_timeout=args.shutdown_timeout,
            keep=args.keep,
            listen=not args.no_listen,
            **extra,
        )
        worker = Worker(url, registry, settings)
        # Checked here too, so a database without the schema is one line of error
        # and not a log line first.
        check_schema(url)
    except PgStackError as error:
        fail(PROG, redact_message(str(error), url))
    logger.info("pgstack-run: database %s", describe(url))
    clean = asyncio.run(_serve(worker))
    if not clean:
        # Handler threads are still running; their jobs were released. Don't wait for them.
        logging.shutdown()
        os._exit(0)
    return 0


async def _serve(worker: Worker) -> bool:
    loop = asyncio.get_running_loop()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            logger.info(
                "%s received: finishing running jobs (again to exit at once)",
                signal.Signals(signum).name,
            )
            worker.request_stop()
        else:
            logger.warning("second signal: exiting now; leases bring the running jobs back")
            logging.shutdown()
            os._exit(130)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await worker.run()
    except PgStackError as error:
        fail(PROG, redact_message(str(error), worker.conninfo))


if __name__ == "__main__":
    sys.exit(main())
