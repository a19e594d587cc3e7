"""The dashboard in a real browser: headless Chromium driven by Playwright.

Skipped when the ``playwright`` package or a Chromium binary is missing (CI installs
the Debian package ``chromium`` and the ``dev`` extra; Playwright's own browser
download is never used). Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import WorkerProcess, scalar
from test_dashboard import TOKEN, claim, dead_letter, running_dashboard

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
expect = sync_api.expect

CHROMIUM = os.environ.get("PGSTACK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
WAIT_MS = 15_000
expect.set_options(timeout=WAIT_MS)

HANDLERS = """
import pgstack


@pgstack.job("e2e-replayed")
def replayed(payload, report_progress):
    report_progress(100, "replayed and done")
    return {"replayed": payload}
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package: chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(WAIT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab without cookies; a script error on any page fails the test."""
    browser.clear_cookies()
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield tab
    finally:
        tab.close()
    assert not errors, errors


class Dialogs:
    """Answers the page's confirmations in order; any other dialog is a failure."""

    def __init__(self, page: Any) -> None:
        self.answers: list[tuple[str, bool]] = []
        self.problems: list[str] = []
        page.on("dialog", self._handle)

    def expect(self, question: str, *, accept: bool) -> None:
        self.answers.append((question, accept))

    def _handle(self, dialog: Any) -> None:
        if not self.answers:
            self.problems.append(f"unexpected dialog: {dialog.message}")
            dialog.dismiss()
            return
        question, accept = self.answers.pop(0)
        if question not in dialog.message:
            self.problems.append(f"asked {dialog.message!r}, expected {question!r}")
        if accept:
            dialog.accept()
        else:
            dialog.dismiss()


@pytest.fixture
def dialogs(page: Any) -> Iterator[Dialogs]:
    answers = Dialogs(page)
    yield answers
    assert not answers.problems, answers.problems
    assert not answers.answers, f"never asked: {answers.answers}"


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


@pytest.fixture
def dashboard(database_url: str) -> Iterator[Any]:
    with running_dashboard(database_url) as running:
        yield running


def fill_an_hour(db: psycopg.Connection[Any]) -> None:
    """Jobs finished over the last hour (and a few dead letters), so that the chart and the
    counts have something to show."""
    db.execute(
        """
        insert into dbos.job_queue (
          job_name, payload, status, attempt, scheduled_for, created_at, started_at,
          completed_at, locked_by
        )
        select
          (array['send-email', 'generate-invoice', 'resize-image'])[1 + k % 3],
          jsonb_build_object('n', k),
          'completed', 1, t.at, t.at, t.at, t.at + interval '80 ms',
          'worker-' || (1 + k % 2)
        from generate_series(1, 59) as m
        cross join lateral generate_series(1, (30 + 18 * sin(m / 6.0))::int) as k
        cross join lateral (
          select now() - make_interval(mins => m, secs => k) as at
        ) as t
        """
    )
    db.execute(
        """
        insert into dbos.failed_jobs (
          id, job_name, payload, error, attempt, max_attempts, original_created_at, failed_at
        )
        select
          900000 + m, 'resize-image', jsonb_build_object('image', m),
          'OSError: image file is truncated', 3, 3,
          now() - make_interval(mins => m + 5), now() - make_interval(mins => m)
        from generate_series(3, 58, 11) as m
        """
    )


def test_the_overview_shows_the_queue(dbos, db, dashboard, page):
    fill_an_hour(db)
    q = dbos.queue
    q.enqueue_many("send-email", [{"to": f"user{n}@example.com"} for n in range(12)])
    q.enqueue_many("generate-invoice", [{"order": n} for n in range(4)])
    for _ in range(2):
        claim(db, "send-email", worker="worker-1")
    claim(db, "generate-invoice", worker="worker-2")
    for n in range(3):
        dead_letter(db, "charge-card", {"order": n}, "CardDeclined: insufficient funds")

    page.goto(dashboard.url)
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator('[data-total="pending"] .value')).to_have_text("13")
    expect(page.locator('[data-total="running"] .value')).to_have_text("3")
    expect(page.locator('[data-total="dead"] .value')).to_have_text("9")
    expect(page.locator("#job-names")).to_contain_text("charge-card")
    expect(page.locator("#workers")).to_contain_text("worker-1")
    assert page.locator("svg.chart rect.completed").count() > 30
    screenshot(page, "dashboard-overview.png")

    # The overview refreshes by itself.
    q.enqueue("send-email", {"to": "late@example.com"})
    expect(page.locator('[data-total="pending"] .value')).to_have_text("14")

    page.locator('#job-names a:text-is("charge-card")').click()
    expect(page.locator("h1")).to_have_text("Jobs")
    page.goto(dashboard.url + "dead")
    expect(page.locator("#dead-letters tbody tr")).to_have_count(9)


def test_a_job_page_follows_its_progress(dbos, db, dashboard, page):
    job_id = dbos.queue.enqueue("import-csv", {"file": "users.csv", "rows": 1000})
    claimed, token = claim(db, "import-csv")
    assert claimed == job_id

    page.goto(f"{dashboard.url}jobs/{job_id}")
    badge = page.locator("[data-status-badge]")
    expect(badge).to_have_text("running")
    expect(page.locator('[data-field="progress_text"]')).to_have_text("no progress reported")

    scalar(db, "select dbos.report_progress(%s, 40, 'row 400 of 1000')", (job_id,))
    expect(page.locator('[data-field="progress_text"]')).to_have_text("40%")
    expect(page.locator('[data-field="progress_message"]')).to_have_text("row 400 of 1000")
    assert page.locator("#progress").evaluate("bar => bar.value") == 40

    scalar(db, "select dbos.report_progress(%s, 75, 'row 750 of 1000')", (job_id,))
    expect(page.locator('[data-field="progress_message"]')).to_have_text("row 750 of 1000")
    assert page.locator("#progress").evaluate("bar => bar.value") == 75
    screenshot(page, "dashboard-job.png")

    assert scalar(db, "select dbos.complete_job(%s, 'worker-a', %s)", (job_id, token))
    expect(badge).to_have_text("completed")
    expect(page.locator("#live-note")).to_have_text("Finished.")
    expect(page.locator('form.action[data-show-for="cancel"]')).to_be_hidden()


def test_a_dead_letter_replayed_from_the_page_runs_again(
    dbos, db, database_url, dashboard, page, dialogs, tmp_path
):
    dead_id = dead_letter(db, "e2e-replayed", {"order": 42}, "ConnectionError: payment API down")
    handlers = tmp_path / "e2e_handlers.py"
    handlers.write_text(HANDLERS)
    worker = WorkerProcess(database_url, str(handlers), "--poll-interval", "200")
    try:
        worker.wait_until_logged("started:")
        page.goto(dashboard.url + "dead")
        row = page.locator(f'tr[data-dead-id="{dead_id}"]')
        expect(row).to_contain_text("payment API down")
        dialogs.expect(f"Replay dead letter {dead_id}", accept=True)
        row.get_by_role("button", name="Replay").click()

        link = page.locator("#replayed-job")
        expect(link).to_be_visible()
        new_id = int(link.inner_text())
        assert new_id != dead_id
        assert page.url.endswith(f"/jobs/{new_id}?replayed_from={dead_id}")
        expect(page.locator("[data-status-badge]")).to_have_text("completed")
        expect(page.locator('[data-field="progress_message"]')).to_have_text("replayed and done")
        expect(page.locator('[data-field="result"]')).to_contain_text('"order": 42')
    finally:
        worker.stop()
    assert scalar(db, "select count(*) from dbos.failed_jobs") == 0
    assert scalar(db, "select status from dbos.job_queue where id = %s", (new_id,)) == "completed"


def test_cancel_asks_then_cancels(dbos, db, dashboard, page, dialogs):
    job_id = dbos.queue.enqueue("send-reminder", {"user": 7}, scheduled_for=timedelta(hours=1))
    page.goto(f"{dashboard.url}jobs/{job_id}")
    cancel = page.get_by_role("button", name="Cancel")

    dialogs.expect(f"Cancel job {job_id}", accept=False)
    cancel.click()
    expect(page.locator("[data-status-badge]")).to_have_text("pending")
    assert not dialogs.answers
    assert scalar(db, "select status from dbos.job_queue where id = %s", (job_id,)) == "pending"

    dialogs.expect(f"Cancel job {job_id}", accept=True)
    cancel.click()
    expect(page.locator(".notice")).to_contain_text("Job cancelled")
    expect(page.locator("[data-status-badge]")).to_have_text("cancelled")
    assert scalar(db, "select status from dbos.job_queue where id = %s", (job_id,)) == "cancelled"
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)

    running = dbos.queue.enqueue("long-export", {})
    claim(db, "long-export")
    page.goto(f"{dashboard.url}jobs/{running}")
    dialogs.expect(f"Cancel job {running}", accept=True)
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".notice")).to_contain_text("Cancel requested")
    assert scalar(db, "select cancel_requested from dbos.job_queue where id = %s", (running,))


def test_read_only_mode_has_no_action_buttons(dbos, db, database_url, page):
    job_id = dbos.queue.enqueue("send-email", {})
    dead_id = dead_letter(db, "charge-card", {}, "declined")
    with running_dashboard(database_url, read_only=True) as dashboard:
        for path in ("", f"jobs/{job_id}", "dead", f"dead/{dead_id}", "dead?name=charge-card"):
            page.goto(dashboard.url + path)
            expect(page.locator(".badge.read-only")).to_be_visible()
            assert page.locator("form[method=post]").count() == 0, path
            # Only the list filters' own button is left.
            assert set(page.locator("button").all_inner_texts()) <= {"Filter"}, path
        assert page.get_by_role("button", name="Cancel").count() == 0
        assert page.get_by_role("button", name="Replay").count() == 0
        status = page.evaluate(
            """async (url) => (await fetch(url, {method: "POST", body: "confirmed=1",
                 headers: {"Content-Type": "application/x-www-form-urlencoded"}})).status""",
            f"{dashboard.url}jobs/{job_id}/cancel",
        )
        assert status == 403
    assert scalar(db, "select status from dbos.job_queue where id = %s", (job_id,)) == "pending"


def test_an_xss_payload_renders_as_text(dbos, db, dashboard, page):
    attack = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
    name = "xss<img src=x onerror=window.__xss=3>"
    job_id = dbos.queue.enqueue(name, {"html": attack}, max_attempts=2)
    claimed, token = claim(db, name)
    scalar(db, "select dbos.fail_job(%s, %s, 0, 'worker-a', %s)", (claimed, attack, token))
    claim(db, name)  # the retry: running, so its page updates itself from the JSON API
    scalar(db, "select dbos.report_progress(%s, 10, %s)", (job_id, attack))

    for path in ("", "jobs", "jobs?q=script", f"jobs/{job_id}"):
        page.goto(dashboard.url + path)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__xss") is None, path
        assert page.locator("main img").count() == 0, path
        assert page.locator("main script").count() == 0, path
    expect(page.locator('[data-field="payload"]')).to_contain_text(
        "<script>window.__xss = 1</script>"
    )
    expect(page.locator('[data-field="error"]')).to_have_text(attack)
    expect(page.locator("h1 small")).to_have_text(name)
    scalar(db, "select dbos.report_progress(%s, 20, %s)", (job_id, attack + " again"))
    expect(page.locator('[data-field="progress_message"]')).to_have_text(attack + " again")
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img").count() == 0
    assert json.loads(page.locator('[data-field="payload"]').inner_text()) == {"html": attack}


def test_a_wrong_token_is_refused(dbos, database_url, page):
    dbos.queue.enqueue("private-job", {})
    with running_dashboard(database_url, token=TOKEN) as dashboard:
        reply = page.goto(dashboard.url + "?token=not-the-token")
        assert reply is not None
        assert reply.status == 401
        expect(page.locator(".notice.error")).to_have_text("Wrong token.")
        assert "private-job" not in page.content()

        page.goto(dashboard.url + "jobs")
        page.locator('input[name="token"]').fill("still-wrong")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator(".notice.error")).to_have_text("Wrong token.")

        page.locator('input[name="token"]').fill(TOKEN)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("h1")).to_have_text("Overview")
        expect(page.locator("#job-names")).to_contain_text("private-job")
