"""Each department's rules, decided on the project as the request carries it."""

from contracts.bureau import Decision, Refusal, RefusalGround
from contracts.coordination import Resolution
from services.departments import airdefence, devreform, environment, housing, market, planning
from services.departments.coordination import resolve
from services.departments.rules import CaseFile, Opinion, Pace
from tests.factories import case_submitted, conflict_raised, opinion_requested, project

NO_FILE = CaseFile("G-TEST-1", None, None)


def planning_opinion(**changes: object) -> Opinion:
    return planning.decide(opinion_requested(project=project(**changes)), NO_FILE)


def test_planning_approves_a_moderate_project() -> None:
    assert planning_opinion(land_area_m2=50_000, floor_area_m2=60_000, project_type="commercial").decision \
        is Decision.APPROVED


def test_planning_attaches_conditions_near_the_plot_ratio_cap() -> None:
    opinion = planning_opinion(land_area_m2=10_000, floor_area_m2=28_000)
    assert opinion.decision is Decision.APPROVED_WITH_CONDITIONS and "2.80" in opinion.conditions[0]


def test_planning_refuses_a_plot_ratio_over_the_cap_or_an_oversized_site_with_reasons() -> None:
    assert "3.0" in planning_opinion(land_area_m2=10_000, floor_area_m2=31_000).reasons[0]
    assert planning_opinion(land_area_m2=250_000, floor_area_m2=100_000).decision is Decision.REJECTED


def test_environment_refuses_industry_inside_the_ecological_red_line() -> None:
    request = opinion_requested(department="environment", item_code="EEB-101",
                                project=project(project_type="industrial", location="滨江湿地保护区"))
    opinion = environment.decide(request, NO_FILE)
    assert opinion.decision is Decision.REJECTED and "生态保护红线" in opinion.reasons[0]


def test_development_and_reform_refuses_an_applicant_whose_licence_was_revoked() -> None:
    request = opinion_requested(department="devreform", item_code="DRC-101")
    revoked = CaseFile("G-TEST-1", None, {"status": "revoked"})
    assert devreform.decide(request, revoked).decision is Decision.REJECTED
    assert devreform.decide(request, NO_FILE).decision.approves


def test_housing_takes_a_promised_document_as_a_condition_of_the_permit() -> None:
    request = opinion_requested(department="housing", item_code="HOU-302", missing_documents=["农民工工资保证金凭证"])
    opinion = housing.decide(request, NO_FILE)
    assert opinion.decision is Decision.APPROVED_WITH_CONDITIONS and "容缺" in opinion.conditions[0]


def test_civil_air_defence_charges_for_a_shelter_built_elsewhere() -> None:
    request = opinion_requested(department="airdefence", item_code="AIR-201", project=project(floor_area_m2=40_000))
    opinion = airdefence.decide(request, NO_FILE)
    assert "2,000 m²" in opinion.conditions[0] and "400 万元" in opinion.conditions[0]


def test_market_regulation_shares_a_registration_whose_representative_id_never_leaves_it() -> None:
    registration = market.registration(case_submitted(), case_submitted().submitted_at)
    assert registration.credit_code == case_submitted().applicant_credit_code
    assert registration.status in {"in_business", "revoked"}
    schema = type(registration).CONTRACT.json_schema["properties"]
    assert schema["representative_id_number"]["x-sharing"] == "not_shared"
    assert schema["legal_representative"]["x-sharing"] == "conditional"


def test_the_joint_meeting_upholds_a_refusal_on_a_statutory_ground_whatever_its_wording() -> None:
    binding = Refusal(department="environment", item_code="EEB-101", reasons=["see the attached map"],
                      grounds=[RefusalGround.ECOLOGICAL_RED_LINE])
    resolution, conditions, reasons = resolve(conflict_raised(binding))
    assert resolution is Resolution.UPHOLD_REFUSAL and conditions == []
    assert "ecological_red_line" in reasons[0]


def test_the_joint_meeting_turns_a_judgement_into_conditions_even_when_it_names_the_red_line() -> None:
    soft = Refusal(department="water", item_code="WAT-101", reasons=["drainage too thin near the 生态保护红线"])
    resolution, conditions, _ = resolve(conflict_raised(soft))
    assert resolution is Resolution.PROCEED_WITH_CONDITIONS
    assert conditions == ["water (WAT-101): drainage too thin near the 生态保护红线"]


def test_a_refusal_names_its_statutory_ground_and_a_judgement_names_none() -> None:
    red_line = environment.decide(opinion_requested(department="environment", item_code="EEB-101", project=project(
        project_type="industrial", location="滨江湿地保护区")), NO_FILE)
    assert red_line.grounds == [RefusalGround.ECOLOGICAL_RED_LINE]
    revoked = devreform.decide(opinion_requested(department="devreform", item_code="DRC-101"),
                               CaseFile("G-TEST-1", None, {"status": "revoked"}))
    assert RefusalGround.NOT_IN_BUSINESS in revoked.grounds
    assert planning_opinion(land_area_m2=50_000, floor_area_m2=60_000, project_type="commercial").grounds == []


def test_a_departments_pace_is_reproducible_and_centred_on_its_median() -> None:
    pace = Pace(median_days=5.0, spread=0.5, supplement_rate=0.2)
    draws = sorted(pace.days(f"task-{i}") for i in range(2001))
    assert pace.days("task-7") == pace.days("task-7")
    assert 4.5 < draws[1000] < 5.5
    asked = sum(pace.asks_supplement(f"task-{i}") for i in range(2000))
    assert 300 < asked < 500
