"""Small helpers for writing HTML by hand: every value goes through :func:`esc`.

The pages are Python f-strings. Anything that comes from the database or the request
(job names, payloads, errors, worker ids, search text) is escaped with :func:`esc`;
only markup built here is inserted as is.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode


def esc(value: object) -> str:
    """Text made safe for an HTML element or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def url(path: str, **params: object) -> str:
    """``path`` with the non-empty ``params`` as a query string (not yet escaped)."""
    query = urlencode({k: str(v) for k, v in params.items() if v is not None and v != ""})
    return f"{path}?{query}" if query else path


def number(value: int, estimated: bool = False) -> str:
    text = f"{value:,}"
    return f"≈ {text}" if estimated else text


def duration(delta: timedelta) -> str:
    """A short human duration: ``45 s``, ``3 min``, ``2 h 5 min``, ``3 d 4 h``."""
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "in " + duration(-delta)
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def moment(value: datetime | None) -> str:
    """A timestamp in UTC, to the second."""
    if value is None:
        return "—"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def relative(value: datetime | None, now: datetime) -> str:
    """``3 min ago`` or ``in 5 min``, by the database's clock."""
    if value is None:
        return ""
    delta = now - value
    if abs(delta.total_seconds()) < 1:
        return "now"
    return "in " + duration(value - now) if value > now else f"{duration(delta)} ago"


def moment_html(value: datetime | None, now: datetime) -> str:
    if value is None:
        return '<span class="muted">—</span>'
    return (
        f'<time datetime="{esc(value.isoformat())}" title="{esc(moment(value))}">'
        f"{esc(relative(value, now))}</time>"
    )


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def shorten(text: str | None, width: int) -> str:
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
