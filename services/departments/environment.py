"""生态环境局 (Ecology and Environment Bureau): environmental impact approval (naming the legal representative
of a high-risk industry as the person responsible: asked of market regulation), environmental acceptance."""

from __future__ import annotations

from contracts.bureau import DataOutcome, Decision, OpinionRequested, RefusalGround
from contracts.departments import ENVIRONMENT, MARKET
from contracts.refusal_grounds import SharingGround
from services.departments.rules import CaseFile, DataNeed, Opinion, Pace, Reviewer
from services.kit.agreements import SharingRequest

RED_LINE_AREAS = {"滨江湿地保护区"}  # inside the ecological protection red line (生态保护红线)
HEAVY_INDUSTRIES = ("C26", "C27", "C30", "C31", "C32")  # chemicals, pharmaceuticals, minerals, metals
RESPONSIBLE_PERSON_BASIS = "《排污许可管理条例》第八条: the person responsible for emissions"


def needs(request: OpinionRequested, file: CaseFile) -> DataNeed | None:
    """A high-risk industry's impact approval names its legal representative as the person responsible."""
    if request.item_code != "EEB-101" or not request.project.industry_code.startswith(HEAVY_INDUSTRIES):
        return None
    return DataNeed(MARKET, SharingRequest(
        "market.business-registration", ("legal_representative",),
        f"name the person responsible for emissions in the impact approval of case {request.case_id}",
        RESPONSIBLE_PERSON_BASIS), essential=True,
        # the law names the person responsible: that the name is more personal information than the purpose needs is
        # disputed before the office (which upholds the ground if it binds)
        contests=frozenset({SharingGround.PERSONAL_INFORMATION}))


def decide(request: OpinionRequested, file: CaseFile) -> Opinion:
    project = request.project
    if project.location in RED_LINE_AREAS and project.project_type in ("industrial", "warehouse", "infrastructure"):
        return Opinion(Decision.REJECTED, reasons=[
            f"{project.location} lies inside the ecological protection red line (生态保护红线): "
            "no industrial construction is permitted"], grounds=[RefusalGround.ECOLOGICAL_RED_LINE])
    if project.industry_code.startswith(HEAVY_INDUSTRIES):
        unnamed = ["the enterprise names the person responsible for emissions in writing before trial production "
                   "(the legal representative was withheld)"] if file.data is DataOutcome.WITHHELD else []
        return Opinion(Decision.APPROVED_WITH_CONDITIONS, conditions=[
            "emissions must meet the special limits for key regions (特别排放限值)",
            "online monitoring connected to the bureau before trial production", *unnamed])
    return Opinion(Decision.APPROVED)


def supplement_reason(request: OpinionRequested) -> str:
    return "the impact report's air-dispersion modelling must cover the nearest residential receptors"


REVIEWER = Reviewer(ENVIRONMENT, "环评科 钱伟", Pace(median_days=9.0, spread=0.6, supplement_rate=0.25), decide,
                    supplement_reason, needs=needs)
