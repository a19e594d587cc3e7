"""Who may see the dashboard and act on it: the token, the session cookie, CSRF, Host.

- With ``PGSTACK_DASHBOARD_TOKEN`` set, every page needs the token once (a form, an
  ``Authorization: Bearer`` header, or ``?token=`` on a link); the browser then keeps a
  session cookie derived from the token, never the token itself.
- Without a token the dashboard only serves loopback addresses, and refuses requests
  whose ``Host`` is not a loopback name: a web page cannot reach it through DNS
  rebinding.
- Every action is a POST carrying a CSRF token: an HMAC, under a secret of this
  process, of a random cookie of the browser. Another site can neither read the cookie
  nor compute the HMAC; cookies are ``SameSite=Strict`` and a cross-site ``Origin`` is
  refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from http.cookies import SimpleCookie

SESSION_COOKIE = "pgstack_session"
CSRF_COOKIE = "pgstack_csrf"
TOKEN_ENV = "PGSTACK_DASHBOARD_TOKEN"
_TOKEN_IN_URL = re.compile(r"(token=)[^&\s\"]*", re.IGNORECASE)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses; any other name is not trusted."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name part of a ``Host`` header (``[::1]:8108`` -> ``::1``)."""
    value = host_header.strip()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def redact_token(text: str) -> str:
    """A request line or URL without the value of any ``token=`` parameter."""
    return _TOKEN_IN_URL.sub(r"\1***", text)


def cookies(header: str | None) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    if header:
        try:
            jar.load(header)
        except Exception:  # a malformed header from a client: no cookies
            return {}
    return {key: morsel.value for key, morsel in jar.items()}


def cookie_header(name: str, value: str, *, max_age: int | None = None) -> str:
    age = f"; Max-Age={max_age}" if max_age is not None else ""
    return f"{name}={value}; Path=/; HttpOnly; SameSite=Strict{age}"


class Guard:
    """The token check and the CSRF tokens of one dashboard process."""

    def __init__(self, token: str | None, *, bind_host: str) -> None:
        self.token = token or None
        self.bind_host = bind_host
        self._secret = secrets.token_bytes(32)
        self._session = (
            hmac.new(self.token.encode(), b"pgstack dashboard session", hashlib.sha256).hexdigest()
            if self.token
            else None
        )

    @property
    def needs_token(self) -> bool:
        return self.token is not None

    def token_matches(self, candidate: str | None) -> bool:
        if self.token is None or candidate is None:
            return False
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    @property
    def session_value(self) -> str:
        assert self._session is not None
        return self._session

    def session_matches(self, candidate: str | None) -> bool:
        if self._session is None or candidate is None:
            return False
        return hmac.compare_digest(candidate.encode(), self._session.encode())

    def host_allowed(self, host_header: str | None) -> bool:
        """Without a token, only loopback names (or the name we bound) may be asked for."""
        if self.needs_token or not host_header:
            return True
        name = host_name(host_header)
        return is_loopback(name) or name.lower() == self.bind_host.lower()

    @staticmethod
    def new_csrf_cookie() -> str:
        return secrets.token_urlsafe(24)

    def csrf_token(self, csrf_cookie: str) -> str:
        return hmac.new(self._secret, csrf_cookie.encode(), hashlib.sha256).hexdigest()

    def csrf_matches(self, csrf_cookie: str | None, submitted: str | None) -> bool:
        if not csrf_cookie or not submitted:
            return False
        return hmac.compare_digest(self.csrf_token(csrf_cookie).encode(), submitted.encode())
