"""Errors on the command line: one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import NoReturn

import psycopg

from pgstack.config import redact_message
from pgstack.errors import PgStackError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a reader that went away

# The database lacks the schema (or a part a newer pgstack added).
_NO_SCHEMA = (
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedFunction,
    psycopg.errors.InvalidSchemaName,
)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line too."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def fail(prog: str, message: str, code: int = EXIT_ERROR) -> NoReturn:
    first_line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    print(f"{prog}: error: {first_line}", file=sys.stderr)
    raise SystemExit(code)


def run_command(prog: str, command: Callable[[], int], url: Callable[[], str | None]) -> int:
    """Run ``command``; turn pgstack's and the database's errors into one line."""
    try:
        return command()
    except PgStackError as error:
        fail(prog, redact_message(str(error), url()))
    except psycopg.OperationalError as error:
        fail(prog, "cannot reach the database: " + redact_message(str(error), url()))
    except _NO_SCHEMA as error:
        text = error.diag.message_primary or str(error)
        hint = "run `pgstack migrate` to create or upgrade schema dbos"
        fail(prog, f"{redact_message(text, url())}: {hint}")
    except psycopg.Error as error:
        text = error.diag.message_primary or str(error)
        fail(prog, redact_message(text, url()))
    except BrokenPipeError:
        # The reader of our output went away (`pgstack dbos list | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(EXIT_BROKEN_PIPE) from None
    except KeyboardInterrupt:
        fail(prog, "interrupted", 130)
