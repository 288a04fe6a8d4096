"""Sharing that arises from the work, at the desks (in-memory unit, in-memory exchange): a review asks for the data
a case needs and waits; the provider answers at its pace on a typed ground (or counter-offers); the review goes on
with the data or without it, accepts a counter-offer that holds what it cannot do without and declines the others;
a refusal the review cannot do without is escalated unless its ground binds, and the coordination office decides it
at its pace by its rules; approvals on commitment are verified."""

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
from contracts.coordination import Resolution
from contracts.departments import AIRDEFENCE, BUREAU, COORDINATION, ENVIRONMENT, HOUSING, MARKET, WATER
from contracts.exchange import (
    AgreementChange,
    AgreementChanged,
    AgreementRequested,
    AgreementStatus,
    RefusalEscalated,
)
from contracts.refusal_grounds import SharingGround
from services.departments import airdefence, coordination, environment, housing, market, water
from services.departments.api import OfficerDecision, officer_decision
from services.departments.desk import CoordinationDesk, ReviewingDesk, VerificationDecision
from services.departments.rules import Pace, Reviewer
from services.departments.tasks import TaskKind, TaskStatus
from services.kit.agreements import ExchangeUnavailable, SharingAnswer, SharingRequest
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


STATUS_AFTER = {AgreementChange.APPROVED: AgreementStatus.APPROVED, AgreementChange.REJECTED: AgreementStatus.REJECTED,
                AgreementChange.COUNTERED: AgreementStatus.COUNTERED,
                AgreementChange.ACCEPTED: AgreementStatus.APPROVED,
                AgreementChange.DECLINED: AgreementStatus.DECLINED, AgreementChange.REVOKED: AgreementStatus.REVOKED,
                AgreementChange.ESCALATED: AgreementStatus.ESCALATED,
                AgreementChange.PROCEEDED: AgreementStatus.APPROVED, AgreementChange.UPHELD: AgreementStatus.UPHELD}


def changed(agreement_id: str, change: AgreementChange, reasons: str = "", ground: SharingGround | None = None,
            consumer: str = HOUSING, fields: tuple[str, ...] = ("contact_person", "contact_phone")
            ) -> AgreementChanged:
    """A step of the agreement as the exchange tells it to the consumer."""
    return AgreementChanged(
        agreement_id=agreement_id, department=consumer, contract_id="bureau.case-submitted", consumer=consumer,
        provider=BUREAU, change=change, status=STATUS_AFTER[change], by=BUREAU, fields=list(fields),
        purpose="the site visit", legal_basis="the law", valid_from=MONDAY, valid_until=MONDAY + timedelta(days=30),
        reasons=reasons, ground=ground)


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
    assert request.case_id == "G-1"  # that case's records alone; the agreement ends with it
    task = await unit.store.task("G-1/HOU-401/1")
    assert task is not None and task.status is TaskStatus.AWAITING_DATA and task.agreement_id == agreement_id
    [awaited] = unit.published
    assert isinstance(awaited, DataAwaited) and awaited.provider == BUREAU and awaited.agreement_id == agreement_id


class RestartingGateway(MemoryAgreements):
    """The gateway does not answer the first request (it is being restarted)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def request(self, department: str, request: SharingRequest, key: str | None = None) -> str:
        if self.down:
            self.down = False
            raise ExchangeUnavailable("the gateway did not answer POST /v1/agreements")
        return await super().request(department, request, key)


async def test_a_review_whose_gateway_does_not_answer_stays_due_and_asks_again_not_parked() -> None:
    agreements, unit = RestartingGateway(), MemoryDeskUnit()
    housing_desk = desk(housing.REVIEWER, agreements)
    await housing_desk.on_request(fire_acceptance(), unit, MONDAY)
    assert await housing_desk.decide_due(unit, LATER) == 0
    task = await unit.store.task("G-1/HOU-401/1")
    assert task is not None and task.status is TaskStatus.OPEN and not agreements.requested and not unit.published
    assert await housing_desk.decide_due(unit, LATER) == 1
    task = await unit.store.task("G-1/HOU-401/1")
    assert task is not None and task.status is TaskStatus.AWAITING_DATA and len(agreements.requested) == 1


class LostAnswer(MemoryAgreements):
    """The gateway records the first request, but its answer never reaches the department."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = True

    async def request(self, department: str, request: SharingRequest, key: str | None = None) -> str:
        agreement_id = await super().request(department, request, key)
        if self.lost:
            self.lost = False
            raise ExchangeUnavailable("the gateway's answer to POST /v1/agreements was lost")
        return agreement_id


async def test_a_review_whose_request_was_accepted_but_not_answered_asks_again_under_the_same_key() -> None:
    agreements, unit = LostAnswer(), MemoryDeskUnit()
    housing_desk = desk(housing.REVIEWER, agreements)
    await housing_desk.on_request(fire_acceptance(), unit, MONDAY)
    assert await housing_desk.decide_due(unit, LATER) == 0
    assert await housing_desk.decide_due(unit, LATER) == 1
    [agreement_id] = agreements.requested  # the provider was asked once
    assert agreements.keys == {(HOUSING, "G-1/HOU-401/1"): agreement_id}
    task = await unit.store.task("G-1/HOU-401/1")
    assert task is not None and task.status is TaskStatus.AWAITING_DATA and task.agreement_id == agreement_id


async def test_the_data_shared_the_review_goes_on_and_decides_with_it() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    housing_desk, agreement_id = await asked(agreements, unit)
    await housing_desk.on_agreement_changed(changed(agreement_id, AgreementChange.APPROVED), unit, LATER)
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
    await housing_desk.on_agreement_changed(
        changed(agreement_id, AgreementChange.REJECTED, "the case has ended", SharingGround.NO_LEGAL_BASIS),
        unit, LATER)
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
    # the words would say the ground binds: the type says it does not, and the type decides
    await housing_desk.on_agreement_changed(changed(agreement_id, AgreementChange.REJECTED, "no_legal_basis: none",
                                                    SharingGround.NOT_NECESSARY), unit, LATER)
    [(consumer, why)] = agreements.escalated.values()
    assert list(agreements.escalated) == [agreement_id] and consumer == HOUSING and "HOU-401" in why
    task = await unit.store.task("G-1/HOU-401/1")
    assert task is not None and task.status is TaskStatus.AWAITING_DATA and task.escalated
    assert not any(isinstance(e, DataWaitEnded) for e in unit.published)
    # its own escalation, told back, is not an answer
    await housing_desk.on_agreement_changed(changed(agreement_id, AgreementChange.ESCALATED, "mine"), unit, LATER)
    assert not any(isinstance(e, DataWaitEnded) for e in unit.published)

    # the office ordered it shared: the agreement's next change is "proceeded"
    await housing_desk.on_agreement_changed(changed(agreement_id, AgreementChange.PROCEEDED, "overruled",
                                                    SharingGround.NOT_NECESSARY), unit, LATER)
    ended = unit.published[-1]
    assert isinstance(ended, DataWaitEnded) and ended.outcome is DataOutcome.SHARED and ended.escalated
    assert ended.ground is None


async def test_an_upheld_refusal_after_an_escalation_is_final() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    housing_desk, agreement_id = await asked(agreements, unit)
    refused = changed(agreement_id, AgreementChange.REJECTED, "the ministry's consent first",
                      SharingGround.VERTICAL_SYSTEM)
    await housing_desk.on_agreement_changed(refused, unit, LATER)
    await housing_desk.on_agreement_changed(refused, unit, LATER)  # the same step told again: escalated once
    assert list(agreements.escalated) == [agreement_id]
    await housing_desk.on_agreement_changed(changed(agreement_id, AgreementChange.UPHELD, "it stands",
                                                    SharingGround.VERTICAL_SYSTEM), unit, LATER)
    ended = unit.published[-1]
    assert isinstance(ended, DataWaitEnded) and ended.outcome is DataOutcome.WITHHELD and ended.escalated
    assert ended.ground is SharingGround.VERTICAL_SYSTEM


async def test_a_refusal_of_data_the_review_can_do_without_is_not_escalated() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    shelter_desk = desk(airdefence.REVIEWER, agreements)
    large = project(floor_area_m2=80_000)
    await shelter_desk.on_request(opinion_requested(department=AIRDEFENCE, item_code="AIR-301", project=large,
                                                    requested_at=MONDAY, due_at=MONDAY + timedelta(days=20)),
                                  unit, MONDAY)
    await shelter_desk.decide_due(unit, LATER)
    [agreement_id] = agreements.requested
    await shelter_desk.on_agreement_changed(changed(agreement_id, AgreementChange.REJECTED, "ask the agent",
                                                    SharingGround.NOT_NECESSARY, consumer=AIRDEFENCE), unit, LATER)
    assert agreements.escalated == {}
    ended = unit.published[-1]
    assert isinstance(ended, DataWaitEnded) and ended.outcome is DataOutcome.WITHHELD and not ended.escalated


async def test_a_counter_offer_holding_what_the_review_cannot_do_without_is_accepted_and_the_data_comes() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    housing_desk, agreement_id = await asked(agreements, unit)
    await housing_desk.on_agreement_changed(changed(agreement_id, AgreementChange.COUNTERED, "the phone will do",
                                                    SharingGround.NOT_NECESSARY, fields=("contact_phone",)),
                                            unit, LATER)
    assert agreements.decided[agreement_id][:2] == (HOUSING, "accepted")
    task = await unit.store.task("G-1/HOU-401/1")
    assert task is not None and task.status is TaskStatus.AWAITING_DATA  # until the exchange tells the acceptance
    await housing_desk.on_agreement_changed(changed(agreement_id, AgreementChange.ACCEPTED, fields=("contact_phone",)),
                                            unit, LATER)
    ended = unit.published[-1]
    assert isinstance(ended, DataWaitEnded) and ended.outcome is DataOutcome.SHARED


async def test_a_counter_offer_without_what_the_review_cannot_do_without_is_declined_and_the_data_withheld() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    housing_desk, agreement_id = await asked(agreements, unit)
    await housing_desk.on_agreement_changed(changed(agreement_id, AgreementChange.COUNTERED, "the name only",
                                                    SharingGround.PERSONAL_INFORMATION, fields=("contact_person",)),
                                            unit, LATER)
    assert agreements.decided[agreement_id][:2] == (HOUSING, "declined")
    await housing_desk.on_agreement_changed(changed(agreement_id, AgreementChange.DECLINED, "not enough",
                                                    SharingGround.PERSONAL_INFORMATION), unit, LATER)
    ended = unit.published[-1]
    assert isinstance(ended, DataWaitEnded) and ended.outcome is DataOutcome.WITHHELD
    assert ended.ground is SharingGround.PERSONAL_INFORMATION


def escalation(agreement_id: str, ground: SharingGround | None) -> RefusalEscalated:
    return RefusalEscalated(
        agreement_id=agreement_id, contract_id="bureau.case-submitted", consumer=HOUSING, provider=BUREAU,
        fields=["contact_phone"], purpose="the site visit of G-1", legal_basis="the law", valid_from=MONDAY,
        valid_until=MONDAY + timedelta(days=30), refusal="personal_information: in words only", ground=ground,
        reasons="the review cannot go on", due_at=MONDAY + timedelta(days=14))


async def test_the_coordination_office_decides_an_escalated_refusal_at_its_pace_by_the_typed_ground() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    office = CoordinationDesk(replace(coordination.ARBITER, pace=STEADY), SETTINGS, SystemClock(), agreements)
    await office.on_escalated_refusal(escalation("AGR-J", SharingGround.NOT_NECESSARY), unit, MONDAY)
    await office.on_escalated_refusal(escalation("AGR-B", SharingGround.NO_LEGAL_BASIS), unit, MONDAY)
    task = await unit.store.task("refusal:AGR-J")
    assert task is not None and task.kind is TaskKind.REFUSAL and task.status is TaskStatus.OPEN
    assert MONDAY < task.decide_at <= MONDAY + timedelta(days=14) and task.due_at == MONDAY + timedelta(days=14)
    assert await office.decide_due(unit, MONDAY) == 0 and agreements.decided == {}  # not before its pace allows
    assert await office.decide_due(unit, LATER) == 2
    # the provider's judgement is overruled, on the joint meeting's conditions (the words said otherwise)
    assert agreements.decided["AGR-J"][:2] == (COORDINATION, "proceeded")
    assert agreements.conditions["AGR-J"] == list(coordination.SHARING_CONDITIONS)
    # a ground binding in law stands
    who, step, reasons = agreements.decided["AGR-B"]
    assert (who, step) == (COORDINATION, "upheld") and "no_legal_basis" in reasons
    decided = [await unit.store.task(t) for t in ("refusal:AGR-J", "refusal:AGR-B")]
    assert [(t.status, t.decision) for t in decided if t] == [
        (TaskStatus.DECIDED, Resolution.PROCEED_WITH_CONDITIONS.value),
        (TaskStatus.DECIDED, Resolution.UPHOLD_REFUSAL.value)]


async def test_an_answer_that_comes_before_its_task_is_filed_is_kept_for_it() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    housing_desk = desk(housing.REVIEWER, agreements)
    # the provider was quicker than the unit of work that filed the request: the answer is kept ...
    await housing_desk.on_agreement_changed(changed("AGR-0001", AgreementChange.APPROVED), unit, MONDAY)
    assert unit.published == []
    await housing_desk.on_request(fire_acceptance(), unit, MONDAY)
    assert await housing_desk.decide_due(unit, LATER) == 1  # ... and found when the request is filed as AGR-0001
    task = await unit.store.task("G-1/HOU-401/1")
    assert task is not None and task.status is TaskStatus.OPEN and task.data == DataOutcome.SHARED
    assert [type(e) for e in unit.published] == [DataAwaited, DataWaitEnded]


async def test_another_departments_answer_or_a_revocation_changes_nothing_here() -> None:
    agreements, unit = MemoryAgreements(), MemoryDeskUnit()
    housing_desk, agreement_id = await asked(agreements, unit)
    await housing_desk.on_agreement_changed(changed(agreement_id, AgreementChange.REVOKED, "ended"), unit, LATER)
    await housing_desk.on_agreement_changed(
        changed(agreement_id, AgreementChange.APPROVED, consumer=ENVIRONMENT), unit, LATER)
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
    assert agreements.decided["AGR-WATER"][:2] == (MARKET, "rejected")
    assert agreements.grounds["AGR-WATER"] is SharingGround.NO_LEGAL_BASIS  # water: no law names it
    outcomes = {agreements.decided[i][1] for i in ids}
    assert outcomes == {"approved", "rejected"}
    grounds = {agreements.grounds[i] for i in ids if agreements.decided[i][1] == "rejected"}
    assert grounds == {SharingGround.PERSONAL_INFORMATION, SharingGround.VERTICAL_SYSTEM}  # each on a typed ground
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
