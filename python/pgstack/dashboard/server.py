"""The dashboard's HTTP server: the standard library's, with a bounded thread pool.

Pages are rendered on the server (:mod:`pgstack.dashboard.pages`); a little JavaScript
asks before every action, refreshes the overview and follows a job once a second. Reads
go through :class:`~pgstack.dashboard.data.DashboardData`, actions through
:class:`~pgstack.client.JobQueue` (``cancel_job``, ``retry_job``,
``retry_dead_letter_job(s)``).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg_pool import ConnectionPool

from pgstack import queries
from pgstack.client import JobQueue
from pgstack.config import describe, redact_message
from pgstack.connections import connect_kwargs
from pgstack.dashboard import pages
from pgstack.dashboard.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Guard,
    cookie_header,
    cookies,
    redact_token,
)
from pgstack.dashboard.data import DashboardData, JobFilter
from pgstack.dashboard.html import esc, url
from pgstack.errors import InvalidArgument, InvalidJobState, JobNotFound, PgStackError
from pgstack.models import STATUSES

log = logging.getLogger("pgstack.dashboard")

MAX_ID = 2**63 - 1
MAX_FORM_BYTES = 64 * 1024
PAGE_SIZE = 50
OVERVIEW_REFRESH_MS = 5000
STATIC_FILES = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_JOB_PATH = re.compile(r"^/jobs/([0-9]{1,19})$")
_JOB_ACTION = re.compile(r"^/jobs/([0-9]{1,19})/(cancel|retry)$")
_DEAD_PATH = re.compile(r"^/dead/([0-9]{1,19})$")
_DEAD_REPLAY = re.compile(r"^/dead/([0-9]{1,19})/replay$")
_API_JOB = re.compile(r"^/api/jobs/([0-9]{1,19})$")
# What cancel_job answers, shown back on the job's page.
CANCEL_NOTICES = {
    "cancelled": "Job cancelled: it will not run.",
    "cancel_requested": (
        "Cancel requested: the worker stops the job at its next heartbeat or progress report."
    ),
    "completed": "The job had already completed: nothing to cancel.",
    "dead": "The job is dead-lettered: nothing to cancel.",
    "retried": "The job is due now: the next free worker runs it.",
}


@dataclass(frozen=True)
class DashboardSettings:
    host: str = "127.0.0.1"
    port: int = 8108
    read_only: bool = False
    token: str | None = None
    threads: int = 8
    database_connections: int = 4
    # A page waits at most this long for a database connection, then says so.
    database_timeout: float = 5.0


APPLICATION_NAME = "pgstack-dashboard"


class BadRequest(Exception):
    """A malformed request: answered 400 with the message."""


class _Response(Exception):
    """Stop handling and send this response (redirects, refusals)."""

    def __init__(
        self,
        status: HTTPStatus,
        body: str = "",
        content_type: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


class Dashboard:
    """One dashboard: the database it reads, its settings, and its HTTP server."""

    def __init__(self, database_url: str, settings: DashboardSettings | None = None) -> None:
        self.settings = settings or DashboardSettings()
        self.database_url = database_url
        self.database = describe(database_url)
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            database_url,
            min_size=1,
            max_size=self.settings.database_connections,
            kwargs=connect_kwargs(APPLICATION_NAME),
            timeout=self.settings.database_timeout,
            open=False,
            name=f"{APPLICATION_NAME} {self.database}",
        )
        self.data = DashboardData(self._pool)
        self.queue = JobQueue(self._pool)
        self.guard = Guard(self.settings.token, bind_host=self.settings.host)
        self._server: DashboardServer | None = None
        self._thread: threading.Thread | None = None

    def check_database(self) -> None:
        """Connect once and call a dashboard function: raises if the database cannot serve."""
        with psycopg.connect(
            self.database_url, connect_timeout=10, **connect_kwargs(APPLICATION_NAME)
        ) as conn:
            conn.execute(queries.DASHBOARD_OLDEST_DUE_AT)

    def bind(self) -> DashboardServer:
        """Open the listening socket (port 0: any free port) and the database pool."""
        if self._server is None:
            self._server = DashboardServer(self)
            self._pool.open(wait=False)
        return self._server

    @property
    def url(self) -> str:
        server = self.bind()
        host, port = server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}/"

    def serve_forever(self) -> None:
        server = self.bind()
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            self.close()

    def start(self) -> str:
        """Serve from a background thread (tests, embedding); returns the URL."""
        server = self.bind()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.url

    def close(self) -> None:
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join(10)
                self._thread = None
            self._server.server_close()
            self._server = None
        self._pool.close()


class DashboardServer(HTTPServer):
    """``HTTPServer`` whose requests run in a fixed pool of threads.

    A slow request never stops the others, and a flood of them queues instead of
    starting a thread each. Connections close after each response (HTTP/1.0), so an
    idle browser never holds a thread.
    """

    allow_reuse_address = True

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        host = dashboard.settings.host
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host.strip("[]"), dashboard.settings.port), Handler)
        self._pool = ThreadPoolExecutor(
            max_workers=dashboard.settings.threads, thread_name_prefix="pgstack-dashboard"
        )

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self._process, request, client_address)

    def _process(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("dashboard: error while serving %s", client_address[0])

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def _job_id(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_ID:
        raise BadRequest(f"not a job id: {text}")
    return value


class Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    protocol_version = "HTTP/1.0"
    server_version = "pgstack-dashboard"
    sys_version = ""
    # A client that stops sending is dropped instead of holding a thread.
    timeout = 15

    # -- plumbing ------------------------------------------------------------------

    @property
    def app(self) -> Dashboard:
        return self.server.dashboard

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # A job's page polls once a second: successful API and asset requests are
        # logged at debug level, the rest at info.
        quiet = self.path.startswith(("/api/", "/static/")) and str(code).startswith(("2", "3"))
        self._log(logging.DEBUG if quiet else logging.INFO, f'"{self.requestline}" {code} {size}')

    def log_message(self, format: str, *args: Any) -> None:
        self._log(logging.INFO, format % args)

    def _log(self, level: int, message: str) -> None:
        text = redact_message(redact_token(message), self.app.database_url)
        log.log(level, "%s %s", self.client_address[0], text)

    def _send(
        self,
        status: HTTPStatus,
        body: str | bytes,
        content_type: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        for cookie in self._new_cookies:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _redirect(self, location: str) -> _Response:
        return _Response(HTTPStatus.SEE_OTHER, "", headers={"Location": location})

    def _json(self, value: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(value, default=_json_default), "application/json")

    def _context(self) -> pages.Context:
        return pages.Context(
            database=self.app.database, read_only=self.app.settings.read_only, csrf=self._csrf
        )

    def _page(self, title: str, active: str, body: str, *, refresh_ms: int | None = None) -> None:
        if self.headers.get("X-Pgstack-Fragment") == "1":
            self._send(HTTPStatus.OK, body)
            return
        html = pages.layout(self._context(), title, active, body, refresh_ms=refresh_ms)
        self._send(HTTPStatus.OK, html)

    def _error_page(self, status: HTTPStatus, title: str, message: str) -> _Response:
        if self._path.startswith("/api/"):
            return _Response(status, json.dumps({"error": message}), "application/json")
        return _Response(status, pages.message_page(self._context(), title, message))

    def _query(self, name: str) -> str | None:
        values = self._params.get(name)
        value = values[0].strip() if values else ""
        return value or None

    def _query_id(self, name: str) -> int | None:
        value = self._query(name)
        if value is None:
            return None
        if not (value.isascii() and value.isdigit() and len(value) <= 19):
            raise BadRequest(f"{name} must be a job id, got {value!r}")
        return _job_id(value)

    # -- the request's life --------------------------------------------------------

    def do_GET(self) -> None:
        self._handle(self._get)

    def do_POST(self) -> None:
        self._handle(self._post)

    def _handle(self, route: Any) -> None:
        started = time.monotonic()
        parts = urlsplit(self.path)
        self._path = parts.path
        self._params = parse_qs(parts.query, keep_blank_values=False)
        self._new_cookies: list[str] = []
        jar = cookies(self.headers.get("Cookie"))
        self._cookies = jar
        csrf_cookie = jar.get(CSRF_COOKIE)
        if not csrf_cookie:
            csrf_cookie = self.app.guard.new_csrf_cookie()
            self._new_cookies.append(cookie_header(CSRF_COOKIE, csrf_cookie))
        self._csrf_cookie = csrf_cookie
        self._csrf = self.app.guard.csrf_token(csrf_cookie)
        try:
            try:
                self._check_access()
                route()
            except _Response:
                raise
            except BadRequest as error:
                raise self._error_page(HTTPStatus.BAD_REQUEST, "Bad request", str(error)) from None
            except JobNotFound as error:
                raise self._error_page(HTTPStatus.NOT_FOUND, "Not found", str(error)) from None
            except (InvalidJobState, InvalidArgument) as error:
                raise self._error_page(HTTPStatus.CONFLICT, "Not done", str(error)) from None
            except (PgStackError, psycopg.Error) as error:
                text = redact_message(str(error).strip(), self.app.database_url)
                first = text.splitlines()[0] if text else type(error).__name__
                log.warning("dashboard: database error: %s", first)
                raise self._error_page(
                    HTTPStatus.SERVICE_UNAVAILABLE, "Database error", first
                ) from None
            except ConnectionError:
                return  # the client went away
            except Exception:
                log.exception("dashboard: error while answering %s", redact_token(self.path))
                raise self._error_page(
                    HTTPStatus.INTERNAL_SERVER_ERROR, "Error", "The dashboard failed; see its log."
                ) from None
        except _Response as response:
            self._send(response.status, response.body, response.content_type, response.headers)
        log.debug(
            "%s %s took %.1f ms", self.command, self._path, (time.monotonic() - started) * 1e3
        )

    def _check_access(self) -> None:
        guard = self.app.guard
        if not guard.host_allowed(self.headers.get("Host")):
            raise _Response(
                HTTPStatus.FORBIDDEN,
                "Unexpected Host header: without a token the dashboard answers only to "
                "loopback names.",
                "text/plain; charset=utf-8",
            )
        if self._path.startswith("/static/") or self._path == "/favicon.ico":
            return
        if not guard.needs_token:
            if self._path == "/login":
                raise self._redirect("/")
            return
        if self._path == "/login" and self.command == "POST":
            return
        authorization = self.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            if guard.token_matches(authorization[len("Bearer ") :].strip()):
                return
            raise self._refuse(wrong=True)
        if guard.session_matches(self._cookies.get(SESSION_COOKIE)):
            if self._path == "/login":
                raise self._redirect("/")
            return
        offered = self._query("token")
        if offered is not None and self.command == "GET":
            if not guard.token_matches(offered):
                raise self._refuse(wrong=True)
            # A link with the token: remember it and drop it from the address bar.
            self._new_cookies.append(cookie_header(SESSION_COOKIE, guard.session_value))
            rest = {k: v[0] for k, v in self._params.items() if k != "token"}
            raise self._redirect(url(self._path, **rest))
        raise self._refuse(wrong=False)

    def _refuse(self, *, wrong: bool) -> _Response:
        if self._path.startswith("/api/"):
            message = "wrong token" if wrong else "a token is required"
            return _Response(
                HTTPStatus.UNAUTHORIZED,
                json.dumps({"error": message}),
                "application/json",
                {"WWW-Authenticate": 'Bearer realm="pgstack"'},
            )
        return _Response(HTTPStatus.UNAUTHORIZED, pages.login_page(wrong=wrong))

    def _check_post(self) -> dict[str, str]:
        """The form of a POST, once its origin and CSRF token are right."""
        origin = self.headers.get("Origin")
        host = self.headers.get("Host")
        if origin and origin != "null" and host and urlsplit(origin).netloc != host:
            raise _Response(HTTPStatus.FORBIDDEN, "Cross-origin request refused.", "text/plain")
        if self.headers.get("Sec-Fetch-Site") == "cross-site":
            raise _Response(HTTPStatus.FORBIDDEN, "Cross-site request refused.", "text/plain")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_FORM_BYTES:
            raise BadRequest("form too large")
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        return {k: v[0] for k, v in parse_qs(raw).items()}

    # -- GET -------------------------------------------------------------------------

    def _get(self) -> None:
        path = self._path
        if path.startswith("/static/"):
            self._static(path[len("/static/") :])
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        elif path == "/login":
            self._send(HTTPStatus.OK, pages.login_page(wrong=False))
        elif path == "/":
            self._overview()
        elif path == "/jobs":
            self._jobs()
        elif match := _JOB_PATH.match(path):
            self._job(_job_id(match[1]))
        elif path == "/dead":
            self._dead()
        elif match := _DEAD_PATH.match(path):
            self._dead_job(_job_id(match[1]))
        elif path == "/api/overview":
            self._json(self.app.data.overview())
        elif path == "/api/jobs":
            page = self.app.data.jobs(
                self._job_filter(),
                before_id=self._query_id("before"),
                after_id=self._query_id("after"),
                limit=PAGE_SIZE,
            )
            self._json(page)
        elif match := _API_JOB.match(path):
            self._api_job(_job_id(match[1]))
        else:
            raise self._error_page(HTTPStatus.NOT_FOUND, "Not found", f"No page at {path}.")

    def _static(self, name: str) -> None:
        content_type = STATIC_FILES.get(name)
        if content_type is None:
            raise self._error_page(HTTPStatus.NOT_FOUND, "Not found", "No such file.")
        data = (resources.files("pgstack.dashboard") / "static" / name).read_bytes()
        self._send(HTTPStatus.OK, data, content_type, {"Cache-Control": "no-cache"})

    def _overview(self) -> None:
        overview = self.app.data.overview()
        body = pages.overview_body(self._context(), overview)
        self._page("Overview", "overview", body, refresh_ms=OVERVIEW_REFRESH_MS)

    def _job_filter(self) -> JobFilter:
        status = self._query("status")
        if status is not None and status not in STATUSES:
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        return JobFilter(
            status=status, job_name=self._query("name"), error_contains=self._query("q")
        )

    def _jobs(self) -> None:
        where = self._job_filter()
        page = self.app.data.jobs(
            where,
            before_id=self._query_id("before"),
            after_id=self._query_id("after"),
            limit=PAGE_SIZE,
        )
        body = pages.jobs_body(self._context(), page, where, self.app.data.job_names())
        self._page("Jobs", "jobs", body)

    def _job(self, job_id: int) -> None:
        view = self.app.data.job(job_id)
        if view.job is None:
            if view.dead is not None:
                raise self._redirect(f"/dead/{job_id}")
            raise self._error_page(HTTPStatus.NOT_FOUND, "Not found", f"No job {job_id}.")
        notices = []
        done = self._query("done")
        if done in CANCEL_NOTICES:
            notices.append(pages.notice(esc(CANCEL_NOTICES[done])))
        replayed_from = self._query_id("replayed_from")
        if replayed_from is not None:
            notices.append(
                pages.notice(
                    f"Dead letter {replayed_from} replayed as job "
                    f'<a href="/jobs/{view.job.id}" id="replayed-job">{view.job.id}</a>.'
                )
            )
        body = pages.job_body(self._context(), view.job, view.now, "".join(notices))
        self._page(f"Job {job_id}", "jobs", body)

    def _api_job(self, job_id: int) -> None:
        view = self.app.data.job(job_id)
        if view.job is not None:
            self._json(pages.job_json(view.job, view.now))
        elif view.dead is not None:
            self._json({"id": job_id, "status": "dead", "final": True, "url": f"/dead/{job_id}"})
        else:
            raise self._error_page(HTTPStatus.NOT_FOUND, "Not found", f"No job {job_id}.")

    def _dead(self) -> None:
        name = self._query("name")
        before_at_text = self._query("before_at")
        before_id = self._query_id("before_id")
        before = None
        if before_at_text is not None and before_id is not None:
            try:
                before = (datetime.fromisoformat(before_at_text), before_id)
            except ValueError:
                raise BadRequest(f"before_at is not a time: {before_at_text!r}") from None
        page = self.app.data.dead_letters(name, before=before, limit=PAGE_SIZE)
        notice = ""
        replayed = self._query("replayed")
        if replayed is not None:
            ids = [int(i) for i in replayed.split(",") if i.isascii() and i.isdigit()][:PAGE_SIZE]
            count = self._query("replayed_count") or ""
            total = int(count) if count.isascii() and count.isdigit() else len(ids)
            links = ", ".join(f'<a href="/jobs/{i}">{i}</a>' for i in ids)
            more = f" and {total - len(ids):,} more" if total > len(ids) else ""
            notice = pages.notice(
                f"Replayed {total:,} dead letter{'s' if total != 1 else ''}"
                + (f" as job{'s' if total != 1 else ''} {links}{more}." if ids else ".")
            )
        names = self.app.data.job_names(dead_only=True)
        body = pages.dead_body(self._context(), page, name, names, notice)
        self._page("Dead letters", "dead", body)

    def _dead_job(self, dead_id: int) -> None:
        view = self.app.data.job(dead_id)
        if view.dead is None:
            if view.job is not None:
                raise self._redirect(f"/jobs/{dead_id}")
            raise self._error_page(HTTPStatus.NOT_FOUND, "Not found", f"No dead letter {dead_id}.")
        body = pages.dead_job_body(self._context(), view.dead, view.now)
        self._page(f"Dead letter {dead_id}", "dead", body)

    # -- POST ------------------------------------------------------------------------

    def _post(self) -> None:
        form = self._check_post()
        path = self._path
        if path == "/login":
            self._login(form)
            return
        if self.app.settings.read_only:
            raise self._error_page(
                HTTPStatus.FORBIDDEN, "Read-only", "This dashboard is read-only: no actions."
            )
        if not self.app.guard.csrf_matches(self._csrf_cookie, form.get("csrf")):
            raise self._error_page(
                HTTPStatus.FORBIDDEN,
                "Refused",
                "The form's CSRF token is missing or stale: reload the page and try again.",
            )
        if match := _JOB_ACTION.match(path):
            job_id, verb = _job_id(match[1]), match[2]
            question = f"Cancel job {job_id}?" if verb == "cancel" else f"Run job {job_id} now?"
            self._confirmed(form, question)
            if verb == "cancel":
                outcome = self.app.queue.cancel_job(job_id)
                raise self._redirect(url(f"/jobs/{job_id}", done=outcome))
            new_id = self.app.queue.retry_job(job_id)
            if new_id != job_id:
                raise self._redirect(url(f"/jobs/{new_id}", replayed_from=job_id))
            raise self._redirect(url(f"/jobs/{job_id}", done="retried"))
        if match := _DEAD_REPLAY.match(path):
            dead_id = _job_id(match[1])
            self._confirmed(form, f"Replay dead letter {dead_id} as a new job?")
            new_id = self.app.queue.retry_dead_letter_job(dead_id)
            raise self._redirect(url(f"/jobs/{new_id}", replayed_from=dead_id))
        if path == "/dead/replay-all":
            name = (form.get("name") or "").strip()
            if not name:
                raise BadRequest("give the job name whose dead letters to replay")
            self._confirmed(form, f"Replay every dead letter of {name} as new jobs?")
            ids = self.app.queue.retry_dead_letter_jobs(name)
            shown = ",".join(str(i) for i in ids[:PAGE_SIZE])
            raise self._redirect(
                url("/dead", name=name, replayed=shown or "none", replayed_count=len(ids))
            )
        raise self._error_page(HTTPStatus.NOT_FOUND, "Not found", f"No action at {path}.")

    def _confirmed(self, form: dict[str, str], question: str) -> None:
        """Without the browser's confirmation (no JavaScript), ask on a page first."""
        if form.get("confirmed") == "1":
            return
        fields = {k: v for k, v in form.items() if k not in ("csrf", "confirmed")}
        raise _Response(
            HTTPStatus.OK, pages.confirm_page(self._context(), self._path, question, fields)
        )

    def _login(self, form: dict[str, str]) -> None:
        guard = self.app.guard
        if not guard.token_matches(form.get("token", "").strip()):
            log.warning("dashboard: wrong token from %s", self.client_address[0])
            raise _Response(HTTPStatus.UNAUTHORIZED, pages.login_page(wrong=True))
        self._new_cookies.append(cookie_header(SESSION_COOKIE, guard.session_value))
        raise self._redirect("/")
