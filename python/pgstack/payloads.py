"""Turning payloads (and results) into JSON text that PostgreSQL's jsonb accepts."""

from __future__ import annotations

import json
import re
from typing import Any

from pgstack.errors import PayloadError

# \u0000 is valid JSON, but jsonb cannot store it (an odd number of backslashes
# before "u0000" is an escape; an even number is an escaped backslash then text).
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def to_json(value: Any, *, what: str) -> str:
    """JSON text for ``value``; a clear :class:`PayloadError` when it has none, or one
    that PostgreSQL would refuse (NUL characters, unpaired surrogates)."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise PayloadError(f"{what} is not JSON-serialisable: {error}") from None
    except RecursionError:
        raise PayloadError(f"{what} is nested too deeply to serialise") from None
    if _NUL_ESCAPE.search(text):
        raise PayloadError(f"{what} contains a NUL character (\\u0000), which jsonb cannot store")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadError(
            f"{what} contains a string that is not valid Unicode (an unpaired surrogate)"
        ) from None
    return text
