"""水务局 (Water Affairs Bureau): soil and water conservation plans, sewage discharge permits (approved on
commitment, 告知承诺制, and verified on site here)."""

from __future__ import annotations

from contracts.bureau import CommitmentApproved, Decision, OpinionRequested, Verification
from contracts.departments import WATER
from services.departments.rules import CaseFile, Opinion, Pace, Reviewer, draw

LARGE_SITE_M2 = 100_000
MIXED_PIPES_RATE = {"industrial": 0.3}  # sites whose drains are found against the commitment (others: 0.1)


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


def verify(commitment: CommitmentApproved, file: CaseFile) -> tuple[Verification, list[str]]:
    """The sewage discharge pre-review given on commitment: the site's drains checked against it."""
    if draw(commitment.request_id, "verification") < MIXED_PIPES_RATE.get(commitment.project.project_type, 0.1):
        return Verification.FAILED, [
            "rainwater and sewage are not separated (雨污分流) at the site, against the commitment"]
    return Verification.PASSED, []


REVIEWER = Reviewer(WATER, "水保科 郑红", Pace(median_days=4.0, spread=0.5, supplement_rate=0.15), decide,
                    supplement_reason, verify=verify)
