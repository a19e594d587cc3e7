"""Which database to use, and how to name it without leaking its password.

`database_url` is the one place that decides, for the CLI, the worker and
`PgStackDBOS`: an explicit connection string, else ``DATABASE_URL``, else the
private PostgreSQL of `pgstack.embedded` (the ``pgstack[embedded]`` extra),
started when needed. ``PGSTACK_NO_EMBEDDED=1`` turns the last one off (the test
suite sets it, so "no database given" stays an error there).
"""

from __future__ import annotations

import os
import re
import sys
import threading

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgstack.errors import ConfigurationError

ENV_NO_EMBEDDED = "PGSTACK_NO_EMBEDDED"

NO_DATABASE = (
    "no database given: set DATABASE_URL (e.g. postgresql://user@localhost:5432/app) "
    "or pass --database-url"
)
NO_EMBEDDED = (
    "no database given and the embedded PostgreSQL is not installed: "
    'pip install "pgstack[embedded]", or set DATABASE_URL (or pass --database-url)'
)

_announced = threading.Event()


def embedded_disabled() -> bool:
    """``PGSTACK_NO_EMBEDDED`` is set (to anything but empty or 0)."""
    return os.environ.get(ENV_NO_EMBEDDED, "") not in ("", "0")


def database_url(explicit: str | None = None, *, announce: bool = True) -> str:
    """The connection string to use: the explicit one, else ``DATABASE_URL``, else the
    embedded PostgreSQL's (started if it is not running).

    Using the embedded server is said once per process on stderr (``announce``), before
    it starts, so it is the first line a command prints. Raises `ConfigurationError`
    when there is no database to use."""
    url = explicit or os.environ.get("DATABASE_URL")
    if not url:
        if embedded_disabled():
            raise ConfigurationError(f"{NO_DATABASE} ({ENV_NO_EMBEDDED} is set)")
        return _embedded_url(announce)
    try:
        conninfo_to_dict(url)
    except Exception as error:  # psycopg raises ProgrammingError for a malformed string
        raise ConfigurationError(
            f"invalid database URL: {redact_message(str(error), url)}"
        ) from None
    return url


def _embedded_url(announce: bool) -> str:
    from pgstack import embedded

    if not embedded.available():
        raise ConfigurationError(NO_EMBEDDED)
    if announce and not _announced.is_set():
        _announced.set()
        try:
            version = f" {embedded.server_version()}"
        except Exception:  # no pg_config, or a broken install: start() will say
            version = ""
        print(
            f"pgstack: using the embedded PostgreSQL{version} at "
            f"{embedded.socket_directory()} (data in {embedded.data_directory()}; "
            "set DATABASE_URL to use another server)",
            file=sys.stderr,
            flush=True,
        )
    try:
        return embedded.database_url()
    except embedded.EmbeddedUnavailable:
        raise ConfigurationError(NO_EMBEDDED) from None
    except (embedded.EmbeddedError, OSError) as error:
        raise ConfigurationError(
            f"cannot start the embedded PostgreSQL in {embedded.data_directory()}: {error} "
            "(set DATABASE_URL to use another server)"
        ) from None


def describe(url: str) -> str:
    """A human description of a connection string with any password removed."""
    try:
        params = conninfo_to_dict(url)
    except Exception:
        return "<unparsable connection string>"
    params.pop("password", None)
    shown = {k: str(v) for k, v in params.items() if v is not None}
    return make_conninfo("", **shown) or "(libpq defaults)"


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact_message(message: str, url: str | None = None) -> str:
    """Remove passwords (of ``url``, and any that look like one) from a message."""
    password = None
    if url:
        try:
            password = conninfo_to_dict(url).get("password")
        except Exception:
            password = None
    if password:
        message = message.replace(str(password), "***")
    message = _URL_PASSWORD.sub(r"\1***@", message)
    return _KEYWORD_PASSWORD.sub(r"\1***", message)
