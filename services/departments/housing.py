"""住房和城乡建设局 (Housing and Urban-Rural Development Bureau): construction drawing review with the
fire-protection design review, the construction permit, fire-protection acceptance, completion filing."""

from __future__ import annotations

from contracts.bureau import Decision, OpinionRequested
from contracts.departments import HOUSING
from services.departments.rules import CaseFile, Opinion, Pace, Reviewer

HIGH_RISE_FLOOR_AREA_M2 = 50_000  # treated as a large public building for fire-protection review


def decide(request: OpinionRequested, file: CaseFile) -> Opinion:
    project = request.project
    if request.item_code == "HOU-301" and project.floor_area_m2 >= HIGH_RISE_FLOOR_AREA_M2:
        return Opinion(Decision.APPROVED_WITH_CONDITIONS, conditions=[
            "a fire-protection design special review (消防设计专家评审) for the atrium smoke control",
            "the fire engine access must stay clear of the underground garage ramps"])
    if request.item_code == "HOU-302" and request.missing_documents:
        return Opinion(Decision.APPROVED_WITH_CONDITIONS, conditions=[
            f"{', '.join(request.missing_documents)} to be handed in before the foundation acceptance (容缺)"])
    return Opinion(Decision.APPROVED)


def supplement_reason(request: OpinionRequested) -> str:
    if request.item_code in ("HOU-301", "HOU-401"):
        return "the fire-protection drawings lack the evacuation width calculation for each floor"
    return "the supervision contract is not signed by the chief supervising engineer"


REVIEWER = Reviewer(HOUSING, "建管科 周洁", Pace(median_days=5.0, spread=0.5, supplement_rate=0.20), decide,
                    supplement_reason)
