"""Sharing that arises from the work, at the desks (in-memory unit, in-memory exchange): a review asks for the data
a case needs and waits; the provider answers at its pace on a typed ground; the review goes on with the data or
without it; a refusal the review cannot do without is escalated unless its ground binds; approvals on commitment
are verified."""

from dataclasses import replace
from datetime import datetime, timedelta

from base.calendar import CHINA, WorkingDayCalendar
from base.clock import SystemClock
from base.settings import Settings
from contracts.bureau import (
    CommitmentApproved,
    CommitmentVerified,
    DataAwaited,
    DataOutcome,
    DataWaitEnded,
    Decision,
    OpinionIssued,
    OpinionRequested,
    Verification,
)
from contracts.departments import BUREAU, ENVIRONMENT, HOUSING, MARKET, WATER
from contracts.exchange import AgreementDecided, AgreementOutcome, AgreementRequested
from contracts.refusal_grounds import SharingGround, refusal_reasons
from services.departments import environment, housing, market, water
from services.departments.api import OfficerDecision, officer_decision
from services.departments.desk import ReviewingDesk, VerificationDecision
from services.departments.rules import Pace, Reviewer
from services.departments.tasks import TaskKind, TaskStatus
from services.kit.agreements import SharingAnswer
from tests.factories import opinion_requested, project
from tests.fakes import MemoryAgreements, MemoryDeskUnit

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA)
LATER = MONDAY + timedelta(days=60)
SETTINGS = Settings(kafka_security="PLAINTEXT")
CALENDAR = WorkingDayCalendar()
STEADY = Pace(median_days=2.0, spread=0.3)
MALL = project(project_type="commercial", floor_area_m2=40_000, industry_code="K7010")


def desk(reviewer: Reviewer, agreements: MemoryAgreements) -> ReviewingDesk:
    return ReviewingDesk(replace(reviewer, pace=STEADY), SETTINGS, SystemClock(), agreements)


def fire_acceptance(case_id: str = "G-1") -> OpinionRequested:
    return opinion_requested(case_id=case_id, department=HOUSING, request_id=f"{case_id}/HOU-401/1",
                             item_code="HOU-401", item_name="建设工程消防验收", stage=4, project=MALL,
                             requested_at=MONDAY, due_at=MONDAY + timedelta(days=10))


def decided(agreement_id: str, outcome: AgreementOutcome, reasons: str = "", consumer: str = HOUSING,
            provider: str = BUREAU) -> AgreementDecided:
    return AgreementDecided(agreement_id=agreement_id, department=consumer, contract_id="bureau.case-submitted",
                            consumer=consumer, provider=provider, outcome=outcome, fields=["contact_phone"],
                            reasons=reasons, valid_until=MONDAY + timedelta(days=30))


async def asked(agreements: MemoryAgreements, unit: MemoryDeskUnit) -> tuple[ReviewingDesk, str]:
    """Housing's fire acceptance of a mall, due by its rules: it asks the bureau for the applicant's contact."""
    housing_desk = desk(housing.REVIEWER, agreements)
    await housing_desk.on_request(fire_acceptance(), unit, MONDAY)
    assert await housing_desk.decide_due(unit, LATER) == 1
    [agreement_id] = agreements.requested
    return housing_desk, agreement_id


async def test_a_review_that_needs_data_asks_its_provider_and_waits_giving_no_opinion() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    _, agreement_id = await asked(agreements, unit)
    consumer, request = agreements.requested[agreement_id]
    assert consumer == HOUSING and request.contract == "bureau.case-submitted"
    assert set(request.fields) == {"contact_person", "contact_phone"} and "G-1" in request.purpose
    task = await unit.store.task("G-1/HOU-401/1")
    assert task is not None and task.status is TaskStatus.AWAITING_DATA and task.agreement_id == agreement_id
    [awaited] = unit.published
    assert isinstance(awaited, DataAwaited) and awaited.provider == BUREAU and awaited.agreement_id == agreement_id


async def test_the_data_shared_the_review_goes_on_and_decides_with_it() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    housing_desk, agreement_id = await asked(agreements, unit)
    await housing_desk.on_agreement_decided(decided(agreement_id, AgreementOutcome.APPROVED), unit, LATER)
    ended = unit.published[-1]
    assert isinstance(ended, DataWaitEnded) and ended.outcome is DataOutcome.SHARED and not ended.escalated
    task = await unit.store.task("G-1/HOU-401/1")
    assert task is not None and task.status is TaskStatus.OPEN and task.data == DataOutcome.SHARED
    assert await housing_desk.decide_due(unit, LATER + timedelta(days=30)) == 1
    opinion = unit.published[-1]
    assert isinstance(opinion, OpinionIssued) and opinion.decision is Decision.APPROVED
    assert len(agreements.requested) == 1  # asked once


async def test_a_refusal_on_a_binding_ground_is_not_escalated_and_the_review_goes_on_without_the_data() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    housing_desk, agreement_id = await asked(agreements, unit)
    reasons = refusal_reasons(SharingGround.NO_LEGAL_BASIS, "the case has ended")
    await housing_desk.on_agreement_decided(decided(agreement_id, AgreementOutcome.REJECTED, reasons), unit, LATER)
    assert agreements.escalated == {}
    ended = unit.published[-1]
    assert isinstance(ended, DataWaitEnded) and ended.outcome is DataOutcome.WITHHELD
    assert ended.ground is SharingGround.NO_LEGAL_BASIS
    assert await housing_desk.decide_due(unit, LATER + timedelta(days=30)) == 1
    opinion = unit.published[-1]
    assert isinstance(opinion, OpinionIssued) and opinion.decision is Decision.APPROVED_WITH_CONDITIONS
    assert "agent" in opinion.conditions[0]  # the cost of the withheld contact: the visit goes through the agent


async def test_an_essential_refusal_on_the_providers_judgement_is_escalated_and_the_offices_decision_ends_it() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    housing_desk, agreement_id = await asked(agreements, unit)
    reasons = refusal_reasons(SharingGround.NOT_NECESSARY, "the agent arranges it")
    await housing_desk.on_agreement_decided(decided(agreement_id, AgreementOutcome.REJECTED, reasons), unit, LATER)
    assert agreements.escalated == {agreement_id: (HOUSING, reasons)}
    task = await unit.store.task("G-1/HOU-401/1")
    assert task is not None and task.status is TaskStatus.AWAITING_DATA and task.escalated
    assert not any(isinstance(e, DataWaitEnded) for e in unit.published)

    # the office ordered it shared: the agreement's next decision is an approval
    await housing_desk.on_agreement_decided(decided(agreement_id, AgreementOutcome.APPROVED), unit, LATER)
    ended = unit.published[-1]
    assert isinstance(ended, DataWaitEnded) and ended.outcome is DataOutcome.SHARED and ended.escalated


async def test_an_upheld_refusal_after_an_escalation_is_final() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    housing_desk, agreement_id = await asked(agreements, unit)
    reasons = refusal_reasons(SharingGround.VERTICAL_SYSTEM, "the ministry's consent first")
    await housing_desk.on_agreement_decided(decided(agreement_id, AgreementOutcome.REJECTED, reasons), unit, LATER)
    await housing_desk.on_agreement_decided(decided(agreement_id, AgreementOutcome.REJECTED, reasons), unit, LATER)
    assert list(agreements.escalated) == [agreement_id]  # once
    ended = unit.published[-1]
    assert isinstance(ended, DataWaitEnded) and ended.outcome is DataOutcome.WITHHELD and ended.escalated


async def test_where_the_exchange_takes_no_escalation_yet_the_review_goes_on_without_the_data() -> None:
    agreements, unit = MemoryAgreements(escalations=False), MemoryDeskUnit()
    housing_desk, agreement_id = await asked(agreements, unit)
    reasons = refusal_reasons(SharingGround.NOT_NECESSARY, "the agent arranges it")
    await housing_desk.on_agreement_decided(decided(agreement_id, AgreementOutcome.REJECTED, reasons), unit, LATER)
    ended = unit.published[-1]
    assert isinstance(ended, DataWaitEnded) and ended.outcome is DataOutcome.WITHHELD and not ended.escalated
    task = await unit.store.task("G-1/HOU-401/1")
    assert task is not None and task.status is TaskStatus.OPEN


async def test_an_answer_that_comes_before_its_task_is_filed_is_kept_for_it() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    housing_desk = desk(housing.REVIEWER, agreements)
    # the provider was quicker than the unit of work that filed the request: the answer is kept ...
    await housing_desk.on_agreement_decided(decided("AGR-0001", AgreementOutcome.APPROVED), unit, MONDAY)
    assert unit.published == []
    await housing_desk.on_request(fire_acceptance(), unit, MONDAY)
    assert await housing_desk.decide_due(unit, LATER) == 1  # ... and found when the request is filed as AGR-0001
    task = await unit.store.task("G-1/HOU-401/1")
    assert task is not None and task.status is TaskStatus.OPEN and task.data == DataOutcome.SHARED
    assert [type(e) for e in unit.published] == [DataAwaited, DataWaitEnded]


async def test_another_departments_answer_or_a_revocation_changes_nothing_here() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    housing_desk, agreement_id = await asked(agreements, unit)
    await housing_desk.on_agreement_decided(decided(agreement_id, AgreementOutcome.REVOKED, "ended"), unit, LATER)
    await housing_desk.on_agreement_decided(
        decided(agreement_id, AgreementOutcome.APPROVED, consumer=ENVIRONMENT), unit, LATER)
    task = await unit.store.task("G-1/HOU-401/1")
    assert task is not None and task.status is TaskStatus.AWAITING_DATA


async def test_a_review_that_needs_nothing_asks_for_nothing() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    environment_desk = desk(environment.REVIEWER, agreements)
    clean = opinion_requested(department=ENVIRONMENT, item_code="EEB-101", project=MALL, requested_at=MONDAY,
                              due_at=MONDAY + timedelta(days=15))
    await environment_desk.on_request(clean, unit, MONDAY)
    await environment_desk.decide_due(unit, LATER)
    assert agreements.requested == {} and isinstance(unit.published[-1], OpinionIssued)


def sharing_request(agreement_id: str, consumer: str = ENVIRONMENT) -> AgreementRequested:
    return AgreementRequested(
        agreement_id=agreement_id, contract_id="market.business-registration", consumer=consumer, provider=MARKET,
        fields=["legal_representative"], purpose="name the person responsible",
        legal_basis="《排污许可管理条例》第八条",
        valid_from=MONDAY, valid_until=MONDAY + timedelta(days=30), due_at=MONDAY + timedelta(days=14))


async def test_a_provider_answers_a_sharing_request_at_its_pace_with_a_typed_ground() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    market_desk = ReviewingDesk(market.REVIEWER, SETTINGS, SystemClock(), agreements)
    assert market.REVIEWER.sharing is not None
    ids = [f"AGR-{n:04d}" for n in range(40)]
    for agreement_id in ids:
        await market_desk.on_sharing_request(sharing_request(agreement_id), unit, MONDAY)
    await market_desk.on_sharing_request(sharing_request("AGR-WATER", consumer=WATER), unit, MONDAY)
    task = await unit.store.task(ids[0])
    assert task is not None and task.kind is TaskKind.SHARING and task.due_at == MONDAY + timedelta(days=14)
    ready = CALENDAR.add_working_time(MONDAY, market.REVIEWER.sharing.pace.days(ids[0]) * SETTINGS.response_scale)
    assert task.decide_at == ready
    await market_desk.decide_due(unit, task.decide_at - timedelta(seconds=1))
    assert ids[0] not in agreements.decided  # not before its pace allows
    await market_desk.decide_due(unit, LATER)
    assert set(agreements.decided) == {*ids, "AGR-WATER"}
    provider, outcome, reasons = agreements.decided["AGR-WATER"]
    assert (provider, outcome) == (MARKET, "rejected") and reasons.startswith("no_legal_basis:")  # water: no law
    outcomes = {agreements.decided[i][2].partition(":")[0] or "approved" for i in ids}
    assert outcomes == {"approved", "personal_information", "vertical_system"}  # a mix, each refusal on a ground
    tasks = [await unit.store.task(i) for i in ids]
    assert all(t is not None and t.status is TaskStatus.DECIDED for t in tasks)


async def test_a_request_for_data_another_department_provides_is_not_this_desks() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    housing_desk = desk(housing.REVIEWER, agreements)
    await housing_desk.on_sharing_request(sharing_request("AGR-1"), unit, MONDAY)
    assert await unit.store.task("AGR-1") is None


def test_an_officers_body_decides_by_the_tasks_kind() -> None:
    refusal = OfficerDecision(decision="rejected", reasons=["the ministry decides"], officer="冯静",
                              sharing_ground=SharingGround.VERTICAL_SYSTEM)
    assert officer_decision(TaskKind.SHARING, refusal) == SharingAnswer(SharingGround.VERTICAL_SYSTEM,
                                                                        "the ministry decides")
    assert officer_decision(TaskKind.SHARING, OfficerDecision(decision="approved", officer="冯静")) == SharingAnswer()
    failed = OfficerDecision(decision="failed", reasons=["no deposit"], officer="周洁")
    assert officer_decision(TaskKind.VERIFICATION, failed) == VerificationDecision(Verification.FAILED,
                                                                                   ["no deposit"])
    try:
        officer_decision(TaskKind.SHARING, OfficerDecision(decision="rejected", reasons=["no"], officer="冯静"))
    except ValueError as wrong:
        assert "sharing_ground" in str(wrong)
    else:
        raise AssertionError("a refusal to share without a ground was taken")


def commitment(item_code: str, department: str, documents: list[str], request_id: str = "G-1/HOU-302/1"
               ) -> CommitmentApproved:
    return CommitmentApproved(
        request_id=request_id, case_id="G-1", department=department, item_code=item_code, item_name="施工许可",
        stage=3, project=MALL, documents=documents, commitment="the deposit paid", approved_at=MONDAY,
        verify_by=MONDAY + timedelta(days=14))


async def test_an_approval_on_commitment_is_verified_by_the_department_before_its_deadline() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    housing_desk = desk(housing.REVIEWER, agreements)
    await housing_desk.on_commitment(commitment("HOU-302", HOUSING, ["施工合同"]), unit, MONDAY)
    task = await unit.store.task("G-1/HOU-302/1")
    assert task is not None and task.kind is TaskKind.VERIFICATION and task.decide_at <= task.due_at  # type: ignore[operator]
    await housing_desk.decide_due(unit, LATER)
    [verified] = unit.published
    assert isinstance(verified, CommitmentVerified) and verified.outcome is Verification.FAILED
    assert "农民工工资保证金凭证" in verified.findings[0]  # the deposit was never handed in


async def test_verifications_pass_and_fail_by_what_the_site_shows() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    water_desk = desk(water.REVIEWER, agreements)
    for n in range(30):
        await water_desk.on_commitment(commitment("WAT-201", WATER, [], request_id=f"G-1/WAT-201/{n}"), unit, MONDAY)
    await water_desk.decide_due(unit, LATER)
    outcomes = [e.outcome for e in unit.published if isinstance(e, CommitmentVerified)]
    assert len(outcomes) == 30 and set(outcomes) == {Verification.PASSED, Verification.FAILED}


async def test_a_review_asks_for_the_data_for_a_period_from_when_it_asks_even_past_its_deadline() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    housing_desk = desk(housing.REVIEWER, agreements)
    await housing_desk.on_request(fire_acceptance(), unit, MONDAY)  # due ten days after Monday
    late = MONDAY + timedelta(days=40)
    await housing_desk.decide_due(unit, late)
    [(_, request)] = agreements.requested.values()
    assert request.valid_until == CALENDAR.add_working_days(late, 20)
