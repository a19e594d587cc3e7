"""For every test suite under tests/: no embedded PostgreSQL unless a test asks for one.

pgstack starts its private PostgreSQL when no DATABASE_URL is given (see
pgstack.config). The tests always name their database, and the ones that check what
happens without any say "set DATABASE_URL"; PGSTACK_NO_EMBEDDED=1 keeps that so, here
and in the commands the tests run. Tests of the embedded server (test_embedded.py,
test_quickstart.py) remove it from their own environment.
"""

from __future__ import annotations

import os

os.environ.setdefault("PGSTACK_NO_EMBEDDED", "1")
