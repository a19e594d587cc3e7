"""Results: medians over rounds, one table per workload, ratios, and the JSON file."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

Row = dict[str, Any]

# Which pgbench rows bound which workload ("pgstack / pgbench limit").
LIMITS = {
    "enqueue_single": ["pgbench-insert"],
    "drain_1p": ["pgbench-1", "pgbench-500"],
    "drain_2p": ["pgbench-1", "pgbench-500"],
    "drain_history": ["pgbench-1", "pgbench-500"],
    "drain_1kb": ["pgbench-1", "pgbench-500"],
}


def summarize(rounds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Median, min and max of every numeric figure over the rounds that succeeded."""
    good = [r for r in rounds if "error" not in r]
    fields = {
        k
        for r in good
        for k, v in r.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "at_s"
    }
    summary: dict[str, dict[str, float]] = {}
    for name in sorted(fields):
        values = [float(r[name]) for r in good if isinstance(r.get(name), (int, float))]
        if values:
            summary[name] = {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
                "n": len(values),
            }
    return summary


def finish(results: dict[str, Any]) -> None:
    """Add the summaries and ratios to ``results`` in place."""
    for workload in results["workloads"].values():
        for row in workload["rows"].values():
            row["summary"] = summarize(row["rounds"])
        workload["ratios"] = _ratios(workload)


def _median(row: Row, metric: str) -> float | None:
    figure = row.get("summary", {}).get(metric)
    return None if figure is None else float(figure["median"])


def _ratios(workload: dict[str, Any]) -> dict[str, Any]:
    rows: dict[str, Row] = workload["rows"]
    metric = workload["metric"]
    ours = rows.get("pgstack")
    mine = None if ours is None else _median(ours, metric)
    if mine is None:
        return {}
    ratios: dict[str, Any] = {}
    peers = [(k, _median(r, metric)) for k, r in rows.items() if r["kind"] == "peer"]
    ranked = [(k, v) for k, v in peers if v is not None]
    if ranked:
        lower_wins = metric.endswith("_ms")
        best_key, best = (min if lower_wins else max)(ranked, key=lambda kv: kv[1])
        ratios["best_peer"] = {"peer": best_key, "ratio": mine / best}
    for limit in LIMITS.get(workload["key"], []):
        bound = rows.get(limit)
        value = None if bound is None else _median(bound, metric)
        if value:
            ratios[limit] = mine / value
    return ratios


def _num(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if metric.endswith("_ms") else f"{value:,.0f}"


def _spread(row: Row, metric: str) -> str:
    figure = row.get("summary", {}).get(metric)
    if figure is None:
        return ""
    return f"({_num(figure['min'], metric)} - {_num(figure['max'], metric)})"


def _extras(row: Row) -> str:
    summary = row.get("summary", {})
    parts: list[str] = []
    if "max_running" in summary:
        m = summary["max_running"]
        parts.append(f"max running {m['median']:.0f} ({m['min']:.0f}-{m['max']:.0f})")
    if "peak_rss_mb" in summary:
        parts.append(f"RSS {summary['peak_rss_mb']['median']:.0f} MB")
    capped = [r for r in row["rounds"] if r.get("capped")]
    if capped:
        done = statistics.median(r["jobs"] for r in capped)
        total = capped[0]["prefilled"]
        parts.append(f"capped {len(capped)}/{len(row['rounds'])}: ~{done:,.0f} of {total:,} jobs")
    off = [r["handler_runs_off_by"] for r in row["rounds"] if "handler_runs_off_by" in r]
    if off:
        parts.append(f"handler runs minus jobs: {', '.join(f'{n:+d}' for n in off)}")
    unrecorded = sum(r.get("workers_without_records", 0) for r in row["rounds"])
    if unrecorded:
        parts.append(f"{unrecorded} worker(s) left no handler records")
    errors = [r["error"] for r in row["rounds"] if "error" in r]
    if errors:
        parts.append(f"{len(errors)} failed: {errors[0][:60]}")
    parts.extend(row.get("notes", []))
    return "; ".join(parts)


def table(workload: dict[str, Any]) -> str:
    metric = workload["metric"]
    rows: dict[str, Row] = workload["rows"]
    lines = [workload["title"]]
    if metric.endswith("_ms"):
        columns = f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  {'p50 (min - max)':<18}"
        lines.append(f"  {'system':<34} {columns} notes")
        for row in rows.values():
            p = [_median(row, m) for m in ("p50_ms", "p95_ms", "p99_ms")]
            figures = " ".join(f"{_num(value, metric):>8}" for value in p)
            lines.append(
                f"  {row['label']:<34} {figures}  {_spread(row, metric):<18} {_extras(row)}"
            )
    else:
        lines.append(f"  {'system':<34} {'jobs/s':>9}  {'(min - max)':<20} notes")
        for row in rows.values():
            lines.append(
                f"  {row['label']:<34} {_num(_median(row, metric), metric):>9}  "
                f"{_spread(row, metric):<20} {_extras(row)}"
            )
    ratios = workload.get("ratios", {})
    if "best_peer" in ratios:
        best = ratios["best_peer"]
        better = "lower is better" if metric.endswith("_ms") else "higher is better"
        lines.append(
            f"  pgstack / best peer ({rows[best['peer']]['label']}): {best['ratio']:.2f} ({better})"
        )
    limits = [
        f"{ratios[k]:.2f} of {rows[k]['label']}"
        for k in LIMITS.get(workload["key"], [])
        if k in ratios
    ]
    if limits:
        lines.append(f"  pgstack / pgbench limit: {', '.join(limits)}")
    return "\n".join(lines)


def render(results: dict[str, Any]) -> str:
    return "\n\n".join(table(w) for w in results["workloads"].values() if w["rows"])


def write(results: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = results["meta"]["started_at"].replace(":", "").replace("-", "")
    path = directory / f"{stamp}.json"
    text = json.dumps(results, indent=1, sort_keys=False)
    path.write_text(text)
    (directory / "latest.json").write_text(text)
    return path
