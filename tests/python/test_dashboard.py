"""The dashboard over HTTP, without a browser: pages, JSON, actions, token, CSRF, escaping.

The server runs in this process on a free port against the test's own database; the
browser tests (test_dashboard_e2e.py) and the timings on a million jobs
(test_dashboard_perf.py) reuse :func:`running_dashboard` and :class:`Client`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from conftest import BIN, scalar
from pgstack.dashboard import Dashboard, DashboardSettings

TOKEN = "t0ken-for-tests-5e1f"
PASSWORD = "pw-that-must-never-show"


@contextmanager
def running_dashboard(database_url: str, **settings: Any) -> Iterator[Dashboard]:
    """A dashboard on a free loopback port, served from a thread of this process."""
    dashboard = Dashboard(database_url, DashboardSettings(port=0, **settings))
    dashboard.start()
    try:
        yield dashboard
    finally:
        dashboard.close()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Client:
    """A minimal browser: keeps cookies, does not follow redirects."""

    base: str
    cookies: dict[str, str] = field(default_factory=dict)
    opener: urllib.request.OpenerDirector = field(
        default_factory=lambda: urllib.request.build_opener(_NoRedirects)
    )

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        data = urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(
            self.base.rstrip("/") + path, data=data, method=method, headers=headers or {}
        )
        if self.cookies:
            request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        try:
            with self.opener.open(request, timeout=30) as reply:
                status, raw_headers, body = reply.status, reply.headers, reply.read()
        except urllib.error.HTTPError as error:
            status, raw_headers, body = error.code, error.headers, error.read()
        for value in raw_headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(value)
            self.cookies.update({k: m.value for k, m in jar.items()})
        return Response(status, dict(raw_headers.items()), body.decode())

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, form: dict[str, str], **kwargs: Any) -> Response:
        return self.request("POST", path, form=form, **kwargs)

    def csrf(self, path: str = "/") -> str:
        """The CSRF token of the forms of a page (and the cookie that goes with it)."""
        page = self.get(path)
        match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert match, f"no action form on {path}"
        return match[1]


@pytest.fixture
def dashboard(database_url: str) -> Iterator[Dashboard]:
    with running_dashboard(database_url) as running:
        yield running


@pytest.fixture
def client(dashboard: Dashboard) -> Client:
    return Client(dashboard.url)


def claim(db: psycopg.Connection[Any], name: str, worker: str = "worker-a") -> tuple[int, int]:
    row = db.execute(
        "select id, lease_token from dbos.claim_job(%s, array[%s], 1, 60)", (worker, name)
    ).fetchone()
    assert row is not None, f"no {name} job to claim"
    return row[0], row[1]


def dead_letter(db: psycopg.Connection[Any], name: str, payload: Any, error: str) -> int:
    """A job that used up its one attempt: it is in dbos.failed_jobs now."""
    job_id = scalar(
        db, "select dbos.enqueue(%s, %s::jsonb, max_attempts => 1)", (name, json.dumps(payload))
    )
    claimed, token = claim(db, name)
    assert claimed == job_id
    outcome = scalar(db, "select dbos.fail_job(%s, %s, 0, 'worker-a', %s)", (job_id, error, token))
    assert outcome == "dead"
    return int(job_id)


def status_of(db: psycopg.Connection[Any], job_id: int) -> str | None:
    return scalar(db, "select status from dbos.job_queue where id = %s", (job_id,))


# -- reading ---------------------------------------------------------------------------


def test_the_overview_counts_jobs_by_status_and_name(dbos, db, client):
    q = dbos.queue
    q.enqueue_many("send-email", [{"n": n} for n in range(3)])
    q.enqueue("resize-image", {"n": 1})
    claim(db, "resize-image", worker="worker-7")
    done = q.enqueue("send-email", {"n": 9}, priority=5)
    done_id, token = claim(db, "send-email", worker="worker-8")
    assert done_id == done
    assert scalar(db, "select dbos.complete_job(%s, 'worker-8', %s)", (done, token))
    dead_letter(db, "charge-card", {"order": 1}, "card declined")

    overview = client.get("/api/overview").json()
    totals = {s: c["jobs"] for s, c in overview["totals"].items()}
    assert totals == {"pending": 3, "running": 1, "completed": 1, "cancelled": 0, "dead": 1}
    assert not any(c["estimated"] for c in overview["totals"].values())
    names = {n["job_name"]: n["by_status"] for n in overview["names"]}
    assert names["send-email"]["pending"]["jobs"] == 3
    assert names["send-email"]["completed"]["jobs"] == 1
    assert names["charge-card"]["dead"]["jobs"] == 1
    assert len(overview["throughput"]) == 60
    assert overview["throughput"][-1]["completed"] == 1
    assert overview["throughput"][-1]["failed"] == 1
    workers = {w["worker_id"]: w for w in overview["workers"]}
    assert workers["worker-7"]["running"] == 1
    assert workers["worker-8"]["finished_recently"] == 1
    assert overview["oldest_due_at"] is not None

    page = client.get("/")
    assert page.status == 200
    assert 'data-total="pending"><span class="value">3</span>' in page.text
    assert ">send-email</a>" in page.text
    assert ">charge-card</a>" in page.text
    assert "worker-7" in page.text
    assert "<svg" in page.text


def test_the_jobs_list_filters_and_pages(dbos, db, client):
    q = dbos.queue
    ids = q.enqueue_many("bulk", [{"n": n} for n in range(120)])
    other = q.enqueue("other", {})
    failing = q.enqueue("flaky", {}, max_attempts=3)
    claimed, token = claim(db, "flaky")
    assert claimed == failing
    scalar(
        db,
        "select dbos.fail_job(%s, 'SMTP Timeout after 30 s', 0, 'worker-a', %s)",
        (failing, token),
    )

    first = client.get("/api/jobs").json()
    assert [j["id"] for j in first["jobs"]] == [failing, other, *reversed(ids)][:50]
    assert first["newer_than"] is None
    second = client.get(f"/api/jobs?before={first['older_than']}").json()
    assert [j["id"] for j in second["jobs"]] == list(reversed(ids))[48:98]
    back = client.get(f"/api/jobs?after={second['newer_than']}").json()
    assert back["jobs"] == first["jobs"]
    assert back["newer_than"] is None

    by_name = client.get("/api/jobs?name=other").json()
    assert [j["id"] for j in by_name["jobs"]] == [other]
    by_error = client.get("/api/jobs?q=smtp+timeout").json()
    assert [j["id"] for j in by_error["jobs"]] == [failing]
    by_status = client.get("/api/jobs?status=pending&name=flaky").json()
    assert [j["id"] for j in by_status["jobs"]] == [failing]

    page = client.get("/jobs?status=pending&name=bulk")
    assert page.status == 200
    assert page.text.count("<tr data-job-id=") == 50
    assert 'rel="next" href="/jobs?status=pending&amp;name=bulk&amp;before=' in page.text
    assert client.get("/jobs?status=dead").status == 400
    assert client.get("/jobs?before=abc").status == 400
    assert client.get("/jobs?before=%EF%BC%91%EF%BC%92").status == 400  # full-width digits
    assert client.get("/jobs?before=99999999999999999999").status == 400
    assert client.get("/dead?replayed=1,x,2&replayed_count=many").status == 200


def test_a_job_page_shows_the_job_and_follows_it(dbos, db, client):
    job_id = dbos.queue.enqueue("import-csv", {"file": "users.csv"})
    claim(db, "import-csv")
    scalar(db, "select dbos.report_progress(%s, 40, 'row 400 of 1000')", (job_id,))

    page = client.get(f"/jobs/{job_id}")
    assert page.status == 200
    assert f'data-job-api="/api/jobs/{job_id}"' in page.text
    assert '<progress id="progress" max="100" value="40">' in page.text
    assert "row 400 of 1000" in page.text
    assert "&quot;file&quot;: &quot;users.csv&quot;" in page.text

    live = client.get(f"/api/jobs/{job_id}").json()
    assert live["status"] == "running"
    assert live["progress"] == 40
    assert not live["final"]
    assert live["fields"]["progress_message"] == "row 400 of 1000"
    assert live["actions"] == ["cancel"]

    dead = dead_letter(db, "charge-card", {}, "declined")
    moved = client.get(f"/jobs/{dead}")
    assert moved.status == 303
    assert moved.headers["Location"] == f"/dead/{dead}"
    assert client.get(f"/api/jobs/{dead}").json()["status"] == "dead"
    assert "declined" in client.get(f"/dead/{dead}").text
    assert client.get("/jobs/987654321").status == 404
    assert client.get("/api/jobs/987654321").status == 404
    assert client.get("/no-such-page").status == 404


# -- actions -----------------------------------------------------------------------------


def test_cancel_asks_first_and_needs_the_csrf_token(dbos, db, client):
    job_id = dbos.queue.enqueue("report", {}, scheduled_for=timedelta(hours=1))
    path = f"/jobs/{job_id}/cancel"

    refused = client.post(path, {"confirmed": "1"})
    assert refused.status == 403
    forged = client.post(path, {"confirmed": "1", "csrf": "0" * 64})
    assert forged.status == 403
    assert status_of(db, job_id) == "pending"

    csrf = client.csrf(f"/jobs/{job_id}")
    asked = client.post(path, {"csrf": csrf})
    assert asked.status == 200
    assert "Are you sure?" in asked.text
    assert status_of(db, job_id) == "pending"

    other_site = client.post(
        path, {"csrf": csrf, "confirmed": "1"}, headers={"Origin": "http://evil.example"}
    )
    assert other_site.status == 403
    assert status_of(db, job_id) == "pending"

    done = client.post(path, {"csrf": csrf, "confirmed": "1"})
    assert done.status == 303
    assert done.headers["Location"] == f"/jobs/{job_id}?done=cancelled"
    assert status_of(db, job_id) == "cancelled"
    assert "Job cancelled" in client.get(done.headers["Location"]).text


def test_a_csrf_token_belongs_to_its_browser(dbos, db, dashboard):
    job_id = dbos.queue.enqueue("report", {}, scheduled_for=timedelta(hours=1))
    theirs = Client(dashboard.url)
    token = theirs.csrf(f"/jobs/{job_id}")
    mine = Client(dashboard.url)
    mine.get("/")
    reply = mine.post(f"/jobs/{job_id}/cancel", {"csrf": token, "confirmed": "1"})
    assert reply.status == 403
    assert status_of(db, job_id) == "pending"


def test_retry_now_and_replays(dbos, db, client):
    later = dbos.queue.enqueue("digest", {}, scheduled_for=timedelta(hours=1))
    csrf = client.csrf(f"/jobs/{later}")
    reply = client.post(f"/jobs/{later}/retry", {"csrf": csrf, "confirmed": "1"})
    assert reply.headers["Location"] == f"/jobs/{later}?done=retried"
    assert scalar(db, "select scheduled_for <= now() from dbos.job_queue where id = %s", (later,))

    dead = dead_letter(db, "charge-card", {"order": 7}, "declined")
    reply = client.post(f"/dead/{dead}/replay", {"csrf": csrf, "confirmed": "1"})
    assert reply.status == 303
    new_id = int(re.fullmatch(rf"/jobs/(\d+)\?replayed_from={dead}", reply.headers["Location"])[1])
    assert status_of(db, new_id) == "pending"
    assert scalar(db, "select payload from dbos.job_queue where id = %s", (new_id,)) == {"order": 7}
    page = client.get(reply.headers["Location"])
    assert f'<a href="/jobs/{new_id}" id="replayed-job">{new_id}</a>' in page.text

    dead_ids = [dead_letter(db, "send-sms", {"n": n}, "no signal") for n in range(3)]
    reply = client.post("/dead/replay-all", {"csrf": csrf, "confirmed": "1", "name": "send-sms"})
    assert reply.status == 303
    assert scalar(db, "select count(*) from dbos.failed_jobs where job_name = 'send-sms'") == 0
    assert scalar(db, "select count(*) from dbos.job_queue where job_name = 'send-sms'") == 3
    shown = client.get(reply.headers["Location"]).text
    assert "Replayed 3 dead letters as jobs" in shown
    assert dead_ids

    running = dbos.queue.enqueue("busy", {})
    claim(db, "busy")
    refused = client.post(f"/jobs/{running}/retry", {"csrf": csrf, "confirmed": "1"})
    assert refused.status == 409
    assert "only a pending or dead-lettered job can be retried" in refused.text
    missing = client.post("/dead/987654321/replay", {"csrf": csrf, "confirmed": "1"})
    assert missing.status == 404


def test_read_only_shows_no_action_and_refuses_them(dbos, db, database_url):
    job_id = dbos.queue.enqueue("report", {})
    dead = dead_letter(db, "charge-card", {}, "declined")
    with running_dashboard(database_url, read_only=True) as dashboard:
        client = Client(dashboard.url)
        for path in ("/", f"/jobs/{job_id}", "/dead", f"/dead/{dead}", "/dead?name=charge-card"):
            page = client.get(path)
            assert page.status == 200
            assert 'method="post"' not in page.text, path
            assert "read-only" in page.text
        for path, form in (
            (f"/jobs/{job_id}/cancel", {}),
            (f"/dead/{dead}/replay", {}),
            ("/dead/replay-all", {"name": "charge-card"}),
        ):
            reply = client.post(path, {**form, "confirmed": "1"})
            assert reply.status == 403, path
    assert status_of(db, job_id) == "pending"
    assert scalar(db, "select count(*) from dbos.failed_jobs") == 1


# -- who may see it ----------------------------------------------------------------------


def test_with_a_token_nothing_is_shown_without_it(dbos, database_url):
    dbos.queue.enqueue("secret-job", {"card": "4111"})
    with running_dashboard(database_url, token=TOKEN) as dashboard:
        anonymous = Client(dashboard.url)
        for path in ("/", "/jobs", "/dead", "/jobs/1"):
            page = anonymous.get(path)
            assert page.status == 401, path
            assert "secret-job" not in page.text
            assert 'name="token"' in page.text
        assert anonymous.get("/api/overview").status == 401
        assert anonymous.get("/static/dashboard.css").status == 200

        wrong = Client(dashboard.url)
        assert wrong.get("/api/overview", headers={"Authorization": "Bearer nope"}).status == 401
        assert wrong.get("/?token=nope").status == 401
        refused = wrong.post("/login", {"token": "nope"})
        assert refused.status == 401
        assert "Wrong token" in refused.text
        assert "pgstack_session" not in wrong.cookies

        bearer = anonymous.get("/api/overview", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status == 200

        linked = Client(dashboard.url)
        reply = linked.get(f"/jobs?name=secret-job&token={TOKEN}")
        assert reply.status == 303
        assert reply.headers["Location"] == "/jobs?name=secret-job"
        assert linked.cookies["pgstack_session"] != TOKEN
        assert "secret-job" in linked.get("/jobs?name=secret-job").text

        signed_in = Client(dashboard.url)
        assert signed_in.post("/login", {"token": TOKEN}).status == 303
        assert signed_in.get("/").status == 200
        assert TOKEN not in signed_in.get("/").text


def test_without_a_token_only_loopback_names_are_answered(client, dashboard):
    port = urlsplit(dashboard.url).port
    assert client.get("/", headers={"Host": "evil.example"}).status == 403
    assert client.get("/", headers={"Host": f"evil.example:{port}"}).status == 403
    assert client.get("/", headers={"Host": f"localhost:{port}"}).status == 200
    assert client.get("/", headers={"Host": f"127.0.0.1:{port}"}).status == 200


def test_pages_escape_what_jobs_contain(dbos, db, client):
    attack = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    job_id = dbos.queue.enqueue(f'x"><b>{attack}', {"html": attack}, max_attempts=2)
    claimed, token = claim(db, f'x"><b>{attack}')
    scalar(db, "select dbos.fail_job(%s, %s, 0, 'worker-a', %s)", (claimed, attack, token))
    for path in ("/", "/jobs", f"/jobs/{job_id}", f"/jobs?q={quote(attack)}"):
        page = client.get(path)
        assert page.status == 200
        assert "<script>alert" not in page.text, path
        assert "<img src=x" not in page.text, path
        assert '"><b>' not in page.text, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(f"/jobs/{job_id}").text


def test_every_response_has_the_security_headers(client):
    for path in ("/", "/api/overview", "/static/dashboard.js", "/nope"):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
    cookie = [v for k, v in client.get("/").headers.items() if k.lower() == "set-cookie"]
    assert cookie == [] or "SameSite=Strict" in cookie[0]


def test_the_database_password_never_shows(dbos, db, database_url, caplog):
    secret_url = make_conninfo(database_url, password=PASSWORD)
    dead_letter(db, "charge-card", {}, "declined")
    caplog.set_level(logging.DEBUG, logger="pgstack")
    with running_dashboard(secret_url) as dashboard:
        client = Client(dashboard.url)
        for path in ("/", "/jobs", "/dead", "/api/overview", "/nope", f"/?token={PASSWORD}"):
            reply = client.get(path)
            assert PASSWORD not in reply.text, path
            assert PASSWORD not in json.dumps(reply.headers)
        assert "dbname=" in client.get("/").text
    assert caplog.records, "the dashboard logs its requests"
    assert PASSWORD not in caplog.text


# -- the command -------------------------------------------------------------------------


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if k != "PGSTACK_DASHBOARD_TOKEN"}
    environment.update(env or {})
    return subprocess.Popen(
        [str(BIN / "pgstack"), "dashboard", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def test_the_command_refuses_a_public_address_without_a_token(database_url):
    process = _cli("--host", "0.0.0.0", "--database-url", database_url)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("pgstack: error: PGSTACK_DASHBOARD_TOKEN is not set")


def test_the_command_says_to_migrate_a_database_without_the_schema(empty_database_url):
    process = _cli("--port", "0", "--database-url", empty_database_url)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert err.count("\n") == 1, err
    assert "run `pgstack migrate`" in err


def test_the_command_serves_until_sigterm(database_url):
    secret_url = make_conninfo(database_url, password=PASSWORD)
    process = _cli(
        "--host",
        "0.0.0.0",
        "--port",
        "0",
        "--read-only",
        "--database-url",
        secret_url,
        env={"PGSTACK_DASHBOARD_TOKEN": TOKEN},
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith("pgstack dashboard: "), line
        assert "read-only" in line
        assert "token required" in line
        assert PASSWORD not in line
        assert TOKEN not in line
        port = int(re.search(r":(\d+)/", line)[1])
        client = Client(f"http://127.0.0.1:{port}")
        assert client.get("/").status == 401
        assert client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status == 200
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0
    assert PASSWORD not in rest
    assert TOKEN not in rest
