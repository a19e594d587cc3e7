"""The job handlers of the reference page, in Python, against local stand-ins.

    export DATABASE_URL=postgresql:///app     # the handlers use this database too
    pgstack migrate
    pgstack-run examples/handlers.py          # a worker for these handlers
    python examples/enqueue.py                # one job of each kind

Without DATABASE_URL they all use pgstack's embedded PostgreSQL. `make demo`
(examples/demo.py) does all of it and prints what happened.

Nothing leaves the machine: a "sent" e-mail is a line of outbox.txt and an "uploaded"
invoice is a file, both under $PGSTACK_EXAMPLES_DIR (default <tmp>/pgstack-examples).
The handlers' own tables live in schema ``examples``; the first job creates them.
A handler fails its job by raising; the worker retries it with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import psycopg

import pgstack
from pgstack.config import database_url

log = logging.getLogger("examples")
DEFAULT_OUT = Path(tempfile.gettempdir()) / "pgstack-examples"
OUT = Path(os.environ.get("PGSTACK_EXAMPLES_DIR") or DEFAULT_OUT)

STAND_INS = """
select pg_advisory_xact_lock(hashtext('pgstack examples'));
create schema if not exists examples;
create table if not exists examples.orders (id text primary key, invoice_url text);
create table if not exists examples.email_log (
  order_id text, type text not null, sent_at timestamptz not null default now()
);
create table if not exists examples.imported_rows (file text not null, line int not null);
create table if not exists examples.flaky_tries (key text primary key, tries int not null);
"""
_ready = threading.Lock()
_created = False


def connect() -> psycopg.Connection[Any]:
    """A connection to the jobs' database (DATABASE_URL, else the embedded PostgreSQL),
    stand-in tables included."""
    global _created
    conn = psycopg.connect(database_url(), autocommit=True)
    with _ready:
        if not _created:
            with conn.transaction():
                conn.execute(STAND_INS)
            _created = True
    return conn


def send_email(to: str, subject: str) -> None:
    """The e-mail provider's stand-in: one line of outbox.txt per e-mail."""
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "outbox.txt").open("a") as outbox:
        outbox.write(f"to={to} subject={subject}\n")
    log.info("sent %r to %s", subject, to)


def upload(key: str, content: bytes) -> None:
    """The storage provider's stand-in: a file under OUT."""
    target = (OUT / key).resolve()
    if OUT.resolve() not in target.parents:
        raise ValueError(f"refusing to write outside {OUT}: {key!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)


@pgstack.job("send-welcome-email")
async def send_welcome_email(payload: dict[str, Any]) -> None:
    # An async handler runs on the worker's event loop: blocking work goes to a thread.
    await asyncio.to_thread(send_email, payload["email"], "Welcome!")


@pgstack.job("generate-invoice")
def generate_invoice(payload: dict[str, Any]) -> None:
    order_id = str(payload["orderId"])
    pdf = f"%PDF-1.4\n% stand-in invoice for order {order_id}\n".encode()
    upload(f"invoices/{order_id}.pdf", pdf)
    with connect() as conn:
        updated = conn.execute(
            "update examples.orders set invoice_url = %s where id = %s",
            (f"/invoices/{order_id}.pdf", order_id),
        ).rowcount
    if updated == 0:
        raise LookupError(f"no order {order_id!r} in examples.orders")


@pgstack.job("import-csv")
def import_csv(payload: dict[str, Any], report_progress: Any) -> None:
    file, rows = str(payload["file"]), int(payload.get("rows", 1000))
    report_progress(0, "starting")
    # One transaction: a retry replaces the rows of a failed attempt instead of adding to them.
    with connect() as conn, conn.transaction():
        conn.execute("delete from examples.imported_rows where file = %s", (file,))
        insert = "insert into examples.imported_rows select %s, generate_series(%s::int, %s::int)"
        conn.execute(insert, (file, 1, rows // 2))
        report_progress(50, "halfway")
        conn.execute(insert, (file, rows // 2 + 1, rows))
    report_progress(100, "done")


@pgstack.job("send-order-confirmation")
def send_order_confirmation(payload: dict[str, Any]) -> None:
    order_id = str(payload["orderId"])
    # Idempotent: delivery is at least once, so the job may run more than once.
    # The lock makes two copies of it running at the same time take turns.
    with connect() as conn, conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"confirm {order_id}",))
        sent = conn.execute(
            "select 1 from examples.email_log where order_id = %s and type = %s",
            (order_id, "order_confirmation"),
        ).fetchone()
        if sent:
            log.info("email already sent for order %s, skipping", order_id)
            return
        send_email(f"order-{order_id}", f"Order {order_id} confirmed")
        conn.execute(
            "insert into examples.email_log (order_id, type, sent_at) values (%s, %s, now())",
            (order_id, "order_confirmation"),
        )


@pgstack.job("flaky")
def flaky(payload: dict[str, Any]) -> None:
    # Fails twice per key, then succeeds: the tries are counted in the database,
    # because each attempt may run in another process.
    with connect() as conn:
        tries = conn.execute(
            "insert into examples.flaky_tries values (%s, 1) on conflict (key)"
            " do update set tries = flaky_tries.tries + 1 returning tries",
            (str(payload["key"]),),
        ).fetchone()[0]
    if tries <= 2:
        raise RuntimeError(f"try {tries} fails on purpose; try 3 will succeed")


@pgstack.job("always-fails")
def always_fails(payload: dict[str, Any]) -> None:
    # After max_attempts the job moves to dbos.failed_jobs: see `pgstack dbos dead`,
    # and replay it with `pgstack dbos retry <id>`.
    raise RuntimeError(f"always fails (payload {payload})")
