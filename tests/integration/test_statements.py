"""The stack's PostgreSQL counts each role's statements (pg_stat_statements, loaded when the stack starts it), and
counting starts again from nothing when asked; the hops are counted as the efficacy report counts them: what
`concord demo` reads for its statements a hop."""

from __future__ import annotations

import uuid

import asyncpg

from base.settings import REPORTER, Settings
from deploy.statements import HOPS, counted, start_counting


async def test_the_statements_of_a_role_are_counted_from_the_start_of_counting(stack: Settings) -> None:
    assert await start_counting(stack.admin_dsn) is None
    connection = await asyncpg.connect(stack.dsn(REPORTER))
    try:
        for _ in range(7):
            await connection.fetchval("SELECT count(*) FROM bureau.cases")
    finally:
        await connection.close()
    assert (await counted(stack.admin_dsn)).get(REPORTER) == 7
    assert await start_counting(stack.admin_dsn) is None
    assert REPORTER not in await counted(stack.admin_dsn)


async def test_a_hop_is_an_event_a_department_handled_with_its_transit(stack: Settings) -> None:
    connection = await asyncpg.connect(stack.admin_dsn)
    snapshot = connection.transaction(isolation="repeatable_read")  # one snapshot: others' hops do not count
    await snapshot.start()
    try:
        before = await connection.fetchval(HOPS)
        run = uuid.uuid4().hex[:8]
        await connection.executemany(
            "INSERT INTO water.inbox (event_id, contract, sender, outcome, ingress_at) VALUES ($1, 'c', 'bureau', $2,"
            " CASE WHEN $3 THEN now() END)",
            [(f"hop-{run}-1", "handled", True), (f"hop-{run}-2", "handled", True),
             (f"hop-{run}-3", "handled", False),  # from before the exchange stamped transits: no hop
             (f"hop-{run}-4", "unreadable", True), (f"hop-{run}-5", "parked", True)])
        assert await connection.fetchval(HOPS) - before == 2
    finally:
        await snapshot.rollback()  # the test's rows stay out of the stack's database
        await connection.close()
