"""The database's roles and every component's migrations, applied once each, in order, by the superuser.

Each component keeps its migrations beside its code (``<component>/migrations/NNN_name.sql``); the department
kit's are templates applied once per department schema (``{schema}``), and the outbox every component has
(``base/migrations``) once per component schema. Each component has a role of its own
that owns its schema and everything in it, and nothing else; the efficacy report reads through ``reporter``,
which may only select what the report needs."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from base.settings import REPORTER
from contracts.departments import GATEWAY, SERVICE_DEPARTMENTS

ROOT = Path(__file__).resolve().parent.parent
LOCK_ID = 7_310_001
# A role per component, each owning the schema of the same name.
COMPONENT_ROLES: tuple[str, ...] = (GATEWAY, *SERVICE_DEPARTMENTS)
ROLES: tuple[str, ...] = (*COMPONENT_ROLES, REPORTER)
# What the efficacy report reads: the bureau's cases, the view of its agreements the gateway publishes, and each
# department's views of the exchange's transit to it and of its own times for the requests it answered.
REPORTED = ("bureau.cases", "bureau.requests", "bureau.conflicts", "gateway.agreement_figures",
            *(f"{d}.{view}" for d in SERVICE_DEPARTMENTS for view in ("transits", "answered")))


@dataclass(frozen=True)
class Migration:
    component: str
    name: str
    sql: str


def _templates(folder: Path, component: str, schemas: tuple[str, ...]) -> list[Migration]:
    """A folder of migrations applied once per schema (``{schema}`` in the text)."""
    return [Migration(f"{component}:{schema}", f.name, f.read_text().replace("{schema}", schema))
            for schema in schemas for f in sorted(folder.glob("*.sql"))]


def planned() -> list[Migration]:
    migrations: list[Migration] = []
    for component, folder in [("gateway", ROOT / "gateway" / "migrations"),
                              ("bureau", ROOT / "services" / "bureau" / "migrations")]:
        migrations += [Migration(component, f.name, f.read_text()) for f in sorted(folder.glob("*.sql"))]
    migrations += _templates(ROOT / "services" / "kit" / "migrations", "kit", SERVICE_DEPARTMENTS)
    migrations += _templates(ROOT / "base" / "migrations", "outbox", COMPONENT_ROLES)
    return migrations


async def ensure_roles(connection: asyncpg.Connection, passwords: Mapping[str, str], database: str) -> None:
    """A login role per component and the reporter, with the given passwords (stored by PostgreSQL as SCRAM
    verifiers); only they may connect to the database."""
    for role in ROLES:
        exists = await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        verb = "ALTER" if exists else "CREATE"
        password = passwords[role].replace("'", "''")
        await connection.execute(
            f"{verb} ROLE \"{role}\" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{password}'")
    await connection.execute(f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC')
    roles = ", ".join(f'"{role}"' for role in ROLES)
    await connection.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {roles}')


async def hand_over(connection: asyncpg.Connection) -> None:
    """Each component's role owns its schema and every table, sequence and function in it; the reporter may
    read what the report needs. Run after every migration (new objects are made by the superuser)."""
    for role in COMPONENT_ROLES:
        await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{role}"')
        await connection.execute(f'ALTER SCHEMA "{role}" OWNER TO "{role}"')
        await connection.execute(f'REVOKE ALL ON SCHEMA "{role}" FROM PUBLIC')
        for kind, query in (
            ("TABLE", "SELECT tablename AS name FROM pg_tables WHERE schemaname = $1"),
            ("VIEW", "SELECT viewname AS name FROM pg_views WHERE schemaname = $1"),
            ("SEQUENCE", "SELECT sequencename AS name FROM pg_sequences WHERE schemaname = $1"),
            ("FUNCTION", "SELECT p.oid::regprocedure::text AS name FROM pg_proc p JOIN pg_namespace n"
                         " ON n.oid = p.pronamespace WHERE n.nspname = $1"),
        ):
            for row in await connection.fetch(query, role):
                name = row["name"] if kind == "FUNCTION" else f'"{role}"."{row["name"]}"'
                await connection.execute(f'ALTER {kind} {name} OWNER TO "{role}"')
    schemas = sorted({table.partition(".")[0] for table in REPORTED})
    for schema in COMPONENT_ROLES:
        await connection.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {REPORTER}')
    await connection.execute(f"GRANT USAGE ON SCHEMA {', '.join(schemas)} TO {REPORTER}")
    await connection.execute(f"GRANT SELECT ON {', '.join(REPORTED)} TO {REPORTER}")


async def migrate_async(admin_dsn: str, passwords: Mapping[str, str], database: str) -> list[Migration]:
    connection = await asyncpg.connect(admin_dsn)
    applied_now: list[Migration] = []
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", LOCK_ID)
        await ensure_roles(connection, passwords, database)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS public.schema_migrations ("
            " component text NOT NULL, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, name))"
        )
        done = {(r["component"], r["name"]) for r in await connection.fetch("SELECT * FROM public.schema_migrations")}
        for migration in planned():
            if (migration.component, migration.name) in done:
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO public.schema_migrations (component, name) VALUES ($1, $2)",
                    migration.component, migration.name,
                )
            applied_now.append(migration)
        async with connection.transaction():
            await hand_over(connection)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", LOCK_ID)
        await connection.close()
    return applied_now


def migrate(admin_dsn: str, passwords: Mapping[str, str], database: str) -> list[Migration]:
    return asyncio.run(migrate_async(admin_dsn, passwords, database))
