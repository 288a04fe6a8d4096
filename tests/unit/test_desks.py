"""The desks' handlers on an in-memory unit: tasks opened by requests, decided at the department's pace, held
while a case is suspended, parked when a rule fails; the coordination office's conflicts."""

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from base.calendar import CHINA, WorkingDayCalendar
from base.clock import SystemClock
from base.settings import Settings
from contracts.bureau import (
    CaseResumed,
    CaseSuspended,
    DeadlineEscalated,
    Decision,
    OpinionIssued,
    OpinionRequested,
    Refusal,
    RefusalGround,
    SiteSurveyArranged,
    SupplementProvided,
)
from contracts.coordination import ConflictResolved, Resolution
from services.departments import coordination, planning
from services.departments.desk import DUE_PER_LOOK, CoordinationDesk, DeskUnit, ReviewingDesk
from services.departments.rules import CaseFile, Opinion, Pace
from services.departments.store import Mode
from services.departments.tasks import Task, TaskKind, TaskStatus
from tests.factories import conflict_raised, opinion_requested
from tests.fakes import MemoryDeskUnit

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA)
SETTINGS = Settings(kafka_security="PLAINTEXT")
CALENDAR = WorkingDayCalendar()
STEADY = Pace(median_days=2.0, spread=0.3, supplement_rate=0.0)
LATER = MONDAY + timedelta(days=60)  # past any task's pace


def planning_desk(**changes: object) -> ReviewingDesk:
    return ReviewingDesk(replace(planning.REVIEWER, **({"pace": STEADY} | changes)), SETTINGS, SystemClock())


def request(case_id: str = "G-1", n: int = 1) -> OpinionRequested:
    return opinion_requested(case_id=case_id, request_id=f"{case_id}/NRP-101/{n}", requested_at=MONDAY,
                             due_at=MONDAY + timedelta(days=14))


async def test_a_request_is_decided_by_the_rules_once_the_departments_pace_allows() -> None:
    desk, unit = planning_desk(), MemoryDeskUnit()
    await desk.on_request(request(), unit, MONDAY)
    task = await unit.store.task("G-1/NRP-101/1")
    assert task is not None and task.status is TaskStatus.OPEN and task.decide_at > MONDAY
    assert CALENDAR.working_days_between(MONDAY, task.decide_at) == pytest.approx(STEADY.days(task.task_id))

    assert await desk.decide_due(unit, task.decide_at - timedelta(minutes=1)) == 0 and unit.published == []
    assert await desk.decide_due(unit, task.decide_at) == 1
    [opinion] = unit.published
    assert isinstance(opinion, OpinionIssued) and opinion.request_id == "G-1/NRP-101/1"
    assert opinion.decision is planning.decide(request(), CaseFile("G-1", None, None)).decision
    decided = await unit.store.task("G-1/NRP-101/1")
    assert decided is not None and decided.status is TaskStatus.DECIDED and decided.decided_by == "规划科 赵敏"


async def test_a_round_of_decisions_ends_when_its_time_is_up_and_the_next_takes_the_rest() -> None:
    """A round commits once its time is up (what it decided goes out then); the tasks still due are the next
    round's. With no time at all, a round decides one task."""
    desk, unit = planning_desk(), MemoryDeskUnit()
    for case_id in ("G-1", "G-2", "G-3"):
        await desk.on_request(request(case_id), unit, MONDAY)
    assert [await desk.decide_due(unit, LATER, budget_seconds=0) for _ in range(4)] == [1, 1, 1, 0]
    assert sorted(o.case_id for o in unit.published if isinstance(o, OpinionIssued)) == ["G-1", "G-2", "G-3"]
    for case_id in ("G-4", "G-5", "G-6"):
        await desk.on_request(request(case_id), unit, MONDAY)
    assert await desk.decide_due(unit, LATER, budget_seconds=60) == 3  # time enough: all three


async def test_a_round_takes_its_tasks_a_look_at_a_time() -> None:
    """A round asks for DUE_PER_LOOK tasks at a time (what it decides before its time is up, not a hundred it then
    leaves), and goes on asking while its time lasts."""
    desk, unit = planning_desk(), MemoryDeskUnit()
    cases = [f"G-{n}" for n in range(2 * DUE_PER_LOOK + 5)]
    for case_id in cases:
        await desk.on_request(request(case_id), unit, MONDAY)
    asked: list[int] = []
    due = unit.store.due

    async def counted(now: datetime, limit: int) -> list[Task]:
        asked.append(limit)
        return await due(now, limit)

    unit.store.due = counted  # type: ignore[method-assign]
    assert await desk.decide_due(unit, LATER) == len(cases)
    assert asked == [DUE_PER_LOOK] * 3


async def test_a_redelivered_request_keeps_the_task_it_opened() -> None:
    desk, unit = planning_desk(), MemoryDeskUnit()
    await desk.on_request(request(), unit, MONDAY)
    await desk.decide_due(unit, LATER)
    await desk.on_request(request(), unit, MONDAY + timedelta(days=1))
    task = await unit.store.task("G-1/NRP-101/1")
    assert task is not None and task.status is TaskStatus.DECIDED and len(unit.published) == 1


async def test_a_rule_that_fails_parks_its_task_with_the_error_and_the_others_are_decided() -> None:
    desk, unit = planning_desk(decide=fragile), MemoryDeskUnit()
    for case_id in ("G-1", "G-BAD", "G-2"):
        await desk.on_request(request(case_id), unit, MONDAY)
    assert await desk.decide_due(unit, LATER) == 2
    assert sorted(e.case_id for e in unit.published if isinstance(e, OpinionIssued)) == ["G-1", "G-2"]
    parked = await unit.store.task("G-BAD/NRP-101/1")
    assert parked is not None and parked.status is TaskStatus.PARKED
    assert parked.error == "ZeroDivisionError: a land area of zero"
    assert await desk.decide_due(unit, LATER + timedelta(days=1)) == 0  # parked for an officer, not retried
    officer = parked.decided(Decision.APPROVED.value, "规划科 赵敏", LATER)
    assert officer.status is TaskStatus.DECIDED and officer.error is None


class CountedUnit(MemoryDeskUnit):
    """An in-memory unit that counts its savepoints (two round trips each on PostgreSQL) and, as a transaction,
    undoes whatever a unit of work that raises had done."""

    def __init__(self) -> None:
        super().__init__()
        self.savepoints = 0

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        self.savepoints += 1
        return super().savepoint()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[DeskUnit]:
        async with super().savepoint():
            yield self


def fragile(req: OpinionRequested, file: CaseFile) -> Opinion:
    if req.case_id == "G-BAD":
        raise ZeroDivisionError("a land area of zero")
    return Opinion(Decision.APPROVED)


async def test_a_round_of_decisions_takes_no_savepoint_unless_a_rule_fails() -> None:
    desk, unit = planning_desk(), CountedUnit()
    for case_id in ("G-1", "G-2", "G-3"):
        await desk.on_request(request(case_id), unit, MONDAY)
    assert await desk.decide_round(unit.transaction, LATER) == 3
    assert unit.savepoints == 0 and len(unit.published) == 3


async def test_a_round_in_which_a_rule_fails_is_undone_and_decided_again_task_by_task() -> None:
    desk, unit = planning_desk(decide=fragile), CountedUnit()
    for case_id in ("G-1", "G-BAD", "G-2"):
        await desk.on_request(request(case_id), unit, MONDAY)
    assert await desk.decide_round(unit.transaction, LATER) == 2
    assert sorted(e.case_id for e in unit.published if isinstance(e, OpinionIssued)) == ["G-1", "G-2"]  # once each
    parked = await unit.store.task("G-BAD/NRP-101/1")
    assert parked is not None and parked.status is TaskStatus.PARKED
    assert unit.savepoints == 3  # the second time, one a task


async def test_no_round_is_decided_while_the_officers_decide() -> None:
    desk, unit = planning_desk(), CountedUnit()
    await desk.on_request(request(), unit, MONDAY)
    await unit.store.set_mode(Mode.HUMAN)
    assert await desk.decide_round(unit.transaction, LATER) == 0 and unit.published == []


async def test_a_suspended_case_holds_its_tasks_and_they_are_decided_after_it_resumes() -> None:
    desk, unit = planning_desk(), MemoryDeskUnit()
    await desk.on_request(request(), unit, MONDAY)
    await desk.on_suspended(CaseSuspended(case_id="G-1", missing_documents=["x"], promised_by=LATER,
                                          suspended_at=MONDAY), unit, MONDAY)
    await desk.on_request(request(n=2), unit, MONDAY)  # arrives while suspended: waits from the start
    assert {t.status for t in await unit.store.of_case("G-1")} == {TaskStatus.ON_HOLD}
    assert await desk.decide_due(unit, LATER) == 0 and unit.published == []

    await desk.on_resumed(CaseResumed(case_id="G-1", resumed_at=LATER), unit, LATER)
    assert all(t.status is TaskStatus.OPEN and t.decide_at >= LATER for t in await unit.store.of_case("G-1"))
    assert await desk.decide_due(unit, LATER) == 2


async def test_no_opinion_before_the_joint_site_survey() -> None:
    desk, unit = planning_desk(), MemoryDeskUnit()
    survey_at = MONDAY + timedelta(days=21)
    await desk.on_survey(SiteSurveyArranged(survey_id="S-1", case_id="G-1", departments=["planning"],
                                            location="城东街道", survey_at=survey_at), unit, MONDAY)
    await desk.on_request(request(), unit, MONDAY)
    task = await unit.store.task("G-1/NRP-101/1")
    assert task is not None and task.decide_at > survey_at


async def test_a_supplement_request_waits_for_the_enterprise_and_the_second_look_decides() -> None:
    desk, unit = planning_desk(pace=replace(STEADY, supplement_rate=1.0)), MemoryDeskUnit()
    await desk.on_request(request(), unit, MONDAY)
    await desk.decide_due(unit, LATER)
    [asked] = unit.published
    assert isinstance(asked, OpinionIssued) and asked.decision is Decision.SUPPLEMENT_REQUESTED
    assert asked.reasons == [planning.supplement_reason(request())]
    assert await desk.decide_due(unit, LATER + timedelta(days=30)) == 0  # waiting for the enterprise

    await desk.on_supplement(SupplementProvided(request_id="G-1/NRP-101/1", case_id="G-1", department="planning",
                                                documents=["勘察报告"], provided_at=LATER,
                                                due_at=LATER + timedelta(days=10)), unit, LATER)
    task = await unit.store.task("G-1/NRP-101/1")
    assert task is not None and task.status is TaskStatus.OPEN and task.round == 2
    await desk.decide_due(unit, LATER + timedelta(days=30))
    second = unit.published[-1]
    assert isinstance(second, OpinionIssued) and second.decision is not Decision.SUPPLEMENT_REQUESTED


async def test_the_coordination_office_decides_a_conflict_at_its_pace_and_notes_a_late_opinion() -> None:
    desk, unit = CoordinationDesk(coordination.ARBITER, SETTINGS, SystemClock()), MemoryDeskUnit()
    binding = Refusal(department="environment", item_code="EEB-101", reasons=["见附图"],
                      grounds=[RefusalGround.ECOLOGICAL_RED_LINE])
    await desk.on_conflict(conflict_raised(binding), unit, MONDAY)
    await desk.on_late_opinion(DeadlineEscalated(request_id="G-1/WAT-101/1", case_id="G-1", department="water",
                                                 item_code="WAT-101", due_at=MONDAY, working_days_late=2.0),
                               unit, MONDAY)
    assert await desk.decide_due(unit, LATER) == 1
    [resolved] = unit.published
    assert isinstance(resolved, ConflictResolved) and resolved.resolution is Resolution.UPHOLD_REFUSAL
    noted = await unit.store.task("late:G-1/WAT-101/1")
    assert noted is not None and noted.kind is TaskKind.ESCALATION and noted.status is TaskStatus.NOTED
