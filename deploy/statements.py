"""How many statements each component sent PostgreSQL during a run, counted by ``pg_stat_statements`` (the stack's
server loads it): with the exchange's hops, the round trips a hop costs, a figure that does not move with the
machine's load as times do. Measured only where the server loads the module; elsewhere the run says so."""

from __future__ import annotations

import asyncpg

from contracts.departments import SERVICE_DEPARTMENTS
from deploy.stack import STATEMENT_STATISTICS


async def start_counting(admin_dsn: str) -> str | None:
    """Count from now on (the counts so far forgotten). Returns why it cannot, or None."""
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f"CREATE EXTENSION IF NOT EXISTS {STATEMENT_STATISTICS}")
        await connection.execute(f"SELECT {STATEMENT_STATISTICS}_reset()")
        return None
    except asyncpg.PostgresError as exc:  # not available, or not loaded by the server
        return str(exc)
    finally:
        await connection.close()


async def counted(admin_dsn: str) -> dict[str, int]:
    """Statements executed since ``start_counting``, by role (a statement sent many times at once counts each)."""
    connection = await asyncpg.connect(admin_dsn)
    try:
        rows = await connection.fetch(
            f"SELECT r.rolname AS role, sum(s.calls)::bigint AS calls FROM {STATEMENT_STATISTICS} s"
            " JOIN pg_roles r ON r.oid = s.userid GROUP BY r.rolname")
    finally:
        await connection.close()
    return {row["role"]: row["calls"] for row in rows}


# The hops between departments the database holds, every run's (a hop: an event a department handled, with the
# exchange's transit; the efficacy report's ``exchange.hops`` counts the same).
HOPS = "SELECT " + " + ".join(f"(SELECT count(*) FROM {d}.transits)" for d in SERVICE_DEPARTMENTS)


async def hops_so_far(admin_dsn: str) -> int:
    """``HOPS`` now: a run's hops are the difference between its end and its start."""
    connection = await asyncpg.connect(admin_dsn)
    try:
        return int(await connection.fetchval(HOPS))
    finally:
        await connection.close()


def per_hop(calls: dict[str, int], hops: int, roles: frozenset[str]) -> str:
    """One line: the statements of the given roles (the components'), in all and a hop, the busiest first."""
    mine = sorted(((role, n) for role, n in calls.items() if role in roles), key=lambda item: (-item[1], item[0]))
    total = sum(n for _, n in mine)
    if not hops:
        return f"PostgreSQL: {total:,} statements, and no hop to share them"
    each = ", ".join(f"{role} {n / hops:.1f}" for role, n in mine)
    return f"PostgreSQL: {total:,} statements, {total / hops:.1f} a hop ({each})"
