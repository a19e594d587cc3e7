"""The dashboard's pages, as HTML strings. Every value from outside goes through ``esc``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pgstack.dashboard.chart import throughput_svg
from pgstack.dashboard.data import (
    COUNT_COLUMNS,
    Count,
    DeadLetterPage,
    JobFilter,
    JobPage,
    Overview,
)
from pgstack.dashboard.html import (
    duration,
    esc,
    moment,
    moment_html,
    number,
    pretty_json,
    relative,
    shorten,
    url,
)
from pgstack.models import STATUSES, DeadLetterJob, Job

STATIC_VERSION = "1"
# Statuses a job can still leave: its page follows it live.
LIVE_STATUSES = ("pending", "running")


@dataclass(frozen=True)
class Context:
    """What every page needs besides its data."""

    database: str  # described without its password
    read_only: bool
    csrf: str


# -- the frame -------------------------------------------------------------------


def layout(
    ctx: Context,
    title: str,
    active: str,
    body: str,
    *,
    refresh_ms: int | None = None,
) -> str:
    nav = "".join(
        f'<a href="{href}"{" class=active" if key == active else ""}>{label}</a>'
        for key, href, label in (
            ("overview", "/", "Overview"),
            ("jobs", "/jobs", "Jobs"),
            ("dead", "/dead", "Dead letters"),
        )
    )
    mode = '<span class="badge read-only">read-only</span>' if ctx.read_only else ""
    refresh = f' data-refresh-ms="{refresh_ms}"' if refresh_ms else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{esc(title)} · pgstack</title>
<link rel="stylesheet" href="/static/dashboard.css?v={STATIC_VERSION}">
<script src="/static/dashboard.js?v={STATIC_VERSION}" defer></script>
</head>
<body>
<header class="top">
<a class="brand" href="/">pgstack</a>
<nav>{nav}</nav>
<span class="database" title="database">{esc(ctx.database)}</span>
{mode}
</header>
<main id="main"{refresh}>
{body}
</main>
</body>
</html>
"""


def notice(text_html: str, kind: str = "ok") -> str:
    return f'<p class="notice {esc(kind)}" role="status">{text_html}</p>'


def action_form(
    ctx: Context,
    action: str,
    label: str,
    question: str,
    *,
    kind: str = "",
    fields: dict[str, str] | None = None,
    show_for: str | None = None,
    hidden: bool = False,
) -> str:
    """A POST button that asks first (in the browser, or on a page without JavaScript)."""
    if ctx.read_only:
        return ""
    inputs = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in (fields or {}).items()
    )
    show = f' data-show-for="{esc(show_for)}"' if show_for else ""
    return (
        f'<form method="post" action="{esc(action)}" class="action" '
        f'data-confirm="{esc(question)}"{show}{" hidden" if hidden else ""}>'
        f'<input type="hidden" name="csrf" value="{esc(ctx.csrf)}">'
        '<input type="hidden" name="confirmed" value="">'
        f"{inputs}"
        f'<button type="submit" class="{esc(kind)}">{esc(label)}</button>'
        "</form>"
    )


def status_badge(status: str, *, live: bool = False) -> str:
    marker = " data-status-badge" if live else ""
    return f'<span class="badge status-{esc(status)}"{marker}>{esc(status)}</span>'


def message_page(ctx: Context, title: str, message: str) -> str:
    body = f"<h1>{esc(title)}</h1>\n<p>{esc(message)}</p>\n<p><a href='/'>Overview</a></p>"
    return layout(ctx, title, "", body)


def confirm_page(ctx: Context, action: str, question: str, fields: dict[str, str]) -> str:
    """Asked when an action arrives unconfirmed (a browser without JavaScript)."""
    inputs = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in fields.items()
    )
    body = f"""<h1>Are you sure?</h1>
<p>{esc(question)}</p>
<form method="post" action="{esc(action)}">
<input type="hidden" name="csrf" value="{esc(ctx.csrf)}">
<input type="hidden" name="confirmed" value="1">
{inputs}
<button type="submit" class="danger">Yes</button>
<a class="button" href="/">No, go back</a>
</form>"""
    return layout(ctx, "Confirm", "", body)


def login_page(*, wrong: bool) -> str:
    problem = '<p class="notice error">Wrong token.</p>' if wrong else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Sign in · pgstack</title>
<link rel="stylesheet" href="/static/dashboard.css?v={STATIC_VERSION}">
</head>
<body>
<main id="main" class="login">
<h1>pgstack dashboard</h1>
{problem}
<form method="post" action="/login">
<label>Token <input type="password" name="token" autocomplete="current-password" autofocus
required></label>
<button type="submit">Sign in</button>
</form>
<p class="muted">The token is the value of <code>PGSTACK_DASHBOARD_TOKEN</code> where the
dashboard runs.</p>
</main>
</body>
</html>
"""


# -- overview --------------------------------------------------------------------


def _count_cell(count: Count, href: str) -> str:
    if count.jobs == 0 and not count.estimated:
        return '<td class="num muted">0</td>'
    title = ' title="estimated from the table statistics"' if count.estimated else ""
    text = number(count.jobs, count.estimated)
    return f'<td class="num"{title}><a href="{esc(href)}">{text}</a></td>'


def _list_href(status: str, job_name: str | None) -> str:
    if status == "dead":
        return url("/dead", name=job_name)
    return url("/jobs", status=status, name=job_name)


def overview_body(ctx: Context, ov: Overview) -> str:
    cards = []
    for status in COUNT_COLUMNS:
        count = ov.totals[status]
        label = "dead letters" if status == "dead" else status
        cards.append(
            f'<a class="card status-{status}" href="{esc(_list_href(status, None))}" '
            f'data-total="{status}"><span class="value">{number(count.jobs, count.estimated)}'
            f'</span><span class="label">{label}</span></a>'
        )
    age = ov.oldest_due_age
    cards.append(
        '<div class="card" data-total="oldest-due"><span class="value">'
        f"{esc(duration(age)) if age is not None else '—'}</span>"
        '<span class="label">oldest due job waiting</span></div>'
    )

    completed = sum(m.completed for m in ov.throughput)
    failed = sum(m.failed for m in ov.throughput)
    chart = f"""<section class="panel">
<h2>Throughput, last hour</h2>
<p class="legend"><span class="key completed"></span> completed ({completed:,})
<span class="key failed"></span> failed for good ({failed:,})</p>
{throughput_svg(ov.throughput)}
</section>"""

    rows = []
    for line in sorted(ov.names, key=lambda n: (n.job_name is None, n.job_name or "")):
        name = (
            f'<a href="{esc(url("/jobs", name=line.job_name))}">{esc(line.job_name)}</a>'
            if line.job_name is not None
            else '<span class="muted" title="names too rare to be in the statistics">'
            "(other names)</span>"
        )
        cells = "".join(
            _count_cell(line.by_status[s], _list_href(s, line.job_name)) for s in COUNT_COLUMNS
        )
        rows.append(f"<tr><th scope=row>{name}</th>{cells}</tr>")
    heads = "".join(f'<th scope=col class="num">{s}</th>' for s in COUNT_COLUMNS)
    names_table = (
        f'<table class="grid" id="job-names"><thead><tr><th scope=col>job name</th>{heads}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="muted">No jobs yet.</p>'
    )
    estimated = any(c.estimated for c in ov.totals.values())
    estimate_note = (
        '<p class="muted small">≈: a large group is estimated from the table statistics '
        "(ANALYZE), not counted.</p>"
        if estimated
        else ""
    )

    workers = []
    for w in ov.workers:
        lease = ""
        if w.lease_expires_at is not None:
            expired = w.lease_expires_at < ov.now
            lease = (
                f'<span class="{"error-text" if expired else ""}">'
                f"{'expired ' if expired else ''}{esc(relative(w.lease_expires_at, ov.now))}</span>"
            )
        workers.append(
            f"<tr><td><code>{esc(w.worker_id)}</code></td>"
            f'<td class="num">{w.running:,}</td><td class="num">{w.finished_recently:,}</td>'
            f"<td>{moment_html(w.last_finished_at, ov.now)}</td><td>{lease}</td></tr>"
        )
    window = duration(ov.workers_window)
    workers_table = (
        '<table class="grid" id="workers"><thead><tr><th scope=col>worker</th>'
        '<th scope=col class="num">running</th>'
        f'<th scope=col class="num">finished ({esc(window)})</th>'
        "<th scope=col>last finished</th><th scope=col>lease ends</th></tr></thead>"
        f"<tbody>{''.join(workers)}</tbody></table>"
        if workers
        else f'<p class="muted">No worker held or finished a job in the last {esc(window)}.</p>'
    )

    return f"""<h1>Overview</h1>
<div class="cards">{"".join(cards)}</div>
{chart}
<section class="panel">
<h2>By job name</h2>
{names_table}
{estimate_note}
</section>
<section class="panel">
<h2>Workers</h2>
<p class="muted small">Workers that hold a job, or finished one in the last {esc(window)}
(pgstack keeps no worker table: this is read from the jobs' leases).</p>
{workers_table}
</section>
<p class="muted small">As of {esc(moment(ov.now))}; refreshes every 5 s.</p>"""


# -- jobs ------------------------------------------------------------------------


def _filters(where: JobFilter, names: Iterable[str]) -> str:
    options = ['<option value="">any status</option>'] + [
        f'<option value="{s}"{" selected" if where.status == s else ""}>{s}</option>'
        for s in STATUSES
    ]
    datalist = "".join(f'<option value="{esc(n)}">' for n in names)
    return f"""<form class="filters" method="get" action="/jobs">
<label>Status <select name="status">{"".join(options)}</select></label>
<label>Job name <input name="name" list="job-name-list" value="{esc(where.job_name or "")}"
placeholder="any"></label>
<datalist id="job-name-list">{datalist}</datalist>
<label>Error contains <input name="q" type="search" value="{esc(where.error_contains or "")}"
placeholder="text in the error"></label>
<button type="submit">Filter</button>
<a class="button plain" href="/jobs">Clear</a>
</form>"""


def _progress_cell(job: Job) -> str:
    if job.progress is None:
        return '<td class="muted">—</td>'
    return (
        f'<td><progress max="100" value="{job.progress}"></progress> '
        f'<span class="small">{job.progress}%</span></td>'
    )


def jobs_body(ctx: Context, page: JobPage, where: JobFilter, names: Iterable[str]) -> str:
    rows = []
    for job in page.jobs:
        when = job.completed_at if job.completed_at is not None else job.scheduled_for
        rows.append(
            f'<tr data-job-id="{job.id}"><td class="num"><a href="/jobs/{job.id}">{job.id}</a></td>'
            f"<td>{esc(job.job_name)}</td><td>{status_badge(job.status)}</td>"
            f'<td class="num">{job.attempt}/{job.max_attempts}</td>'
            f"<td>{esc(job.queue_name)}</td>"
            f"<td>{moment_html(job.created_at, page.now)}</td>"
            f"<td>{moment_html(when, page.now)}</td>"
            f"{_progress_cell(job)}"
            f'<td class="error-text" title="{esc(job.error or "")}">'
            f"{esc(shorten(job.error, 80))}</td></tr>"
        )
    base = {"status": where.status, "name": where.job_name, "q": where.error_contains}
    pager = []
    if page.newer_than is not None:
        pager.append(f'<a class="button" rel="prev" href="{esc(url("/jobs", **base))}">Newest</a>')
        newer = url("/jobs", **base, after=page.newer_than)
        pager.append(f'<a class="button" rel="prev" href="{esc(newer)}">← Newer</a>')
    if page.older_than is not None:
        older = url("/jobs", **base, before=page.older_than)
        pager.append(f'<a class="button" rel="next" href="{esc(older)}">Older →</a>')
    table = (
        '<table class="grid" id="jobs"><thead><tr><th scope=col class="num">id</th>'
        "<th scope=col>job name</th><th scope=col>status</th>"
        '<th scope=col class="num">attempt</th><th scope=col>queue</th>'
        "<th scope=col>created</th><th scope=col>finished / due</th>"
        "<th scope=col>progress</th><th scope=col>error</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="muted" id="no-jobs">No job matches.</p>'
    )
    return f"""<h1>Jobs</h1>
{_filters(where, names)}
{table}
<nav class="pager">{"".join(pager)}</nav>"""


# -- one job ---------------------------------------------------------------------


def job_fields(job: Job, now: datetime) -> dict[str, str]:
    """The text of each live field of a job's page (the JSON API sends the same)."""

    def at(value: datetime | None) -> str:
        if value is None:
            return "—"
        return f"{moment(value)} ({relative(value, now)})"

    return {
        "status": job.status + (" (cancel requested)" if job.cancel_requested else ""),
        "attempt": f"{job.attempt} of {job.max_attempts}",
        "progress_text": "no progress reported" if job.progress is None else f"{job.progress}%",
        "progress_message": job.progress_message or "",
        "priority": str(job.priority),
        "queue_name": job.queue_name,
        "dedup_key": job.dedup_key or "—",
        "timeout": "—" if job.timeout_seconds is None else f"{job.timeout_seconds} s",
        "created_at": at(job.created_at),
        "scheduled_for": at(job.scheduled_for),
        "started_at": at(job.started_at),
        "completed_at": at(job.completed_at),
        "locked_by": job.locked_by or "—",
        "lease_expires_at": at(job.lease_expires_at),
        "error": job.error or "",
        "result": "" if job.result is None else pretty_json(job.result),
        "payload": pretty_json(job.payload),
    }


def job_actions(job: Job) -> list[str]:
    """The actions that make sense for the job now."""
    actions = []
    if job.status in LIVE_STATUSES and not job.cancel_requested:
        actions.append("cancel")
    if job.status == "pending":
        actions.append("retry")
    return actions


def job_json(job: Job, now: datetime) -> dict[str, Any]:
    return {
        "id": job.id,
        "job_name": job.job_name,
        "status": job.status,
        "progress": job.progress,
        "final": job.status not in LIVE_STATUSES,
        "actions": job_actions(job),
        "fields": job_fields(job, now),
    }


def job_body(ctx: Context, job: Job, now: datetime, notice_html: str = "") -> str:
    fields = job_fields(job, now)
    allowed = job_actions(job)

    def dd(name: str) -> str:
        return f'<dd data-field="{name}">{esc(fields[name])}</dd>'

    live = job.status in LIVE_STATUSES
    actions = action_form(
        ctx,
        f"/jobs/{job.id}/cancel",
        "Cancel",
        f"Cancel job {job.id} ({job.job_name})?",
        kind="danger",
        show_for="cancel",
        hidden="cancel" not in allowed,
    ) + action_form(
        ctx,
        f"/jobs/{job.id}/retry",
        "Retry now",
        f"Run job {job.id} ({job.job_name}) now?",
        show_for="retry",
        hidden="retry" not in allowed,
    )
    progress_value = job.progress if job.progress is not None else 0
    live_note = '<p class="muted small" id="live-note">Updating every second.</p>' if live else ""
    sections = [
        f'<section class="panel"><h2>Payload</h2><pre class="json" data-field="payload">'
        f"{esc(fields['payload'])}</pre></section>",
        f'<section class="panel"><h2>Error</h2><pre class="error-text" data-field="error">'
        f"{esc(fields['error'])}</pre></section>",
        f'<section class="panel"><h2>Result</h2><pre class="json" data-field="result">'
        f"{esc(fields['result'])}</pre></section>",
    ]
    return f"""{notice_html}
<div class="job" data-job-api="/api/jobs/{job.id}" data-final="{"false" if live else "true"}">
<h1>Job {job.id} <small>{esc(job.job_name)}</small> {status_badge(job.status, live=True)}</h1>
<div class="actions">{actions}</div>
<section class="panel progress-box">
<h2>Progress</h2>
<progress id="progress" max="100" value="{progress_value}"></progress>
<span data-field="progress_text">{esc(fields["progress_text"])}</span>
<p data-field="progress_message" class="progress-message">{esc(fields["progress_message"])}</p>
{live_note}
</section>
<section class="panel">
<dl class="fields">
<dt>status</dt>{dd("status")}
<dt>attempt</dt>{dd("attempt")}
<dt>queue</dt>{dd("queue_name")}
<dt>priority</dt>{dd("priority")}
<dt>dedup key</dt>{dd("dedup_key")}
<dt>timeout</dt>{dd("timeout")}
<dt>created</dt>{dd("created_at")}
<dt>scheduled for</dt>{dd("scheduled_for")}
<dt>started</dt>{dd("started_at")}
<dt>finished</dt>{dd("completed_at")}
<dt>held by</dt>{dd("locked_by")}
<dt>lease ends</dt>{dd("lease_expires_at")}
</dl>
</section>
{"".join(sections)}
</div>"""


# -- dead letters ----------------------------------------------------------------


def dead_body(
    ctx: Context,
    page: DeadLetterPage,
    job_name: str | None,
    names: Iterable[str],
    notice_html: str = "",
) -> str:
    rows = []
    for dead in page.jobs:
        replay = action_form(
            ctx,
            f"/dead/{dead.id}/replay",
            "Replay",
            f"Replay dead letter {dead.id} ({dead.job_name}) as a new job?",
        )
        rows.append(
            f'<tr data-dead-id="{dead.id}"><td class="num"><a href="/dead/{dead.id}">{dead.id}</a>'
            f"</td><td>{esc(dead.job_name)}</td>"
            f'<td class="num">{dead.attempt}/{dead.max_attempts}</td>'
            f"<td>{moment_html(dead.failed_at, page.now)}</td>"
            f'<td class="error-text" title="{esc(dead.error or "")}">'
            f"{esc(shorten(dead.error, 90))}</td><td>{replay}</td></tr>"
        )
    datalist = "".join(f'<option value="{esc(n)}">' for n in names)
    replay_all = ""
    if job_name and page.jobs:
        replay_all = action_form(
            ctx,
            "/dead/replay-all",
            f"Replay every dead letter of {job_name}",
            f"Replay every dead letter of {job_name} as new jobs?",
            kind="danger",
            fields={"name": job_name},
        )
    pager = ""
    if page.next_key is not None:
        failed_at, dead_id = page.next_key
        href = url("/dead", name=job_name, before_at=failed_at.isoformat(), before_id=dead_id)
        pager = f'<a class="button" rel="next" href="{esc(href)}">Older →</a>'
    table = (
        '<table class="grid" id="dead-letters"><thead><tr><th scope=col class="num">id</th>'
        '<th scope=col>job name</th><th scope=col class="num">attempts</th>'
        "<th scope=col>failed</th><th scope=col>error</th><th scope=col></th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="muted" id="no-dead">No dead letters.</p>'
    )
    return f"""{notice_html}
<h1>Dead letters</h1>
<form class="filters" method="get" action="/dead">
<label>Job name <input name="name" list="dead-name-list" value="{esc(job_name or "")}"
placeholder="any"></label>
<datalist id="dead-name-list">{datalist}</datalist>
<button type="submit">Filter</button>
<a class="button plain" href="/dead">Clear</a>
</form>
<div class="actions">{replay_all}</div>
{table}
<nav class="pager">{pager}</nav>"""


def dead_job_body(ctx: Context, dead: DeadLetterJob, now: datetime) -> str:
    replay = action_form(
        ctx,
        f"/dead/{dead.id}/replay",
        "Replay",
        f"Replay dead letter {dead.id} ({dead.job_name}) as a new job?",
    )
    return f"""<h1>Dead letter {dead.id} <small>{esc(dead.job_name)}</small>
{status_badge("dead")}</h1>
<div class="actions">{replay}</div>
<section class="panel">
<dl class="fields">
<dt>attempts</dt><dd>{dead.attempt} of {dead.max_attempts}</dd>
<dt>queue</dt><dd>{esc(dead.queue_name)}</dd>
<dt>priority</dt><dd>{dead.priority}</dd>
<dt>dedup key</dt><dd>{esc(dead.dedup_key or "—")}</dd>
<dt>created</dt><dd>{esc(moment(dead.original_created_at))}
({esc(relative(dead.original_created_at, now))})</dd>
<dt>failed</dt><dd>{esc(moment(dead.failed_at))} ({esc(relative(dead.failed_at, now))})</dd>
</dl>
</section>
<section class="panel"><h2>Payload</h2><pre class="json">{esc(pretty_json(dead.payload))}</pre>
</section>
<section class="panel"><h2>Error</h2><pre class="error-text">{esc(dead.error or "")}</pre>
</section>"""
