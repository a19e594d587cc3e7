"""Turning payloads into JSON text before they reach the database."""

from __future__ import annotations

import json
from typing import Any

from pgstack.errors import PayloadError


def to_json(value: Any, *, what: str) -> str:
    """JSON text for ``value``; a clear :class:`PayloadError` when it has none."""
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise PayloadError(f"{what} is not JSON-serialisable: {error}") from None
