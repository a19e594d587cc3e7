"""``pgstack-run``: run the handlers of some files or modules until SIGTERM or SIGINT
(or, with --until-empty, until nothing is left for them)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import psycopg

from pgstack import queries
from pgstack.cli.durations import duration
from pgstack.cli.errors import Parser, fail
from pgstack.cli.loading import collect_handlers, import_target
from pgstack.config import database_url, describe, redact_message
from pgstack.connections import connect_kwargs
from pgstack.errors import ConfigurationError, PgStackError
from pgstack.worker.runner import Worker, check_schema
from pgstack.worker.settings import WorkerSettings
from pgstack.worker.summary import LiveSummary, wants_live_summary

if TYPE_CHECKING:
    from pgstack.worker.metrics import WorkerMetrics

PROG = "pgstack-run"
logger = logging.getLogger("pgstack.worker")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MISSING_METRICS = '--metrics-port needs prometheus-client: pip install "pgstack[metrics]"'
# --until-empty looks this often whether anything is left.
EMPTY_CHECK_INTERVAL = 0.25


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
        help="jobs claimed ahead of free capacity (default: adaptive)",
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
    parser.add_argument(
        "--queue",
        action="append",
        dest="queues",
        metavar="NAME",
        help="serve only this queue (repeat for several; default: every queue)",
    )
    parser.add_argument(
        "--until-empty",
        action="store_true",
        help="stop (gracefully) once none of its jobs is pending or running here: "
        "for batch runs and scripts",
    )
    parser.add_argument(
        "--metrics-port",
        type=_number(int, 0),
        metavar="PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (e.g. 9108; "
        'needs pip install "pgstack[metrics]")',
    )
    parser.add_argument(
        "--metrics-host",
        default="0.0.0.0",
        metavar="HOST",
        help="address of the metrics endpoint (default 0.0.0.0: every interface)",
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
    plain = logging.StreamHandler(sys.stderr)
    plain.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=args.log_level.upper(), handlers=[plain])
    url: str | None = None
    metrics: WorkerMetrics | None = None
    try:
        # Without DATABASE_URL or --database-url: the embedded PostgreSQL, said on the
        # first line. Handlers that read DATABASE_URL (examples/handlers.py) get the same.
        url = database_url(args.database_url)
        os.environ.setdefault("DATABASE_URL", url)
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
            queues=tuple(args.queues) if args.queues else None,
            **extra,
        )
        worker = Worker(url, registry, settings)
        # Checked here too, so a database without the schema is one line of error
        # and not a log line first.
        check_schema(url)
        if args.metrics_port is not None:
            metrics = _serve_metrics(url, args.metrics_host, args.metrics_port)
            worker.stats.metrics = metrics
    except PgStackError as error:
        fail(PROG, redact_message(str(error), url))
    logger.info("pgstack-run: database %s", describe(url))
    if metrics is not None:
        logger.info("metrics on http://%s:%d/metrics", args.metrics_host, metrics.port)
    summary = None
    if wants_live_summary(sys.stderr):
        summary = LiveSummary(sys.stderr, worker.stats)
        summary.setFormatter(plain.formatter)
        root = logging.getLogger()
        root.removeHandler(plain)
        root.addHandler(summary)
    try:
        clean = asyncio.run(_serve(worker, summary, until_empty=args.until_empty))
    finally:
        if summary is not None:
            summary.finish()
        if metrics is not None:
            metrics.close()
    if not clean:
        # Handler threads are still running; their jobs were released. Don't wait for them.
        logging.shutdown()
        os._exit(0)
    return 0


def _serve_metrics(url: str, host: str, port: int) -> WorkerMetrics:
    try:
        from pgstack.worker.metrics import WorkerMetrics
    except ImportError:
        raise ConfigurationError(MISSING_METRICS) from None
    metrics = WorkerMetrics(url)
    metrics.serve(port, host)
    return metrics


def _running(worker: Worker) -> int:
    return sum(1 for job in list(worker.in_hand.values()) if job.state == "running")


async def _serve(worker: Worker, summary: LiveSummary | None, *, until_empty: bool) -> bool:
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
            if summary is not None:
                summary.finish()
            logging.shutdown()
            os._exit(130)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    helpers: list[asyncio.Task[None]] = []
    if summary is not None:
        helpers.append(asyncio.create_task(summary.run(lambda: _running(worker))))
    if until_empty:
        helpers.append(asyncio.create_task(_stop_when_empty(worker)))
    try:
        return await worker.run()
    except PgStackError as error:
        fail(PROG, redact_message(str(error), worker.conninfo))
    finally:
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        if summary is not None:
            summary.refresh(_running(worker))


async def _stop_when_empty(worker: Worker) -> None:
    """--until-empty: stop the worker once the database has had no pending job it could
    claim (``seconds_until_next_job`` is NULL: jobs scheduled later and retries count,
    jobs of a queue at its limit do not) at two looks in a row, with no job in its hands
    and nothing claimed between them."""
    names = worker.registry.names()
    queues = list(worker.settings.queues) if worker.settings.queues else None
    conn: psycopg.AsyncConnection[Any] | None = None
    empty_at: int | None = None  # the claim count at the last empty look
    try:
        while True:
            await asyncio.sleep(EMPTY_CHECK_INTERVAL)
            claimed = worker.stats.claimed
            if worker.in_hand:
                empty_at = None
                continue
            try:
                if conn is None or conn.closed:
                    conn = await psycopg.AsyncConnection.connect(
                        worker.conninfo, connect_timeout=10, **connect_kwargs("pgstack until-empty")
                    )
                cursor = await conn.execute(queries.SECONDS_UNTIL_NEXT_JOB, (names, queues))
                row = await cursor.fetchone()
            except psycopg.Error as error:
                logger.warning(
                    "--until-empty: cannot look at the queue (%s); trying again",
                    redact_message(str(error).strip(), worker.conninfo),
                )
                if conn is not None:
                    await conn.close()
                conn = None
                empty_at = None
                continue
            if row is None or row[0] is not None or worker.in_hand:
                empty_at = None
                continue
            if empty_at == claimed == worker.stats.claimed:
                logger.info("nothing left to run: stopping (--until-empty)")
                worker.request_stop()
                return
            empty_at = claimed
    finally:
        if conn is not None:
            await conn.close()


if __name__ == "__main__":
    sys.exit(main())
