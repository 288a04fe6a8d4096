"""住房和城乡建设局 (Housing and Urban-Rural Development Bureau): construction drawing review with the
fire-protection design review, the construction permit (approved on commitment, 告知承诺制, and verified here),
fire-protection acceptance (with a site visit for crowded places: the applicant's contact is asked of the bureau),
completion filing."""

from __future__ import annotations

from contracts.bureau import CommitmentApproved, DataOutcome, Decision, OpinionRequested, Verification
from contracts.departments import BUREAU, HOUSING
from services.departments.rules import CaseFile, DataNeed, Opinion, Pace, Reviewer, draw
from services.kit.agreements import SharingRequest

HIGH_RISE_FLOOR_AREA_M2 = 50_000  # treated as a large public building for fire-protection review
CROWDED_PLACES = ("commercial", "public")  # 人员密集场所: the fire-protection acceptance visits the site
FIRE_ACCEPTANCE_BASIS = "《建设工程消防设计审查验收管理暂行规定》第二十七条: on-site acceptance with the applicant"
WAGE_DEPOSIT = "农民工工资保证金凭证"
BROKEN_COMMITMENT_RATE = 0.15  # site inspections that find a construction permit's commitment not kept


def needs(request: OpinionRequested, file: CaseFile) -> DataNeed | None:
    """The fire-protection acceptance of a crowded place visits the site: the applicant's contact is needed."""
    if request.item_code != "HOU-401" or request.project.project_type not in CROWDED_PLACES:
        return None
    return DataNeed(BUREAU, SharingRequest(
        "bureau.case-submitted", ("contact_person", "contact_phone"),
        f"arrange the fire-protection acceptance site visit of case {request.case_id} with the applicant",
        FIRE_ACCEPTANCE_BASIS), essential=True, must_have=("contact_phone",))  # the visit is arranged by phone


def decide(request: OpinionRequested, file: CaseFile) -> Opinion:
    project = request.project
    if request.item_code == "HOU-401" and file.data is DataOutcome.WITHHELD:
        return Opinion(Decision.APPROVED_WITH_CONDITIONS, conditions=[
            "the site visit was arranged through the bureau's agent (代办员), the applicant's contact withheld: "
            "the applicant confirms the fire facilities' test report in writing within 5 working days"])
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


def verify(commitment: CommitmentApproved, file: CaseFile) -> tuple[Verification, list[str]]:
    """A construction permit given on commitment: the wage deposit paid, the site as the commitment said."""
    if commitment.item_code == "HOU-302" and WAGE_DEPOSIT not in commitment.documents:
        return Verification.FAILED, [f"the wage guarantee deposit committed to ({WAGE_DEPOSIT}) was not paid"]
    if draw(commitment.request_id, "verification") < BROKEN_COMMITMENT_RATE:
        return Verification.FAILED, [
            "the site inspection found work begun without the chief supervising engineer, against the commitment"]
    return Verification.PASSED, []


REVIEWER = Reviewer(HOUSING, "建管科 周洁", Pace(median_days=5.0, spread=0.5, supplement_rate=0.20), decide,
                    supplement_reason, needs=needs, verify=verify)
