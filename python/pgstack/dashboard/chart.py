"""The throughput chart: inline SVG, one stacked bar per minute, no script needed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timezone

from pgstack.dashboard.data import Minute
from pgstack.dashboard.html import esc

WIDTH = 720
HEIGHT = 180
LEFT = 44  # room for the y axis labels
BOTTOM = 22  # room for the x axis labels
TOP = 8


def _ceiling(value: int) -> int:
    """A round axis maximum at or above ``value`` (at least 2): 2, 3, ..., 10, 20, 30, ..."""
    step = 1
    while True:
        for factor in (2, 3, 4, 5, 6, 8, 10):
            if step * factor >= value:
                return step * factor
        step *= 10


def throughput_svg(minutes: Sequence[Minute]) -> str:
    """Completed (below) and failed (stacked above) jobs per minute, oldest on the left."""
    count = max(len(minutes), 1)
    top = _ceiling(max((m.completed + m.failed for m in minutes), default=0) or 1)
    plot_width = WIDTH - LEFT - 4
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width / count
    bar = max(slot - 2, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        'role="img" aria-labelledby="chart-title">',
        '<title id="chart-title">Jobs completed and failed per minute, last hour</title>',
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_height * (1 - fraction)
        label = round(top * fraction)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - 4}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label:,}</text>'
        )
    for i, minute in enumerate(minutes):
        x = LEFT + i * slot + 1
        done_height = plot_height * minute.completed / top
        failed_height = plot_height * minute.failed / top
        base = TOP + plot_height
        at = minute.minute.astimezone(timezone.utc).strftime("%H:%M")
        tip = esc(f"{at} UTC: {minute.completed:,} completed, {minute.failed:,} failed")
        parts.append(f"<g><title>{tip}</title>")
        parts.append(
            f'<rect class="slot" x="{x:.1f}" y="{TOP}" width="{bar:.1f}" height="{plot_height}"/>'
        )
        if minute.completed:
            parts.append(
                f'<rect class="completed" x="{x:.1f}" y="{base - done_height:.1f}" '
                f'width="{bar:.1f}" height="{done_height:.1f}"/>'
            )
        if minute.failed:
            parts.append(
                f'<rect class="failed" x="{x:.1f}" y="{base - done_height - failed_height:.1f}" '
                f'width="{bar:.1f}" height="{failed_height:.1f}"/>'
            )
        parts.append("</g>")
    if minutes:
        for i, anchor in ((0, "start"), (len(minutes) // 2, "middle"), (len(minutes) - 1, "end")):
            x = LEFT + i * slot + (slot / 2 if anchor == "middle" else 0 if i == 0 else slot)
            at = minutes[i].minute.astimezone(timezone.utc).strftime("%H:%M")
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">'
                f"{esc(at)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
