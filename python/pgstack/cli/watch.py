"""``pgstack dbos status --watch``: a live table of the queue in the terminal (``rich``).

Every ``--interval`` seconds it reads, in two statements: jobs by name and status
(``dbos.dashboard_counts``: exact up to 10,000 jobs in a group, estimated from the
statistics beyond, marked ``~``), jobs completed and dead-lettered in the last minute,
and the due job that has waited longest. `render_status` turns one reading into one
frame; on a terminal the frame is redrawn in place, elsewhere frames are printed one
after the other. Ctrl-C ends it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pgstack import queries
from pgstack.config import describe, redact_message
from pgstack.connections import connect_kwargs
from pgstack.models import STATUSES

COLUMNS = (*STATUSES, "dead")
# Groups larger than this are estimated rather than counted (dbos.dashboard_counts).
EXACT_LIMIT = 10_000
OTHER_NAMES = "(other names)"


@dataclass
class StatusReading:
    """One reading of the queue, as `render_status` shows it."""

    at: datetime  # the database's clock
    # job name (None: names too rare for the statistics) -> status -> jobs
    counts: dict[str | None, dict[str, int]] = field(default_factory=dict)
    estimated: set[tuple[str | None, str]] = field(default_factory=set)
    completed_last_minute: int = 0
    dead_last_minute: int = 0
    oldest_due_at: datetime | None = None

    @property
    def oldest_wait_seconds(self) -> float | None:
        if self.oldest_due_at is None:
            return None
        return max(0.0, (self.at - self.oldest_due_at).total_seconds())


def read_status(conn: psycopg.Connection[Any]) -> StatusReading:
    """Read the queue once (two statements, one snapshot)."""
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read, read only")
        rows = conn.execute(queries.DASHBOARD_COUNTS, (EXACT_LIMIT,)).fetchall()
        totals = conn.execute(queries.WATCH_TOTALS).fetchone()
    assert totals is not None
    at, completed, dead, oldest = totals
    reading = StatusReading(
        at=at, completed_last_minute=completed, dead_last_minute=dead, oldest_due_at=oldest
    )
    counts: dict[str | None, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COLUMNS, 0))
    for job_name, status, jobs, estimated in rows:
        counts[job_name][status] += jobs
        if estimated:
            reading.estimated.add((job_name, status))
    reading.counts = dict(counts)
    return reading


def age(seconds: float) -> str:
    """3.2 s, 4 min 10 s, 2 h 5 min, 3 d 4 h."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def render_status(reading: StatusReading, *, database: str | None = None) -> RenderableType:
    """One frame: a table of jobs by name and status, then throughput, the longest wait,
    the dead letters and (when given) which database."""
    when = reading.at.isoformat(sep=" ", timespec="seconds")
    table = Table(title=f"pgstack queue at {when}", title_justify="left", expand=False)
    table.add_column("job_name", no_wrap=True, max_width=40)
    for status in COLUMNS:
        table.add_column(status, justify="right")

    def cell(name: str | None, status: str, jobs: int) -> str:
        text = f"{jobs:,}"
        return f"~{text}" if (name, status) in reading.estimated else text

    names = sorted(reading.counts, key=lambda n: (n is None, n or ""))
    totals = dict.fromkeys(COLUMNS, 0)
    approximate = set()
    for name in names:
        row = reading.counts[name]
        table.add_row(
            name if name is not None else OTHER_NAMES,
            *(cell(name, s, row[s]) for s in COLUMNS),
        )
        for status in COLUMNS:
            totals[status] += row[status]
            if (name, status) in reading.estimated:
                approximate.add(status)
    table.add_section()
    table.add_row(
        "(all)",
        *(f"~{totals[s]:,}" if s in approximate else f"{totals[s]:,}" for s in COLUMNS),
        style="bold",
    )

    wait = reading.oldest_wait_seconds
    summary = Text()
    summary.append("throughput: ", style="bold")
    summary.append(
        f"{reading.completed_last_minute:,} completed in the last minute "
        f"({reading.completed_last_minute / 60:.1f}/s), "
        f"{reading.dead_last_minute:,} dead-lettered\n"
    )
    summary.append("oldest pending: ", style="bold")
    summary.append("none due" if wait is None else f"due for {age(wait)}")
    summary.append("\ndead letters: ", style="bold")
    dead = f"~{totals['dead']:,}" if "dead" in approximate else f"{totals['dead']:,}"
    summary.append(dead, style="red" if totals["dead"] else "")
    if database:
        summary.append(f"\ndatabase: {database}", style="dim")
    return Group(table, summary)


def render_error(message: str) -> RenderableType:
    return Text(f"pgstack: {message}; trying again", style="red")


def watch(url: str, interval: float, console: Console | None = None) -> int:
    """Show the queue until Ctrl-C; a lost connection is shown and retried."""
    console = console or Console()
    database = describe(url)
    conn: psycopg.Connection[Any] | None = None

    def frame() -> RenderableType:
        nonlocal conn
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(url, connect_timeout=10, **connect_kwargs("pgstack watch"))
            return render_status(read_status(conn), database=database)
        except psycopg.OperationalError as error:
            if conn is not None:
                conn.close()
                conn = None
            return render_error(
                "cannot reach the database: " + redact_message(str(error).strip(), url)
            )

    try:
        first = frame()
        if not console.is_terminal:
            # A file or a pipe: one frame after the other.
            while True:
                console.print(first)
                console.file.flush()
                time.sleep(interval)
                first = frame()
        with Live(first, console=console, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(frame(), refresh=True)
    except KeyboardInterrupt:
        return 0
    finally:
        if conn is not None:
            conn.close()
