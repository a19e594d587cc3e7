"""``pgstack dashboard``: serve the web dashboard until interrupted."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from types import FrameType

from pgstack.cli.errors import Parser, fail

PROG = "pgstack"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8108


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is from 0 to 65535, got {value}")
    return value


def add_parser(commands: argparse._SubParsersAction[Parser], common: Parser) -> None:
    cmd = commands.add_parser(
        "dashboard",
        parents=[common],
        help="serve the web dashboard",
        description=(
            "Serve the web dashboard. Set PGSTACK_DASHBOARD_TOKEN to require a token "
            "(required when --host is not a loopback address)."
        ),
    )
    cmd.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})"
    )
    cmd.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    cmd.add_argument("--read-only", action="store_true", help="show the queue without any action")


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(database_url: str, args: argparse.Namespace) -> int:
    # Imported here: the other commands need not load the web server.
    from pgstack.dashboard import Dashboard, DashboardSettings
    from pgstack.dashboard.auth import TOKEN_ENV, is_loopback

    token = os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(args.host):
        fail(
            PROG,
            f"{TOKEN_ENV} is not set: refusing to serve the dashboard on {args.host}, "
            "which is not a loopback address (set the token, or use --host 127.0.0.1)",
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    settings = DashboardSettings(
        host=args.host, port=args.port, read_only=args.read_only, token=token
    )
    dashboard = Dashboard(database_url, settings)
    # A database that is unreachable, or lacks the dashboard's functions (run
    # `pgstack migrate`), is one line now rather than an error on every page.
    dashboard.check_database()
    try:
        dashboard.bind()
    except OSError as error:
        fail(PROG, f"cannot listen on {args.host}:{args.port}: {error.strerror or error}")
    mode = ", read-only" if args.read_only else ""
    auth = f", token required ({TOKEN_ENV})" if token else ""
    print(
        f"pgstack dashboard: {dashboard.database} on {dashboard.url}{mode}{auth}",
        file=sys.stderr,
        flush=True,
    )
    signal.signal(signal.SIGTERM, _stop)
    try:
        dashboard.serve_forever()
    except KeyboardInterrupt:
        print("pgstack dashboard: stopped", file=sys.stderr)
    return 0
