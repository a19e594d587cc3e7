"""`pgstack migrate`: applies migrations once, leaves other schemas alone, refuses danger."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from conftest import scalar
from pgstack.errors import MigrationError
from pgstack.migrate import load_migrations, migrate, migrations_directory, pending_script


def catalog_outside_dbos(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        """
        select n.nspname, c.relname, c.relkind, pg_catalog.obj_description(c.oid)
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname not in ('dbos', 'pg_catalog', 'information_schema', 'pg_toast')
        order by 1, 2
        """
    ).fetchall()


def test_migrate_changes_nothing_outside_dbos_and_twice_is_a_no_op(empty_database_url):
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("create schema app; create table app.orders (id int primary key, total int)")
        conn.execute("insert into app.orders values (1, 10), (2, 20)")
        conn.execute("create table public.users (id int)")
        before = catalog_outside_dbos(conn)
        applied = migrate(empty_database_url)
        assert [m.version for m in applied] == [m.version for m in load_migrations()]
        assert catalog_outside_dbos(conn) == before
        assert conn.execute("select * from app.orders order by id").fetchall() == [(1, 10), (2, 20)]
        assert migrate(empty_database_url) == []
        assert scalar(conn, "select count(*) from dbos.schema_migrations") == len(applied)


def test_a_changed_migration_is_refused(database_url, tmp_path: Path):
    for source in migrations_directory().glob("*.sql"):
        (tmp_path / source.name).write_text(source.read_text())
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an edit after release\n")
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        migrate(database_url, directory=tmp_path)


def test_a_database_newer_than_the_package_is_refused(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into dbos.schema_migrations (version, name, checksum) values (999, 'x', 'y')"
        )
    with pytest.raises(MigrationError, match="newer than this pgstack knows"):
        migrate(database_url)


def test_a_dbos_schema_of_someone_else_is_refused(empty_database_url):
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("create schema dbos; create table dbos.workflow_status (id text)")
    with pytest.raises(MigrationError, match="not created by pgstack"):
        migrate(empty_database_url)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        assert scalar(conn, "select to_regclass('dbos.job_queue')") is None


def test_concurrent_migrators_apply_each_migration_once(empty_database_url):
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(empty_database_url)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(empty_database_url) as conn:
        assert scalar(conn, "select count(*) from dbos.schema_migrations") == len(load_migrations())


def test_print_shows_pending_sql_without_applying_it(empty_database_url):
    script = pending_script(empty_database_url)
    assert "create table dbos.job_queue" in script
    assert "insert into dbos.schema_migrations" in script
    with psycopg.connect(empty_database_url) as conn:
        assert scalar(conn, "select to_regnamespace('dbos')") is None


def test_printed_script_builds_the_same_schema(empty_database_url, database_url):
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(pending_script(empty_database_url).encode())
    assert migrate(empty_database_url) == []
