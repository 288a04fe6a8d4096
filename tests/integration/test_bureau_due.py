"""The bureau's watch learns in one statement when it next has something to do by the clock: the earliest of its
cases' next checks and of the sharing requests still to be answered (a request answered no longer counts)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from base.settings import Settings
from contracts.departments import BUREAU
from services.bureau import repository

LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)  # before any case's next check in the session's database


async def test_the_next_thing_due_is_the_earliest_case_check_or_request_to_answer(stack: Settings) -> None:
    connection = await asyncpg.connect(stack.dsn(BUREAU))
    unit = connection.transaction()  # rolled back at the end: the bureau's tables are as they were
    await unit.start()
    try:
        before = await repository.next_due(connection)
        agreement_id = f"AG-DUE-{uuid.uuid4().hex[:8]}"
        await connection.execute(
            "INSERT INTO bureau.sharing_requests (agreement_id, request, received_at, decide_at)"
            " VALUES ($1, '{}', $2, $2)", agreement_id, LONG_AGO)
        assert await repository.next_due(connection) == LONG_AGO
        await connection.execute("UPDATE bureau.sharing_requests SET decided_at = $2 WHERE agreement_id = $1",
                                 agreement_id, LONG_AGO)
        assert await repository.next_due(connection) == before
        await connection.execute(
            "INSERT INTO bureau.cases (case_id, application, agent, catalogue_version, status, stage, submitted_at,"
            " next_check_at) VALUES ($1, '{}', 'agent', 'v', 'in_review', 1, $2, $2)", f"G-{agreement_id}", LONG_AGO)
        assert await repository.next_due(connection) == LONG_AGO
    finally:
        await unit.rollback()
        await connection.close()
