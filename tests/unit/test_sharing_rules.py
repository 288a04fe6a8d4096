"""The rules of sharing that arises from the work, as pure functions: which reviews need data, how the bureau
answers requests for applicants' contacts (approving, refusing, offering the phone alone), when a consumer escalates
a refusal or accepts a counter-offer, and how the coordination office decides an escalated refusal."""

import random
from datetime import datetime, timedelta

import pytest

from base.calendar import CHINA, WorkingDayCalendar
from contracts.bureau import Project
from contracts.coordination import Resolution
from contracts.departments import AIRDEFENCE, BUREAU, ENVIRONMENT, HOUSING, MARKET
from contracts.exchange import AgreementRequested
from contracts.refusal_grounds import SharingGround
from services.bureau import sharing
from services.bureau.catalogue import load_catalogue
from services.bureau.model import Case, CaseStatus
from services.bureau.samples import application
from services.departments import airdefence, coordination, environment, housing
from services.departments.rules import CaseFile, DataNeed, SharingRefusal, accepts_offer, escalates
from services.kit.agreements import SharingRequest
from tests.factories import opinion_requested, project

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA)
FILE = CaseFile("G-1", None, None)


def test_two_grounds_bind_in_law() -> None:
    assert {g for g in SharingGround if g.binding} == {SharingGround.NO_LEGAL_BASIS, SharingGround.PERSONAL_INFORMATION}


@pytest.mark.parametrize(("department", "item", "changes", "provider", "fields"), [
    (HOUSING, "HOU-401", {"project_type": "commercial"}, BUREAU, ("contact_person", "contact_phone")),
    (ENVIRONMENT, "EEB-101", {"industry_code": "C2710"}, MARKET, ("legal_representative",)),
    (AIRDEFENCE, "AIR-301", {"floor_area_m2": 80_000}, BUREAU, ("contact_phone",)),
])
def test_a_review_needs_data_when_its_case_does(department: str, item: str, changes: dict[str, object],
                                                provider: str, fields: tuple[str, ...]) -> None:
    rules = {HOUSING: housing.needs, ENVIRONMENT: environment.needs, AIRDEFENCE: airdefence.needs}[department]
    request = opinion_requested(department=department, item_code=item, project=project(**changes))
    need = rules(request, FILE)
    assert need is not None and need.provider == provider and need.request.fields == fields
    assert request.case_id in need.request.purpose
    ordinary = opinion_requested(department=department, item_code=item,
                                 project=project(project_type="industrial", industry_code="C3989", floor_area_m2=9_000))
    assert rules(ordinary, FILE) is None


def test_a_refusal_is_escalated_only_for_an_essential_need_on_a_ground_that_does_not_bind() -> None:
    request = SharingRequest("bureau.case-submitted", ("contact_phone",), "visit", "law")
    essential, optional = DataNeed(BUREAU, request, True), DataNeed(BUREAU, request, False)
    assert escalates(essential, SharingGround.NOT_NECESSARY) and escalates(essential, None)
    assert not escalates(essential, SharingGround.PERSONAL_INFORMATION)
    assert not escalates(optional, SharingGround.NOT_NECESSARY)
    disputed = DataNeed(BUREAU, request, True, contests=frozenset({SharingGround.PERSONAL_INFORMATION}))
    assert escalates(disputed, SharingGround.PERSONAL_INFORMATION) and not escalates(disputed,
                                                                                    SharingGround.NO_LEGAL_BASIS)


def test_environment_disputes_a_personal_information_refusal_of_the_person_its_law_names() -> None:
    need = environment.needs(opinion_requested(department=ENVIRONMENT, item_code="EEB-101",
                                               project=project(industry_code="C2710")), FILE)
    assert need is not None and escalates(need, SharingGround.PERSONAL_INFORMATION)
    assert not escalates(need, SharingGround.NO_LEGAL_BASIS)


def refusal(ground: SharingGround | None) -> SharingRefusal:
    return SharingRefusal("AGR-1", HOUSING, BUREAU, "bureau.case-submitted", ["contact_phone"], "the site visit",
                          ground, "reasons")


def test_the_office_upholds_a_refusal_on_a_binding_ground_and_otherwise_orders_the_data_shared_on_conditions() -> None:
    upheld, conditions, reasons = coordination.resolve_refusal(refusal(SharingGround.PERSONAL_INFORMATION))
    assert upheld is Resolution.UPHOLD_REFUSAL and conditions == [] and "personal_information" in reasons[0]
    for ground in (SharingGround.NOT_NECESSARY, SharingGround.VERTICAL_SYSTEM, SharingGround.UNVERIFIED, None):
        proceeded, conditions, _ = coordination.resolve_refusal(refusal(ground))
        assert proceeded is Resolution.PROCEED_WITH_CONDITIONS
        assert conditions == list(coordination.SHARING_CONDITIONS)


def contact_request(agreement_id: str) -> AgreementRequested:
    return AgreementRequested(
        agreement_id=agreement_id, contract_id="bureau.case-submitted", consumer=HOUSING, provider=BUREAU,
        fields=["contact_phone"], purpose="the site visit", legal_basis="law", valid_from=MONDAY,
        valid_until=MONDAY + timedelta(days=30), due_at=MONDAY + timedelta(days=14))


def a_case(status: CaseStatus = CaseStatus.IN_PROGRESS) -> Case:
    office = Project(name="恒泰商业综合体项目", project_type="commercial", land_area_m2=20_000, floor_area_m2=40_000,
                     investment_10k_cny=30_000, industry_code="K7010", location="城东街道")
    case, _ = Case.open(application(random.Random(1), office), "王芳", MONDAY, load_catalogue(),
                        WorkingDayCalendar())
    case.status = status
    return case


def test_the_bureau_shares_contacts_for_a_case_it_runs_though_its_agents_sometimes_keep_them() -> None:
    answers = [sharing.decide(contact_request(f"AGR-{n}"), a_case()) for n in range(60)]
    grounds = {a.ground for a in answers}
    assert grounds == {None, SharingGround.NOT_NECESSARY}
    kept = sum(1 for a in answers if not a.approves) / len(answers)
    assert 0.1 < kept < 0.5 and all("王芳" in a.explanation for a in answers if not a.approves)
    assert sharing.decide(contact_request("AGR-X"), a_case(CaseStatus.COMPLETED)).ground \
        is SharingGround.NO_LEGAL_BASIS


def test_asked_for_the_person_and_the_phone_the_bureau_sometimes_offers_the_phone_alone() -> None:
    both = [contact_request(f"AGR-{n}").model_copy(update={"fields": ["contact_person", "contact_phone"]})
            for n in range(80)]
    answers = [sharing.decide(request, a_case()) for request in both]
    offers = [a for a in answers if a.counters]
    assert offers and all(a.offered == ("contact_phone",) and a.ground is SharingGround.NOT_NECESSARY
                          for a in offers)
    assert any(a.approves for a in answers) and any(not a.approves and not a.counters for a in answers)


def test_a_counter_offer_is_accepted_when_it_holds_what_the_review_cannot_do_without() -> None:
    need = housing.needs(opinion_requested(department=HOUSING, item_code="HOU-401",
                                           project=project(project_type="commercial")), FILE)
    assert need is not None and need.essential
    assert accepts_offer(need, ["contact_phone"]) and accepts_offer(need, ["contact_person", "contact_phone"])
    assert not accepts_offer(need, ["contact_person"])
    everything = DataNeed(BUREAU, SharingRequest("bureau.case-submitted", ("contact_person", "contact_phone"), "v",
                                                 "law"), True)
    assert not accepts_offer(everything, ["contact_phone"])  # no must-have named: all that was asked for
