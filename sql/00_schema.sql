-- The schema and its migration ledger.
--
-- `dbos` is also the default schema of the DBOS Transact library. The comment
-- on the schema is pgstack's marker: the migrator refuses a `dbos` schema
-- without it instead of mixing its tables into somebody else's.

create schema dbos;

comment on schema dbos is
'pgstack job queue: jobs are rows, every state change is a function here.';

create table dbos.schema_migrations (
  version int primary key,
  name text not null,
  -- sha256 of the migration file as shipped; a changed file is refused.
  checksum text not null,
  applied_at timestamptz not null default now()
);

comment on table dbos.schema_migrations is
'Migrations applied by pgstack migrate, with the checksum of each file.';
