"""人民防空办公室 (Civil Air Defence Office): building shelters elsewhere, shelter drawing review and acceptance."""

from __future__ import annotations

from contracts.bureau import Decision, OpinionRequested
from contracts.departments import AIRDEFENCE
from services.departments.rules import CaseFile, Opinion, Pace, Reviewer

SHELTER_SHARE = 0.05  # a shelter of 5 % of the above-ground floor area (《人民防空法》, local measures)
FEE_PER_M2_CNY = 2_000  # fee for building the shelter elsewhere (易地建设费)


def decide(request: OpinionRequested, file: CaseFile) -> Opinion:
    project = request.project
    shelter = project.floor_area_m2 * SHELTER_SHARE
    if request.item_code == "AIR-201":
        return Opinion(Decision.APPROVED_WITH_CONDITIONS, conditions=[
            f"a fee of {shelter * FEE_PER_M2_CNY / 10_000:,.0f} 万元 for {shelter:,.0f} m² of shelter built elsewhere"])
    return Opinion(Decision.APPROVED)


def supplement_reason(request: OpinionRequested) -> str:
    return "the shelter drawings lack the blast-door schedule (防护密闭门表)"


REVIEWER = Reviewer(AIRDEFENCE, "工程科 吴涛", Pace(median_days=6.5, spread=0.7, supplement_rate=0.10), decide,
                    supplement_reason)
