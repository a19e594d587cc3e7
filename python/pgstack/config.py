"""Which database to use, and how to name it without leaking its password."""

from __future__ import annotations

import os
import re

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgstack.errors import ConfigurationError

NO_DATABASE = (
    "no database given: set DATABASE_URL (e.g. postgresql://user@localhost:5432/app) "
    "or pass --database-url"
)


def database_url(explicit: str | None = None) -> str:
    """The connection string to use: the explicit one, else ``DATABASE_URL``."""
    url = explicit or os.environ.get("DATABASE_URL")
    if not url:
        raise ConfigurationError(NO_DATABASE)
    try:
        conninfo_to_dict(url)
    except Exception as error:  # psycopg raises ProgrammingError for a malformed string
        raise ConfigurationError(
            f"invalid database URL: {redact_message(str(error), url)}"
        ) from None
    return url


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
