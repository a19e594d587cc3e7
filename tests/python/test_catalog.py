"""sql/ (the readable source) and migrations/ (what databases run) build the same catalog.

Two databases are built, one by applying every migration, one by running sql/*.sql in
file-name order; their catalogs of schema dbos are read back and compared: tables,
columns, constraints, indexes, views, functions (full definitions), comments and
privileges.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgstack.migrate import migrate

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"

CATALOG_QUERIES = {
    "columns": """
        select table_name, column_name, data_type, is_nullable, column_default, is_identity,
               ordinal_position
        from information_schema.columns where table_schema = 'dbos' order by 1, 7""",
    "constraints": """
        select c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
        from pg_constraint c join pg_namespace n on n.oid = c.connamespace
        where n.nspname = 'dbos' order by 1, 2""",
    "indexes": """
        select indexname, indexdef from pg_indexes where schemaname = 'dbos' order by 1""",
    "views": """
        select viewname, definition from pg_views where schemaname = 'dbos' order by 1""",
    "functions": """
        select p.oid::regprocedure::text, pg_get_functiondef(p.oid),
               obj_description(p.oid, 'pg_proc'), p.proacl::text
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'dbos' order by 1""",
    "comments": """
        select c.relname, obj_description(c.oid, 'pg_class'), c.relacl::text
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'dbos' order by 1""",
    "schema": """
        select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = 'dbos'""",
}


def read_catalog(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in CATALOG_QUERIES.items()}


def test_sql_folder_and_migrations_build_the_same_catalog(empty_database_url, database_url):
    # database_url comes from the template built by `migrate`; build the other from sql/.
    migrate(database_url)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        for path in sorted(SQL_DIR.glob("*.sql")):
            conn.execute(path.read_bytes())
    from_migrations = read_catalog(database_url)
    from_sql = read_catalog(empty_database_url)
    for part, rows in from_migrations.items():
        assert from_sql[part] == rows, f"sql/ and migrations/ differ in {part}"
    assert len(from_migrations["functions"]) > 10
