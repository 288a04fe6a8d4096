"""The stack's PostgreSQL counts each role's statements (pg_stat_statements, loaded when the stack starts it), and
counting starts again from nothing when asked: what `concord demo` reads for its statements a hop."""

from __future__ import annotations

import asyncpg

from base.settings import REPORTER, Settings
from deploy.statements import counted, start_counting


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
