from contracts.bureau import Decision
from services.departments import planning
from tests.factories import opinion_requested, project


def decide(**changes: object) -> planning.Opinion:
    return planning.decide(opinion_requested(project=project(**changes)))


def test_a_moderate_project_is_approved() -> None:
    assert decide(land_area_m2=50_000, floor_area_m2=60_000).decision is Decision.APPROVED


def test_a_plot_ratio_near_the_cap_carries_conditions() -> None:
    opinion = decide(land_area_m2=10_000, floor_area_m2=28_000)
    assert opinion.decision is Decision.APPROVED_WITH_CONDITIONS and "2.80" in opinion.conditions[0]


def test_a_plot_ratio_over_the_cap_or_an_oversized_site_is_rejected_with_reasons() -> None:
    assert "3.0" in decide(land_area_m2=10_000, floor_area_m2=31_000).reasons[0]
    assert decide(land_area_m2=250_000, floor_area_m2=100_000).decision is Decision.REJECTED
