"""A suspension never overwrites a decision: while the desk decides a task (its row locked), the case's suspension
waits for that decision and then leaves the decided task alone. (`make chaos` found the opposite: the suspension had
read the task before the decision committed and saved it back open, and the task was decided a second time.) And the
running desk's look for work, in one statement, sees only what it may decide."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta

import asyncpg

from base.clock import AcceleratedClock
from base.settings import Settings
from services.departments import planning
from services.departments.desk import PgDeskUnit, ReviewingDesk
from services.departments.rules import Pace
from services.departments.store import Mode, PgDeskStore
from services.departments.tasks import TaskStatus
from tests.factories import opinion_requested
from tests.tools import eventually

PLANNING = "planning"


async def test_a_suspension_waits_for_the_decision_in_progress_and_leaves_it_decided(
        stack: Settings, clock: AcceleratedClock) -> None:
    desk = ReviewingDesk(replace(planning.REVIEWER, pace=Pace(median_days=0.0, spread=0.0, supplement_rate=0.0)),
                         stack, clock)
    case_id = f"G-LOCK-{uuid.uuid4().hex[:8]}"
    now = clock.now()
    request = opinion_requested(case_id=case_id, request_id=f"{case_id}/NRP-101/1", requested_at=now,
                                due_at=now + timedelta(days=14))
    deciding = await asyncpg.connect(stack.dsn(PLANNING))
    suspending = await asyncpg.connect(stack.dsn(PLANNING))
    published: list[object] = []

    async def publish(event: object) -> str:
        published.append(event)
        return "not sent"

    try:
        async with deciding.transaction():
            await desk.on_request(request, PgDeskUnit(deciding, PLANNING, publish), now)
        decision = deciding.transaction()
        await decision.start()
        [task] = [t for t in await PgDeskUnit(deciding, PLANNING, publish).store.due(now + timedelta(days=60), 100)
                  if t.case_id == case_id]  # locked by the desk's unit of work, as decide_due does

        async def suspend() -> None:
            async with suspending.transaction():
                await desk.hold(PgDeskUnit(suspending, PLANNING, publish), case_id, True, now)

        suspension = asyncio.create_task(suspend())

        async def waiting_for_the_lock() -> bool:  # the marker: the suspension is blocked on the task's row
            return bool(await deciding.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
                suspending.get_server_pid()))

        await eventually(waiting_for_the_lock)
        await desk.apply_rules(task, PgDeskUnit(deciding, PLANNING, publish), now)
        await decision.commit()
        await suspension

        row = await deciding.fetchrow(f"SELECT status, decision FROM {PLANNING}.tasks WHERE task_id = $1",
                                      task.task_id)
        assert row["status"] == TaskStatus.DECIDED.value and row["decision"] is not None
        assert len(published) == 1
    finally:
        await deciding.execute(f"DELETE FROM {PLANNING}.tasks WHERE case_id = $1", case_id)
        await deciding.execute(f"DELETE FROM {PLANNING}.case_files WHERE case_id = $1", case_id)
        await deciding.close()
        await suspending.close()


async def test_the_desk_learns_when_it_next_decides_in_one_statement_that_sees_only_open_tasks_under_the_rules(
        stack: Settings, clock: AcceleratedClock) -> None:
    """The running desk waits until then, and opens a unit of work only once it has come: the earliest open task's
    time to be decided, and none while officers decide or while the task is held."""
    desk = ReviewingDesk(planning.REVIEWER, stack, clock)
    case_id = f"G-LOOK-{uuid.uuid4().hex[:8]}"
    now = clock.now()
    request = opinion_requested(case_id=case_id, request_id=f"{case_id}/NRP-101/1", requested_at=now,
                                due_at=now + timedelta(days=14))
    connection = await asyncpg.connect(stack.dsn(PLANNING))

    async def publish(event: object) -> str:
        return "not sent"

    unit = connection.transaction()  # rolled back at the end: the desk's tasks are as they were
    await unit.start()
    try:
        store = PgDeskStore(connection, PLANNING)
        await connection.execute(f"DELETE FROM {PLANNING}.tasks")
        await store.set_mode(Mode.RULES)
        await desk.on_request(request, PgDeskUnit(connection, PLANNING, publish), now)
        [task] = await store.of_case(case_id)
        assert await store.next_decision() == task.decide_at
        await store.set_mode(Mode.HUMAN)
        assert await store.next_decision() is None
        await store.set_mode(Mode.RULES)
        await store.save(task.held())
        assert await store.next_decision() is None
    finally:
        await unit.rollback()
        await connection.close()
