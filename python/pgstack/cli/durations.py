"""Durations on the command line: ``90``, ``90s``, ``30m``, ``24h``, ``7d``."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> timedelta | None:
    """``90``, ``90s``, ``30m``, ``24h``, ``7d``; ``0`` or ``forever`` mean none."""
    if text.strip().lower() in ("forever", "never", "none"):
        return None
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration (e.g. 90s, 30m, 24h, 7d): {text!r}")
    seconds = float(match[1]) * _UNITS[match[2]]
    try:
        return timedelta(seconds=seconds) if seconds > 0 else None
    except OverflowError:
        raise argparse.ArgumentTypeError(f"duration too long: {text!r}") from None
