"""水务局 (Water Affairs Bureau): soil and water conservation plans, sewage discharge permits."""

from __future__ import annotations

from contracts.bureau import Decision, OpinionRequested
from contracts.departments import WATER
from services.departments.rules import CaseFile, Opinion, Pace, Reviewer

LARGE_SITE_M2 = 100_000


def decide(request: OpinionRequested, file: CaseFile) -> Opinion:
    project = request.project
    if request.item_code == "WAT-101" and project.land_area_m2 >= LARGE_SITE_M2:
        return Opinion(Decision.APPROVED_WITH_CONDITIONS, conditions=[
            "a soil and water conservation monitoring report every quarter during construction"])
    if request.item_code == "WAT-201" and project.project_type == "industrial":
        return Opinion(Decision.APPROVED_WITH_CONDITIONS, conditions=[
            "industrial waste water pre-treated to the sewer intake standard (GB/T 31962)"])
    return Opinion(Decision.APPROVED)


def supplement_reason(request: OpinionRequested) -> str:
    return "the drainage design does not show the connection point to the municipal sewer"


REVIEWER = Reviewer(WATER, "水保科 郑红", Pace(median_days=4.0, spread=0.5, supplement_rate=0.15), decide,
                    supplement_reason)
