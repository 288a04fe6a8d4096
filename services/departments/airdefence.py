"""人民防空办公室 (Civil Air Defence Office): building shelters elsewhere, shelter drawing review (a large shelter's
inspection is arranged with the applicant: its phone is asked of the bureau, though the review can do without it)
and acceptance."""

from __future__ import annotations

from contracts.bureau import DataOutcome, Decision, OpinionRequested
from contracts.departments import AIRDEFENCE, BUREAU
from services.departments.rules import CaseFile, DataNeed, Opinion, Pace, Reviewer
from services.kit.agreements import SharingRequest

SHELTER_SHARE = 0.05  # a shelter of 5 % of the above-ground floor area (《人民防空法》, local measures)
FEE_PER_M2_CNY = 2_000  # fee for building the shelter elsewhere (易地建设费)
LARGE_SHELTER_FLOOR_AREA_M2 = 60_000  # the shelter's drawings are checked on site with the applicant


def needs(request: OpinionRequested, file: CaseFile) -> DataNeed | None:
    if request.item_code != "AIR-301" or request.project.floor_area_m2 < LARGE_SHELTER_FLOOR_AREA_M2:
        return None
    return DataNeed(BUREAU, SharingRequest(
        "bureau.case-submitted", ("contact_phone",),
        f"arrange the shelter inspection of case {request.case_id} with the applicant", "《人民防空法》第二十二条"),
        essential=False)


def decide(request: OpinionRequested, file: CaseFile) -> Opinion:
    project = request.project
    shelter = project.floor_area_m2 * SHELTER_SHARE
    if request.item_code == "AIR-201":
        return Opinion(Decision.APPROVED_WITH_CONDITIONS, conditions=[
            f"a fee of {shelter * FEE_PER_M2_CNY / 10_000:,.0f} 万元 for {shelter:,.0f} m² of shelter built elsewhere"])
    if file.data is DataOutcome.WITHHELD:
        return Opinion(Decision.APPROVED_WITH_CONDITIONS, conditions=[
            "the shelter inspection is arranged through the bureau's agent (代办员)"])
    return Opinion(Decision.APPROVED)


def supplement_reason(request: OpinionRequested) -> str:
    return "the shelter drawings lack the blast-door schedule (防护密闭门表)"


REVIEWER = Reviewer(AIRDEFENCE, "工程科 吴涛", Pace(median_days=6.5, spread=0.7, supplement_rate=0.10), decide,
                    supplement_reason, needs=needs)
