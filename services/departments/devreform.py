"""发展和改革局 (Development and Reform Bureau): filing of enterprise-invested projects (备案)."""

from __future__ import annotations

from contracts.bureau import Decision, OpinionRequested, RefusalGround
from contracts.departments import DEVREFORM
from services.departments.rules import CaseFile, Opinion, Pace, Reviewer

# 《产业结构调整指导目录》: industries whose new capacity is restricted or to be eliminated (by GB/T 4754 code).
RESTRICTED_INDUSTRIES = {"C3011": "cement clinker", "C3110": "iron smelting", "C2211": "paper pulp from straw"}
LARGE_INVESTMENT_10K_CNY = 50_000  # filings above 5 亿元 are checked against the energy-saving review


def decide(request: OpinionRequested, file: CaseFile) -> Opinion:
    project = request.project
    if project.industry_code in RESTRICTED_INDUSTRIES:
        return Opinion(Decision.REJECTED, reasons=[
            f"{RESTRICTED_INDUSTRIES[project.industry_code]} is restricted by the industrial structure catalogue"],
            grounds=[RefusalGround.RESTRICTED_INDUSTRY])
    registration = file.registration
    if registration is not None and registration.get("status") != "in_business":
        return Opinion(Decision.REJECTED, reasons=[
            f"the applicant's business registration is {registration.get('status')}: it cannot file a project"],
            grounds=[RefusalGround.NOT_IN_BUSINESS])
    if project.investment_10k_cny >= LARGE_INVESTMENT_10K_CNY:
        return Opinion(Decision.APPROVED_WITH_CONDITIONS, conditions=[
            "an energy-saving review (节能审查) must be passed before construction starts"])
    return Opinion(Decision.APPROVED)


def supplement_reason(request: OpinionRequested) -> str:
    return "the filing form's investment breakdown does not add up to the total declared"


REVIEWER = Reviewer(DEVREFORM, "投资科 孙磊", Pace(median_days=1.5, spread=0.4, supplement_rate=0.05), decide,
                    supplement_reason)
