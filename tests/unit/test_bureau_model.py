"""The agency service's rules, on the pure case model (no I/O), with the real catalogue and calendar."""

import random
from datetime import datetime, timedelta

import pytest

from base.calendar import CHINA, WorkingDayCalendar
from contracts.bureau import (
    CaseCompleted,
    CaseResumed,
    CaseSubmitted,
    CaseSuspended,
    ConflictRaised,
    DeadlineEscalated,
    DeadlineReminder,
    Decision,
    OpinionRequested,
    Project,
    SiteSurveyArranged,
    StageCompleted,
    SupplementProvided,
)
from contracts.coordination import Resolution
from services.bureau.catalogue import load_catalogue
from services.bureau.model import (
    SUSPENSION_LIMIT_DAYS,
    Case,
    CaseApplication,
    CaseStateError,
    CaseStatus,
    IntakeRefused,
    NotOurRequest,
    RequestStatus,
)
from services.bureau.samples import application

CATALOGUE = load_catalogue()
CALENDAR = WorkingDayCalendar()
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA)

OFFICE = Project(name="恒泰商业综合体项目", project_type="commercial", land_area_m2=20_000, floor_area_m2=40_000,
                 investment_10k_cny=30_000, industry_code="K7010", location="城东街道")
FACTORY = Project(name="华芯电子元器件生产基地项目", project_type="industrial", land_area_m2=70_000,
                  floor_area_m2=80_000, investment_10k_cny=40_000, industry_code="C3989", location="高新区")


def applied(project: Project = OFFICE, **changes: object) -> CaseApplication:
    return application(random.Random(5), project).model_copy(update=changes)


def opened(project: Project = OFFICE, **changes: object) -> tuple[Case, list[object]]:
    return Case.open(applied(project, **changes), "王芳", MONDAY, CATALOGUE, CALENDAR)


def answer(case: Case, decision: Decision = Decision.APPROVED, at: datetime = MONDAY, **only: str) -> list[object]:
    """Every open request of the current stage (or the one of `department`) answered."""
    events: list[object] = []
    for r in [r for r in case.current() if r.status is RequestStatus.PENDING]:
        if only and r.department != only["department"]:
            continue
        events += case.record_opinion(r.request_id, r.department, decision, [], ["because"], [], at, CATALOGUE,
                                      CALENDAR)
    return events


def test_intake_needs_every_key_document_and_allows_promising_non_key_ones() -> None:
    complete = applied()
    with pytest.raises(IntakeRefused, match="key documents missing"):
        Case.open(complete.model_copy(update={"documents": complete.documents[1:]}), "王芳", MONDAY, CATALOGUE,
                  CALENDAR)
    promised = "勘察报告"  # a non-key document of the drawing review
    case, events = opened(documents=[d for d in complete.documents if d != promised],
                          promised_documents=[promised], promised_by=MONDAY + timedelta(days=7))
    assert isinstance(events[0], CaseSubmitted) and events[0].promised_documents == [promised]
    assert case.promised_documents == [promised]


def test_a_stage_asks_every_department_the_project_needs_in_parallel_with_deadlines() -> None:
    case, events = opened(FACTORY)
    requests = [e for e in events if isinstance(e, OpinionRequested)]
    assert {(r.department, r.item_code) for r in requests} == {
        ("devreform", "DRC-101"), ("planning", "NRP-101"), ("planning", "NRP-102"), ("environment", "EEB-101"),
        ("water", "WAT-101")}
    eia = next(r for r in requests if r.item_code == "EEB-101")
    assert eia.due_at == CALENDAR.add_working_days(MONDAY, 15)
    survey = next(e for e in events if isinstance(e, SiteSurveyArranged))  # a large industrial site
    assert set(survey.departments) == {"devreform", "planning", "environment", "water"}
    assert case.stage == 1 and case.status is CaseStatus.IN_PROGRESS


def test_a_case_goes_through_the_four_stages_in_order() -> None:
    case, _ = opened()
    completed_stages = []
    for day in range(1, 5):
        for event in answer(case, at=MONDAY + timedelta(days=day)):
            if isinstance(event, StageCompleted):
                completed_stages.append(event.stage)
    assert completed_stages == [1, 2, 3, 4]
    assert case.status is CaseStatus.COMPLETED and case.completed_at == MONDAY + timedelta(days=4)
    assert {r.item_code for r in case.requests} >= {"NRP-201", "AIR-201", "HOU-301", "MKT-301", "HOU-402"}


def test_a_supplement_stops_the_departments_clock_until_the_enterprise_hands_it_in() -> None:
    case, _ = opened()
    planning = next(r for r in case.current() if r.department == "planning")
    first_due = planning.due_at
    case.record_opinion(planning.request_id, "planning", Decision.SUPPLEMENT_REQUESTED, [], ["coordinates"], [],
                        MONDAY + timedelta(days=1), CATALOGUE, CALENDAR)
    assert planning.status is RequestStatus.AWAITING_SUPPLEMENT and planning.supplements == 1
    assert answer(case, at=MONDAY + timedelta(days=2), department="devreform") == []  # the stage waits
    handed_in = MONDAY + timedelta(days=8)  # the following Tuesday: five working days later
    [provided] = case.provide_supplement(["界址点坐标表"], handed_in, CALENDAR)
    assert isinstance(provided, SupplementProvided) and provided.department == "planning"
    assert planning.paused_days == pytest.approx(5.0)
    assert planning.due_at == CALENDAR.add_working_time(planning.requested_at, planning.allowed_days + 5.0)
    assert planning.due_at > first_due and provided.due_at == planning.due_at
    assert planning.active_days(handed_in, CALENDAR) == pytest.approx(1.0)
    with pytest.raises(CaseStateError):
        case.provide_supplement(["again"], handed_in, CALENDAR)


def test_refusals_alone_refuse_the_case_and_a_resubmission_asks_again() -> None:
    case, _ = opened()
    events = answer(case, Decision.REJECTED)
    assert isinstance(events[-1], CaseCompleted) and events[-1].outcome == "rejected"
    assert case.status is CaseStatus.REJECTED and case.reasons
    smaller = OFFICE.model_copy(update={"floor_area_m2": 30_000})
    asked = case.resubmit(smaller, MONDAY + timedelta(days=3), CATALOGUE, CALENDAR)
    assert {e.item_code for e in asked if isinstance(e, OpinionRequested)} == {"DRC-101", "NRP-101", "NRP-102"}
    assert case.status is CaseStatus.IN_PROGRESS and case.resubmissions == 1
    assert all(r.status is RequestStatus.WITHDRAWN for r in case.requests if r.decision is Decision.REJECTED)
    with pytest.raises(CaseStateError):
        case.resubmit(smaller, MONDAY, CATALOGUE, CALENDAR)


def test_approvals_and_refusals_together_hold_the_stage_for_the_coordination_office() -> None:
    case, _ = opened(FACTORY)
    answer(case, Decision.REJECTED, department="environment")
    events = answer(case)
    [conflict] = [e for e in events if isinstance(e, ConflictRaised)]
    assert conflict.refusals[0].department == "environment" and "planning" in conflict.approving
    assert case.status is CaseStatus.HELD
    after = case.resolve_conflict(conflict.conflict_id, Resolution.PROCEED_WITH_CONDITIONS, ["dust control"], ["ok"],
                                  MONDAY + timedelta(days=2), CATALOGUE, CALENDAR)
    assert isinstance(after[0], StageCompleted) and case.stage == 2
    eia = next(r for r in case.requests if r.item_code == "EEB-101")
    assert eia.overridden and eia.conditions == ["dust control"]


def test_an_upheld_refusal_refuses_the_case() -> None:
    case, _ = opened(FACTORY)
    answer(case, Decision.REJECTED, department="environment")
    [conflict] = [e for e in answer(case) if isinstance(e, ConflictRaised)]
    [ended] = case.resolve_conflict(conflict.conflict_id, Resolution.UPHOLD_REFUSAL, [], ["red line"], MONDAY,
                                    CATALOGUE, CALENDAR)
    assert isinstance(ended, CaseCompleted) and ended.outcome == "rejected" and case.reasons == ["red line"]


def test_a_missed_promise_suspends_the_approval_until_the_documents_come() -> None:
    complete = applied()
    promise = MONDAY + timedelta(days=3)
    case, _ = opened(documents=[d for d in complete.documents if d != "勘察报告"], promised_documents=["勘察报告"],
                     promised_by=promise)
    assert not [e for e in case.check_time(promise - timedelta(hours=1), CALENDAR) if isinstance(e, CaseSuspended)]
    assert case.next_check(CALENDAR) is not None and case.next_check(CALENDAR) <= promise
    [suspended] = [e for e in case.check_time(promise, CALENDAR) if isinstance(e, CaseSuspended)]
    assert suspended.missing_documents == ["勘察报告"] and case.status is CaseStatus.SUSPENDED
    assert all(r.paused_since == promise for r in case.current())
    assert answer(case, at=promise + timedelta(hours=1)) == []  # opinions are kept, the stage does not move
    assert case.deliver_promised(["something else"], promise + timedelta(days=1), CATALOGUE, CALENDAR) == []
    resumed, stage_done, *stage_two = case.deliver_promised(["勘察报告"], promise + timedelta(days=1), CATALOGUE,
                                                            CALENDAR)
    assert isinstance(resumed, CaseResumed) and case.status is CaseStatus.IN_PROGRESS
    # every opinion came in while suspended: the stage moves on as soon as the approval resumes
    assert isinstance(stage_done, StageCompleted) and case.stage == 2 and stage_two


def test_a_suspension_that_runs_out_closes_the_case() -> None:
    complete = applied()
    case, _ = opened(documents=[d for d in complete.documents if d != "勘察报告"], promised_documents=["勘察报告"],
                     promised_by=MONDAY + timedelta(days=1))
    case.check_time(MONDAY + timedelta(days=1), CALENDAR)
    end = CALENDAR.add_working_time(MONDAY + timedelta(days=1), SUSPENSION_LIMIT_DAYS)
    [closed] = case.check_time(end, CALENDAR)
    assert isinstance(closed, CaseCompleted) and closed.outcome == "closed" and case.status is CaseStatus.CLOSED


def test_departments_are_reminded_at_half_and_four_fifths_and_escalated_when_late() -> None:
    case, _ = opened()
    planning = next(r for r in case.current() if r.item_code == "NRP-101")  # 10 working days
    half = CALENDAR.add_working_time(planning.requested_at, 0.5 * planning.allowed_days)
    reminders = [e for e in case.check_time(half, CALENDAR) if isinstance(e, DeadlineReminder)
                 and e.request_id == planning.request_id]
    assert [r.share_used for r in reminders] == [0.5]
    assert case.check_time(half, CALENDAR) == [] or all(
        e.request_id != planning.request_id for e in case.check_time(half, CALENDAR))
    late = planning.due_at + timedelta(days=2)
    escalations = [e for e in case.check_time(late, CALENDAR) if isinstance(e, DeadlineEscalated)
                   and e.request_id == planning.request_id]
    assert len(escalations) == 1 and escalations[0].working_days_late > 0
    assert 0.8 in planning.reminded  # passed by, though no reminder is sent once late
    assert not [e for e in case.check_time(late + timedelta(days=1), CALENDAR)
                if isinstance(e, DeadlineEscalated) and e.request_id == planning.request_id]


def test_opinions_are_taken_once_and_only_from_the_department_asked() -> None:
    case, _ = opened()
    request = next(r for r in case.current() if r.department == "planning")
    with pytest.raises(NotOurRequest):
        case.record_opinion(request.request_id, "housing", Decision.APPROVED, [], [], [], MONDAY, CATALOGUE, CALENDAR)
    case.record_opinion(request.request_id, "planning", Decision.APPROVED, [], [], [], MONDAY, CATALOGUE, CALENDAR)
    assert case.record_opinion(request.request_id, "planning", Decision.REJECTED, [], [], [], MONDAY, CATALOGUE,
                               CALENDAR) == []
    assert request.decision is Decision.APPROVED


def test_the_credit_code_check_digit_is_validated() -> None:
    good = applied().model_dump()
    wrong_digit = good["applicant_credit_code"][:-1] + ("0" if good["applicant_credit_code"][-1] != "0" else "1")
    with pytest.raises(ValueError, match="credit code"):
        CaseApplication.model_validate(good | {"applicant_credit_code": wrong_digit})
    assert CaseApplication.model_validate(good | {"applicant_credit_code": "91350100M000100Y43"})


def test_a_promise_missed_while_a_conflict_holds_the_stage_suspends_once_the_conflict_is_decided() -> None:
    complete = applied(FACTORY)
    promise = MONDAY + timedelta(days=1)
    case, _ = opened(FACTORY, documents=[d for d in complete.documents if d != "公众参与说明"],
                     promised_documents=["公众参与说明"], promised_by=promise)
    answer(case, Decision.REJECTED, department="environment")
    [conflict] = [e for e in answer(case) if isinstance(e, ConflictRaised)]
    later = promise + timedelta(hours=2)
    assert case.status is CaseStatus.HELD and case.check_time(later, CALENDAR) == []
    assert case.next_check(CALENDAR) is None or case.next_check(CALENDAR) > later  # no busy re-checking
    case.resolve_conflict(conflict.conflict_id, Resolution.PROCEED_WITH_CONDITIONS, [], [], later, CATALOGUE, CALENDAR)
    assert case.next_check(CALENDAR) == promise
    assert any(isinstance(e, CaseSuspended) for e in case.check_time(later, CALENDAR))


def test_a_promised_document_handed_in_with_a_supplement_keeps_the_promise() -> None:
    complete = applied()
    case, _ = opened(documents=[d for d in complete.documents if d != "勘察报告"], promised_documents=["勘察报告"],
                     promised_by=MONDAY + timedelta(days=5))
    planning = next(r for r in case.current() if r.department == "planning")
    case.record_opinion(planning.request_id, "planning", Decision.SUPPLEMENT_REQUESTED, [], ["x"], [], MONDAY,
                        CATALOGUE, CALENDAR)
    case.provide_supplement(["勘察报告", "界址点坐标表"], MONDAY + timedelta(days=1), CALENDAR)
    assert case.promised_documents == []
    assert not [e for e in case.check_time(MONDAY + timedelta(days=6), CALENDAR) if isinstance(e, CaseSuspended)]


def test_a_promise_needs_a_date_with_its_time_zone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        applied(promised_documents=["勘察报告"]).model_validate(
            applied().model_dump() | {"promised_documents": ["勘察报告"], "promised_by": "2026-07-01T00:00:00"})
