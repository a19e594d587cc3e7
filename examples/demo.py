"""`make demo`: the whole life of a few jobs, from enqueue to done or dead letter.

    python examples/demo.py            # what `make demo` runs

1. picks the database: DATABASE_URL, else pgstack's embedded PostgreSQL (started,
   with its data kept in a per-user folder; the first line says where);
2. migrates it (`pgstack migrate`);
3. enqueues the examples (examples/enqueue.py): a welcome e-mail, an invoice written in
   the same transaction as its order, a CSV import that reports progress, an order
   confirmation twice (the copy sends nothing), a job that fails twice and then
   succeeds, and one that always fails and ends in the dead-letter table;
4. runs a worker on examples/handlers.py until nothing is left
   (`pgstack-run --until-empty`, retrying after 200 ms, 400 ms, ...);
5. prints `pgstack dbos status` and `pgstack dbos dead`.

Each step is a command you can run yourself; the demo prints them as it goes.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from pgstack.config import database_url, describe
from pgstack.errors import PgStackError

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
# The whole demo takes a few seconds; a worker still running after this is stuck.
WORKER_TIMEOUT = 50.0


def run(*command: str, timeout: float = 60.0) -> None:
    """Run one step, showing it as you would type it from the repository's folder."""
    shown = ["python" if command[0] == sys.executable else Path(command[0]).name]
    shown += [
        os.path.relpath(c, HERE.parent) if c.startswith(str(HERE)) else c for c in command[1:]
    ]
    print(f"\n$ {shlex.join(shown)}", flush=True)
    result = subprocess.run(command, timeout=timeout, check=False)
    if result.returncode != 0:
        raise SystemExit(f"demo: {shown[0]} exited with {result.returncode}")


def main() -> int:
    try:
        url = database_url()  # the embedded server says so on stderr, as the first line
    except PgStackError as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 1
    # The commands below (and the handlers) use the same database.
    os.environ["DATABASE_URL"] = url
    print(f"demo: database {describe(url)}", flush=True)
    started = time.monotonic()
    run(str(BIN / "pgstack"), "migrate")
    run(sys.executable, str(HERE / "enqueue.py"))
    run(
        str(BIN / "pgstack-run"),
        str(HERE / "handlers.py"),
        "--until-empty",
        "--retry-delay-ms",
        "200",
        timeout=WORKER_TIMEOUT,
    )
    run(str(BIN / "pgstack"), "dbos", "status")
    run(str(BIN / "pgstack"), "dbos", "dead", "--limit", "5")
    out = os.environ.get("PGSTACK_EXAMPLES_DIR") or str(Path("/tmp") / "pgstack-examples")
    print(
        f"\ndemo: done in {time.monotonic() - started:.1f} s. The handlers' e-mails and "
        f"invoices are under {out}. Next: `make test`; the README says more "
        "(pgstack dbos status --watch, pgstack-run --metrics-port 9108).",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
