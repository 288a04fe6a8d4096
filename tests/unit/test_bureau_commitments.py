"""Approval on commitment (告知承诺制) and the data departments' reviews wait for, on the pure case model: an item
the catalogue marks is approved on the applicant's commitment and verified afterwards; a failed verification
revokes it, asks for the item again and reopens an ended case; every step is in the case's timeline."""

import random
from datetime import datetime, timedelta

import pytest

from base.calendar import CHINA, WorkingDayCalendar
from contracts.bureau import (
    ApprovalRevoked,
    CaseCompleted,
    CommitmentApproved,
    DataOutcome,
    Decision,
    OpinionRequested,
    Project,
    StageCompleted,
    Verification,
)
from contracts.refusal_grounds import SharingGround
from services.bureau.catalogue import load_catalogue
from services.bureau.model import (
    Case,
    CaseStatus,
    DataWait,
    Hold,
    IntakeRefused,
    NotOurRequest,
    OpinionRequest,
    Reopening,
    RequestStatus,
)
from services.bureau.samples import application

CATALOGUE = load_catalogue()
CALENDAR = WorkingDayCalendar()
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA)
OFFICE = Project(name="恒泰商业综合体项目", project_type="commercial", land_area_m2=20_000, floor_area_m2=40_000,
                 investment_10k_cny=30_000, industry_code="K7010", location="城东街道")
COMMITTED = ["WAT-201", "HOU-302"]  # the items the catalogue marks, both needed by the office block


def opened(commitments: list[str] = COMMITTED) -> Case:
    application_ = application(random.Random(5), OFFICE).model_copy(update={"commitments": commitments})
    case, _ = Case.open(application_, "王芳", MONDAY, CATALOGUE, CALENDAR)
    return case


def approve_stage(case: Case, at: datetime) -> list[object]:
    events: list[object] = []
    for r in [r for r in case.current() if r.status is RequestStatus.PENDING]:
        events += case.record_opinion(r.request_id, r.department, Decision.APPROVED, [], [], [], at, CATALOGUE,
                                      CALENDAR)
    return events


def item(case: Case, code: str) -> OpinionRequest:
    return next(r for r in case.requests if r.item_code == code and r.revoked_at is None)


def test_intake_takes_a_commitment_only_for_an_item_the_catalogue_marks() -> None:
    with pytest.raises(IntakeRefused, match="NRP-101"):
        opened(["NRP-101"])


def test_a_committed_item_is_approved_at_once_and_sent_for_verification_instead_of_an_opinion() -> None:
    case = opened()
    events = approve_stage(case, MONDAY + timedelta(days=3))  # stage 1 done: stage 2 opens
    water = item(case, "WAT-201")
    assert water.on_commitment and water.status is RequestStatus.DECIDED and water.decision is Decision.APPROVED
    [approved] = [e for e in events if isinstance(e, CommitmentApproved)]
    assert approved.request_id == water.request_id and approved.department == "water"
    assert approved.verify_by == CALENDAR.add_working_days(MONDAY + timedelta(days=3), 10) == water.verify_by
    assert "WAT-201" not in {e.item_code for e in events if isinstance(e, OpinionRequested)}
    # the stage does not wait for the verification
    later = MONDAY + timedelta(days=6)
    assert any(isinstance(e, StageCompleted) and e.stage == 2 for e in approve_stage(case, later))


def test_an_ordinary_applicant_gets_the_ordinary_request() -> None:
    case = opened([])
    events = approve_stage(case, MONDAY + timedelta(days=3))
    assert "WAT-201" in {e.item_code for e in events if isinstance(e, OpinionRequested)}
    assert not item(case, "WAT-201").on_commitment


def completed(case: Case) -> datetime:
    at = MONDAY
    while not case.status.ended:
        at += timedelta(days=2)
        approve_stage(case, at)
    assert case.status is CaseStatus.COMPLETED
    return at


def test_a_verification_that_passes_lets_the_approval_stand() -> None:
    case = opened()
    done = completed(case)
    water = item(case, "WAT-201")
    assert case.verify_commitment(water.request_id, "water", Verification.PASSED, [], done, CATALOGUE, CALENDAR) == []
    assert water.verification is Verification.PASSED and case.status is CaseStatus.COMPLETED
    assert ("verification passed", "water") in {(m.step, m.department) for m in case.timeline()}


def test_a_failed_verification_revokes_the_approval_asks_again_and_reopens_the_completed_case() -> None:
    case = opened()
    done = completed(case)
    permit = item(case, "HOU-302")
    failed_at = done + timedelta(days=1)
    events = case.verify_commitment(permit.request_id, "housing", Verification.FAILED, ["no wage deposit"],
                                    failed_at, CATALOGUE, CALENDAR)
    revoked, asked = events
    assert isinstance(revoked, ApprovalRevoked) and revoked.case_reopened and revoked.findings == ["no wage deposit"]
    assert isinstance(asked, OpinionRequested) and asked.item_code == "HOU-302"
    assert revoked.reopened_request_id == asked.request_id
    assert permit.revoked_at == failed_at and permit.status is RequestStatus.WITHDRAWN
    assert case.status is CaseStatus.IN_PROGRESS and case.completed_at is None
    assert case.reopened == [Reopening(done, failed_at)]
    again = item(case, "HOU-302")
    assert not again.on_commitment  # asked in the ordinary way: no second approval on commitment
    assert [h.hold for h in case.stuck(failed_at + timedelta(days=30))] == [Hold.OVERDUE]

    # the item approved in the ordinary way: the case completes again
    [ended] = case.record_opinion(again.request_id, "housing", Decision.APPROVED, [], [], [],
                                  failed_at + timedelta(days=3), CATALOGUE, CALENDAR)
    assert isinstance(ended, CaseCompleted) and case.status is CaseStatus.COMPLETED
    steps = [m.step for m in case.timeline()]
    assert steps.index("approved on commitment") < steps.index("completed") < steps.index("verification failed") \
        <= steps.index("approval revoked") <= steps.index("reopened") < len(steps) - 1 and steps[-1] == "completed"


def test_a_reopened_item_refused_refuses_the_case() -> None:
    case = opened()
    done = completed(case)
    permit = item(case, "HOU-302")
    case.verify_commitment(permit.request_id, "housing", Verification.FAILED, ["begun without supervision"], done,
                           CATALOGUE, CALENDAR)
    again = item(case, "HOU-302")
    [ended] = case.record_opinion(again.request_id, "housing", Decision.REJECTED, [], ["not rectified"], [], done,
                                  CATALOGUE, CALENDAR)
    assert isinstance(ended, CaseCompleted) and case.status is CaseStatus.REJECTED


def test_a_failed_verification_while_the_stage_runs_holds_the_stage_for_the_item_asked_again() -> None:
    case = opened()
    at = MONDAY
    while case.stage < 3:
        at += timedelta(days=2)
        approve_stage(case, at)
    permit = item(case, "HOU-302")
    [revoked, asked] = case.verify_commitment(permit.request_id, "housing", Verification.FAILED, ["no deposit"], at,
                                              CATALOGUE, CALENDAR)
    assert isinstance(revoked, ApprovalRevoked) and not revoked.case_reopened
    assert isinstance(asked, OpinionRequested) and asked.stage == 3
    events = approve_stage(case, at + timedelta(days=2))  # the others and the item asked again
    assert any(isinstance(e, StageCompleted) and e.stage == 3 for e in events)


def test_only_the_verifying_department_verifies_and_only_once() -> None:
    case = opened()
    done = completed(case)
    water = item(case, "WAT-201")
    with pytest.raises(NotOurRequest):
        case.verify_commitment(water.request_id, "housing", Verification.FAILED, ["x"], done, CATALOGUE, CALENDAR)
    case.verify_commitment(water.request_id, "water", Verification.PASSED, [], done, CATALOGUE, CALENDAR)
    assert case.verify_commitment(water.request_id, "water", Verification.FAILED, ["x"], done, CATALOGUE,
                                  CALENDAR) == []
    assert case.status is CaseStatus.COMPLETED


def test_a_review_waiting_for_data_holds_the_case_up_and_its_wait_is_in_the_timeline() -> None:
    case = opened([])
    planning = item(case, "NRP-101")
    since = MONDAY + timedelta(hours=5)
    case.data_awaited(planning.request_id, "planning",
                      DataWait("AGR-1", "market", "market.business-registration", ["legal_representative"], since))
    [held] = [h for h in case.stuck(since) if h.hold is Hold.DATA]
    assert held.department == "planning" and held.since == since and "AGR-1" in held.detail
    with pytest.raises(NotOurRequest):
        case.data_awaited(planning.request_id, "housing", DataWait("AGR-2", "bureau", "c", ["f"], since))

    until = since + timedelta(days=2)
    case.data_wait_ended(planning.request_id, "planning", "AGR-1", DataOutcome.WITHHELD,
                         SharingGround.VERTICAL_SYSTEM, False, until)
    assert not [h for h in case.stuck(until) if h.hold is Hold.DATA]
    [wait] = planning.data_waits
    assert (wait.until, wait.outcome, wait.ground) == (until, DataOutcome.WITHHELD, SharingGround.VERTICAL_SYSTEM)
    steps = {(m.step, m.at) for m in case.timeline()}
    assert ("waits for data", since) in steps and ("data withheld", until) in steps
