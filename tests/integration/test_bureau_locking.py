"""A unit of work that waits for a case's lock reads the case as the unit holding it left it, its requests too. (A
load in one statement, lock and all, read the requests as they were when it began to wait; its save then wrote
them back over what the other unit had done, and cases of the demo stopped where that happened.)"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime

import asyncpg

from base.calendar import CHINA, WorkingDayCalendar
from base.settings import Settings
from contracts.departments import BUREAU
from services.bureau import repository
from services.bureau.catalogue import load_catalogue
from services.bureau.model import Case
from services.bureau.repository import PgCases
from services.bureau.samples import application
from tests.tools import eventually

SUBMITTED = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA)


async def test_a_case_locked_after_another_unit_of_work_reads_the_requests_that_unit_changed(stack: Settings) -> None:
    case, _ = Case.open(application(random.Random(7)), "王芳", SUBMITTED, load_catalogue(), WorkingDayCalendar(),
                        case_id=f"G-LOCK-{uuid.uuid4().hex[:8]}")
    holding = await asyncpg.connect(stack.dsn(BUREAU))
    waiting = await asyncpg.connect(stack.dsn(BUREAU))
    try:
        await repository.save(holding, case, None)
        first = holding.transaction()
        await first.start()
        cases = PgCases(holding)
        held = await cases.load(case.case_id, for_update=True)
        assert held is not None and held.requests
        held.requests[0].reminded.append(0.5)  # what the first unit of work changes: one request
        await cases.save(held, None)

        async def load_when_free() -> Case | None:
            async with waiting.transaction():
                return await PgCases(waiting).load(case.case_id, for_update=True)

        second = asyncio.create_task(load_when_free())

        async def waiting_for_the_lock() -> bool:  # the marker: the second load is blocked on the case's row
            return bool(await holding.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
                waiting.get_server_pid()))

        await eventually(waiting_for_the_lock)
        await first.commit()
        seen = await second
        assert seen is not None
        assert seen.requests[0].reminded == [0.5]
        assert seen == held
    finally:
        for table in ("requests", "conflicts", "cases"):
            await holding.execute(f"DELETE FROM bureau.{table} WHERE case_id = $1", case.case_id)
        await holding.close()
        await waiting.close()
