"""How the CLI prints: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any


def cell(value: Any, width: int | None = None) -> str:
    if value is None:
        text = ""
    elif isinstance(value, datetime):
        text = value.isoformat(sep=" ", timespec="seconds")
    elif isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"))
    else:
        text = str(value)
    text = text.replace("\n", " ")
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, widths: dict[int, int] | None = None
) -> str:
    """A plain aligned table; ``widths`` caps some columns (index -> characters)."""
    caps = widths or {}
    texts = [[cell(v, caps.get(i)) for i, v in enumerate(row)] for row in rows]
    sizes = [len(h) for h in headers]
    for row in texts:
        for i, text in enumerate(row):
            sizes[i] = max(sizes[i], len(text))
    lines = ["  ".join(h.ljust(sizes[i]) for i, h in enumerate(headers)).rstrip()]
    lines.append("  ".join("-" * size for size in sizes))
    lines += ["  ".join(t.ljust(sizes[i]) for i, t in enumerate(row)).rstrip() for row in texts]
    return "\n".join(lines)


def to_json(value: Any) -> str:
    def default(item: Any) -> Any:
        if isinstance(item, datetime):
            return item.isoformat()
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            return dataclasses.asdict(item)
        raise TypeError(f"cannot show {type(item).__name__} as JSON")

    return json.dumps(value, default=default, indent=2)
