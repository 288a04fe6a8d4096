"""The bureau's handlers on an in-memory unit: who may move a case on, and what a first-version opinion means."""

from datetime import timedelta

from base.clock import SystemClock
from base.settings import Settings
from contracts import bureau_v1
from contracts.bureau import (
    ConflictRaised,
    Decision,
    OpinionIssued,
    RefusalGround,
    StageCompleted,
)
from contracts.coordination import ConflictResolved, Resolution
from services.bureau.model import Case, OpinionRequest, RequestStatus
from services.bureau.service import AGENTS, AgentLoad, Bureau
from tests.fakes import MemoryCaseUnit
from tests.unit.test_bureau_model import CALENDAR, CATALOGUE, FACTORY, MONDAY, opened

BUREAU = Bureau(Settings(kafka_security="PLAINTEXT"), SystemClock(), CATALOGUE)
LATER = MONDAY + timedelta(days=1)


def answer(request: OpinionRequest, case: Case, decision: Decision = Decision.APPROVED,
           grounds: tuple[RefusalGround, ...] = ()) -> OpinionIssued:
    return OpinionIssued(request_id=request.request_id, case_id=case.case_id, item_code=request.item_code,
                         decision=decision, reasons=["见附件"] if decision is Decision.REJECTED else [],
                         grounds=list(grounds), officer="科员", decided_at=LATER)


def opinion_on(case: Case, department: str) -> OpinionIssued:
    return answer(next(r for r in case.current() if r.department == department), case)


async def answer_stage(case: Case, unit: MemoryCaseUnit, refusing: str = "",
                       grounds: tuple[RefusalGround, ...] = ()) -> None:
    """Every department of the current stage answers; ``refusing`` refuses, on ``grounds``."""
    for request in case.current():
        refuses = request.department == refusing
        await BUREAU.opinion(answer(request, case, Decision.REJECTED if refuses else Decision.APPROVED,
                                    grounds if refuses else ()), request.department, unit, LATER)


async def test_an_opinion_moves_its_case_on_and_the_case_is_kept_with_its_next_check() -> None:
    case, _ = opened()
    unit = MemoryCaseUnit(case)
    await BUREAU.opinion(opinion_on(case, "planning"), "planning", unit, LATER)
    kept = unit.cases.cases[case.case_id]
    [answered] = [r for r in kept.current() if r.department == "planning" and r.item_code == "NRP-101"]
    assert answered.status is RequestStatus.DECIDED and answered.decided_at == LATER
    assert unit.cases.next_checks[case.case_id] == kept.next_check(CALENDAR)


async def test_the_last_opinion_of_a_stage_publishes_the_stage_completed() -> None:
    case, _ = opened()
    unit = MemoryCaseUnit(case)
    await answer_stage(case, unit)
    assert [e.stage for e in unit.published if isinstance(e, StageCompleted)] == [1]


async def test_an_opinion_on_another_departments_request_or_on_no_case_changes_nothing() -> None:
    case, _ = opened()
    unit = MemoryCaseUnit(case)
    await BUREAU.opinion(opinion_on(case, "planning"), "environment", unit, LATER)
    await BUREAU.opinion(opinion_on(case, "planning").model_copy(update={"case_id": "G-NONE"}), "planning", unit,
                         LATER)
    assert unit.published == [] and unit.cases.next_checks == {}
    assert all(r.status is RequestStatus.PENDING for r in unit.cases.cases[case.case_id].current())


async def test_a_first_version_opinion_counts_as_one_without_grounds() -> None:
    case, _ = opened()
    first = bureau_v1.OpinionIssued.model_validate(opinion_on(case, "planning").model_dump(exclude={"grounds"}))
    upgraded = first.upgraded()
    assert upgraded.grounds == [] and upgraded.model_dump(exclude={"grounds"}) == first.model_dump()


async def test_a_refusal_keeps_its_statutory_grounds_into_the_conflict() -> None:
    case, _ = opened(FACTORY)
    unit = MemoryCaseUnit(case)
    await answer_stage(case, unit, refusing="environment", grounds=(RefusalGround.ECOLOGICAL_RED_LINE,))
    [conflict] = [e for e in unit.published if isinstance(e, ConflictRaised)]
    assert [(r.department, r.grounds, r.binding) for r in conflict.refusals] == [
        ("environment", [RefusalGround.ECOLOGICAL_RED_LINE], True)]


async def test_only_the_coordination_office_resolves_a_conflict() -> None:
    case, _ = opened(FACTORY)
    unit = MemoryCaseUnit(case)
    await answer_stage(case, unit, refusing="environment")
    [conflict] = [e for e in unit.published if isinstance(e, ConflictRaised)]
    resolved = ConflictResolved(conflict_id=conflict.conflict_id, case_id=case.case_id,
                                resolution=Resolution.PROCEED_WITH_CONDITIONS, conditions=["扬尘控制"], reasons=["ok"],
                                decided_by="联席会议", decided_at=LATER)
    published = len(unit.published)
    await BUREAU.resolution(resolved, "planning", unit, LATER)
    assert len(unit.published) == published and unit.cases.cases[case.case_id].stage == 1
    await BUREAU.resolution(resolved, "coordination", unit, LATER)
    assert unit.cases.cases[case.case_id].stage == 2
    assert any(isinstance(e, StageCompleted) and e.stage == 1 for e in unit.published[published:])


async def test_a_new_case_goes_to_the_least_busy_agent_counted_at_most_once_a_second() -> None:
    counted = {AGENTS[0]: 3, AGENTS[1]: 1, AGENTS[2]: 2, AGENTS[3]: 2, AGENTS[4]: 2}
    counts: list[dict[str, int]] = []
    seconds = [100.0]

    async def count() -> dict[str, int]:
        counts.append(dict(counted))
        return dict(counted)

    agents = AgentLoad(count, max_age=1.0, now=lambda: seconds[0])
    # A burst within the second: one count; each case assigned is added, so the burst is spread over the team.
    assigned = [await agents.least_busy() for _ in range(6)]
    assert assigned == [AGENTS[1], AGENTS[1], AGENTS[2], AGENTS[3], AGENTS[4], AGENTS[0]]
    assert len(counts) == 1
    # A second later the count is taken again: the cases that ended meanwhile are seen.
    counted = {AGENTS[0]: 0, AGENTS[1]: 5}
    seconds[0] += 1.0
    assert await agents.least_busy() == AGENTS[0]
    assert await agents.least_busy() in AGENTS[2:]
    assert len(counts) == 2
