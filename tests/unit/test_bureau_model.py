from datetime import timedelta

import pytest

from contracts.bureau import CaseCompleted, CaseSubmitted, Decision, OpinionRequested, StageCompleted
from services.bureau.catalogue import load_catalogue
from services.bureau.model import Case, CaseApplication, CaseStatus, NotOurRequest
from services.bureau.samples import applications
from services.kit.calendar import WorkingDayCalendar
from tests.factories import T0

CATALOGUE = load_catalogue()
CALENDAR = WorkingDayCalendar()


def opened() -> tuple[Case, list[object]]:
    return Case.open(applications(1)[0], "王芳", T0, CATALOGUE, CALENDAR)


def test_a_new_case_is_announced_and_its_first_stage_requested() -> None:
    case, events = opened()
    assert isinstance(events[0], CaseSubmitted) and events[0].agent == "王芳"
    requests = [e for e in events if isinstance(e, OpinionRequested)]
    assert [r.department for r in requests] == ["planning"]
    assert case.stage == 1 and case.status is CaseStatus.IN_PROGRESS
    assert requests[0].due_at > T0


def test_the_last_approval_completes_the_case() -> None:
    case, _ = opened()
    request = case.requests[0]
    events = case.record_opinion(request.request_id, "planning", Decision.APPROVED, [], [], T0, T0 + timedelta(1),
                                 CATALOGUE, CALENDAR)
    assert [type(e) for e in events] == [StageCompleted, CaseCompleted]
    assert case.status is CaseStatus.COMPLETED and case.completed_at == T0 + timedelta(1)


def test_a_rejection_ends_the_case_rejected() -> None:
    case, _ = opened()
    events = case.record_opinion(case.requests[0].request_id, "planning", Decision.REJECTED, [], ["too big"], T0, T0,
                                 CATALOGUE, CALENDAR)
    assert isinstance(events[-1], CaseCompleted) and events[-1].outcome == "rejected"
    assert case.status is CaseStatus.REJECTED


def test_the_same_opinion_twice_changes_nothing_the_second_time() -> None:
    case, _ = opened()
    rid = case.requests[0].request_id
    assert case.record_opinion(rid, "planning", Decision.APPROVED, [], [], T0, T0, CATALOGUE, CALENDAR)
    assert case.record_opinion(rid, "planning", Decision.APPROVED, [], [], T0, T0, CATALOGUE, CALENDAR) == []


def test_an_opinion_from_a_department_not_asked_is_refused() -> None:
    case, _ = opened()
    with pytest.raises(NotOurRequest):
        case.record_opinion(case.requests[0].request_id, "housing", Decision.APPROVED, [], [], T0, T0,
                            CATALOGUE, CALENDAR)


def test_the_credit_code_check_digit_is_validated() -> None:
    good = applications(1)[0].model_dump()
    wrong_digit = good["applicant_credit_code"][:-1] + ("0" if good["applicant_credit_code"][-1] != "0" else "1")
    with pytest.raises(ValueError, match="credit code"):
        CaseApplication.model_validate(good | {"applicant_credit_code": wrong_digit})
    assert CaseApplication.model_validate(good | {"applicant_credit_code": "91350100M000100Y43"})
