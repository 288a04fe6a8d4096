"""生态环境局 (Ecology and Environment Bureau): environmental impact approval, environmental acceptance."""

from __future__ import annotations

from contracts.bureau import Decision, OpinionRequested, RefusalGround
from contracts.departments import ENVIRONMENT
from services.departments.rules import CaseFile, Opinion, Pace, Reviewer

RED_LINE_AREAS = {"滨江湿地保护区"}  # inside the ecological protection red line (生态保护红线)
HEAVY_INDUSTRIES = ("C26", "C27", "C30", "C31", "C32")  # chemicals, pharmaceuticals, minerals, metals


def decide(request: OpinionRequested, file: CaseFile) -> Opinion:
    project = request.project
    if project.location in RED_LINE_AREAS and project.project_type in ("industrial", "warehouse", "infrastructure"):
        return Opinion(Decision.REJECTED, reasons=[
            f"{project.location} lies inside the ecological protection red line (生态保护红线): "
            "no industrial construction is permitted"], grounds=[RefusalGround.ECOLOGICAL_RED_LINE])
    if project.industry_code.startswith(HEAVY_INDUSTRIES):
        return Opinion(Decision.APPROVED_WITH_CONDITIONS, conditions=[
            "emissions must meet the special limits for key regions (特别排放限值)",
            "online monitoring connected to the bureau before trial production"])
    return Opinion(Decision.APPROVED)


def supplement_reason(request: OpinionRequested) -> str:
    return "the impact report's air-dispersion modelling must cover the nearest residential receptors"


REVIEWER = Reviewer(ENVIRONMENT, "环评科 钱伟", Pace(median_days=9.0, spread=0.6, supplement_rate=0.25), decide,
                    supplement_reason)
