"""Apply the numbered migrations of schema ``dbos``, once each, under an advisory lock."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg

from pgstack import queries
from pgstack.errors import MigrationError

SCHEMA_MARKER = "pgstack job queue"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One file of ``migrations/``: ``0001_core.sql`` is version 1, name ``core``."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def file_name(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"


def migrations_directory() -> Path:
    """Where the migrations are: inside the installed wheel, or the repository's folder."""
    shipped = resources.files("pgstack") / "migrations"
    if shipped.is_dir():
        return Path(str(shipped))
    repository = Path(__file__).resolve().parents[2] / "migrations"
    if repository.is_dir():
        return repository
    raise MigrationError("the migrations folder is missing from this pgstack installation")


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Every migration, in version order; refuses gaps and stray file names."""
    folder = directory or migrations_directory()
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(f"{migration.file_name}: expected version {expected:04d}")
    return found


def applied_migrations(conn: psycopg.Connection) -> dict[int, str]:
    """Version -> checksum of what this database has applied; refuses a foreign ``dbos``."""
    row = conn.execute(queries.SCHEMA_COMMENT).fetchone()
    if row is None:
        return {}
    if not (row[0] or "").startswith(SCHEMA_MARKER):
        raise MigrationError(
            "schema dbos exists but was not created by pgstack (the DBOS Transact library "
            "uses the same name); pgstack will not mix its tables into it. Use another "
            "database, or drop that schema if it is unused."
        )
    return dict(conn.execute(queries.APPLIED_MIGRATIONS).fetchall())


def pending_migrations(conn: psycopg.Connection, known: list[Migration]) -> list[Migration]:
    """The migrations still to apply; refuses changed files and databases ahead of us."""
    applied = applied_migrations(conn)
    by_version = {m.version: m for m in known}
    for version, checksum in sorted(applied.items()):
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {version:04d}, newer than this pgstack knows "
                f"(up to {len(known):04d}): upgrade pgstack"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"{migration.file_name} was changed after it was applied "
                f"(checksum {checksum[:12]} in the database, {migration.checksum[:12]} "
                "on disk): migrations are immutable, add a new one instead"
            )
    if not applied and known and conn.execute(queries.SCHEMA_COMMENT).fetchone() is not None:
        raise MigrationError(
            "schema dbos exists but records no migration: it was not built by pgstack migrate"
        )
    return [m for m in known if m.version not in applied]


def migration_script(migration: Migration) -> str:
    """The SQL that applies one migration, as ``pgstack migrate --print`` shows it."""
    record = queries.RECORD_MIGRATION_LITERAL.format(
        version=migration.version, name=migration.name, checksum=migration.checksum
    )
    return f"-- {migration.file_name}\nbegin;\n{migration.sql.rstrip()}\n\n{record}\ncommit;\n"


def migrate(conninfo: str, *, directory: Path | None = None) -> list[Migration]:
    """Apply the pending migrations, each in its own transaction; returns what was applied."""
    known = load_migrations(directory)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # One migrator at a time; a second one waits, then finds nothing to do.
        conn.execute(queries.LOCK_MIGRATIONS)
        try:
            pending = pending_migrations(conn, known)
            for migration in pending:
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        queries.RECORD_MIGRATION,
                        (migration.version, migration.name, migration.checksum),
                    )
        finally:
            conn.execute(queries.UNLOCK_MIGRATIONS)
    return pending


def pending_script(conninfo: str, *, directory: Path | None = None) -> str:
    """The SQL of every pending migration, for users who apply it with their own tool."""
    known = load_migrations(directory)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        pending = pending_migrations(conn, known)
    return "\n".join(migration_script(m) for m in pending)


def schema_version(conn: psycopg.Connection) -> int:
    """The newest migration applied to this database (0 when none)."""
    return max(applied_migrations(conn), default=0)
