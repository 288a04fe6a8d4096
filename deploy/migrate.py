"""Apply the SQL migrations of every component, once each, in order.

Each component keeps its migrations beside its code (``<component>/migrations/NNN_name.sql``). The
department kit's migrations are templates applied once per department schema (``{schema}``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from contracts.departments import SERVICE_DEPARTMENTS

ROOT = Path(__file__).resolve().parent.parent
LOCK_ID = 7_310_001


@dataclass(frozen=True)
class Migration:
    component: str
    name: str
    sql: str


def planned() -> list[Migration]:
    migrations: list[Migration] = []
    for component, folder in [("gateway", ROOT / "gateway" / "migrations"),
                              ("bureau", ROOT / "services" / "bureau" / "migrations")]:
        migrations += [Migration(component, f.name, f.read_text()) for f in sorted(folder.glob("*.sql"))]
    kit = sorted((ROOT / "services" / "kit" / "migrations").glob("*.sql"))
    for department in SERVICE_DEPARTMENTS:
        migrations += [
            Migration(f"kit:{department}", f.name, f.read_text().replace("{schema}", department)) for f in kit
        ]
    return migrations


async def migrate_async(dsn: str) -> list[Migration]:
    connection = await asyncpg.connect(dsn)
    applied_now: list[Migration] = []
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", LOCK_ID)
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
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", LOCK_ID)
        await connection.close()
    return applied_now


def migrate(dsn: str) -> list[Migration]:
    return asyncio.run(migrate_async(dsn))
