"""Contracts owned by the Administrative Approval Bureau (行政审批局): the agency service's case flow."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Event, Sharing, contract, shared
from contracts.departments import BUREAU, COORDINATION, REVIEWERS
from contracts.masks import KeyedHash, LastCharacters
from contracts.refusal_grounds import SharingGround

CONTACT_BASIS = "《政务数据共享条例》(2025) 第十四条: contact details shared for handling the applicant's own approval"


class Project(BaseModel):
    """The construction project as the enterprise declared it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    project_type: str = Field(description="catalogue project type: industrial, warehouse, commercial, residential, "
                                          "public, infrastructure")
    land_area_m2: float = Field(ge=0)
    floor_area_m2: float = Field(ge=0)
    investment_10k_cny: float = Field(ge=0, description="total investment in 10,000 CNY (万元)")
    industry_code: str = Field(description="GB/T 4754 industry code")
    location: str = Field(description="street or development zone within the district")


class Decision(StrEnum):
    APPROVED = "approved"
    APPROVED_WITH_CONDITIONS = "approved_with_conditions"
    SUPPLEMENT_REQUESTED = "supplement_requested"  # 补正: the enterprise must add or correct documents
    REJECTED = "rejected"

    @property
    def approves(self) -> bool:
        return self in (Decision.APPROVED, Decision.APPROVED_WITH_CONDITIONS)


@contract("bureau.case-submitted", version=1, consumers=REVIEWERS | {COORDINATION})
class CaseSubmitted(Event):
    """An enterprise's project was accepted for the agency service."""

    case_id: str = shared("case number")
    project: Project = shared("the project")
    applicant_name: str = shared("enterprise name")
    applicant_credit_code: str = shared("unified social credit code (统一社会信用代码)")
    contact_person: str = shared("applicant's contact person", sharing=Sharing.CONDITIONAL, legal_basis=CONTACT_BASIS,
                                 mask=KeyedHash())
    contact_phone: str = shared("applicant's contact phone", sharing=Sharing.CONDITIONAL, legal_basis=CONTACT_BASIS,
                                mask=LastCharacters(4))
    agent: str = shared("the bureau's agent (代办员) in charge", sharing=Sharing.NOT_SHARED)
    documents: list[str] = shared("documents handed in")
    promised_documents: list[str] = shared("non-key documents still missing, accepted against a promise (容缺受理)")
    promised_by: datetime | None = shared("the date the enterprise promised them by")
    submitted_at: datetime = shared("when the case was accepted")


@contract("bureau.opinion-requested", version=1, consumers=REVIEWERS, recipient="department")
class OpinionRequested(Event):
    """The bureau asks one department for its opinion on one approval item of a case."""

    request_id: str = shared("request id, unique per item and submission")
    case_id: str = shared("case number")
    department: str = shared("the department asked")
    item_code: str = shared("approval item code from the service catalogue")
    item_name: str = shared("approval item name")
    stage: int = shared("approval stage, 1 to 4", ge=1, le=4)
    project: Project = shared("the project")
    documents: list[str] = shared("documents on file for the case")
    missing_documents: list[str] = shared("documents the item needs that are not on file (promised under 容缺受理)")
    requested_at: datetime = shared("when the request was made")
    committed_days: int = shared("the time limit in working days", gt=0)
    due_at: datetime = shared("deadline for the opinion")


class RefusalGround(StrEnum):
    """A statutory ground of a refusal: the law forbids the project, so no joint meeting may overrule it. A
    refusal without one is a department's judgement, which the coordination office may turn into conditions."""

    ECOLOGICAL_RED_LINE = "ecological_red_line"  # 生态保护红线
    RESTRICTED_INDUSTRY = "restricted_industry"  # 《产业结构调整指导目录》
    BEYOND_DISTRICT_AUTHORITY = "beyond_district_authority"  # the district may not approve it at all
    REGULATORY_PLAN = "regulatory_plan"  # 控制性详细规划
    NOT_IN_BUSINESS = "not_in_business"  # the applicant's registration is revoked or cancelled


@contract("bureau.opinion-issued", version=2, consumers={BUREAU}, publishers=REVIEWERS)
class OpinionIssued(Event):
    """A department's opinion on an approval item. The department is known from where it entered."""

    request_id: str = shared("the request answered")
    case_id: str = shared("case number")
    item_code: str = shared("approval item code")
    decision: Decision = shared("the opinion")
    conditions: list[str] = shared("conditions attached to an approval", default_factory=list)
    reasons: list[str] = shared("reasons for a rejection or a supplement request", default_factory=list)
    grounds: list[RefusalGround] = shared("statutory grounds of a rejection (none: the department's judgement)",
                                         default_factory=list)
    officer: str = shared("the officer who decided", sharing=Sharing.NOT_SHARED)
    decided_at: datetime = shared("when the opinion was given")


@contract("bureau.supplement-provided", version=1, consumers=REVIEWERS, recipient="department")
class SupplementProvided(Event):
    """The enterprise handed in what a department asked for (补正); the department's clock runs again."""

    request_id: str = shared("the request the supplement answers")
    case_id: str = shared("case number")
    department: str = shared("the department that asked")
    documents: list[str] = shared("documents handed in")
    provided_at: datetime = shared("when")
    due_at: datetime = shared("the deadline, moved by the time the clock stood still")


@contract("bureau.site-survey-arranged", version=1, consumers=REVIEWERS, recipient="departments")
class SiteSurveyArranged(Event):
    """A joint site survey (联合踏勘): one appointment for several departments at the site."""

    survey_id: str = shared("the survey")
    case_id: str = shared("case number")
    departments: list[str] = shared("the departments taking part")
    location: str = shared("where")
    survey_at: datetime = shared("when")


@contract("bureau.deadline-reminder", version=1, consumers=REVIEWERS, recipient="department")
class DeadlineReminder(Event):
    """A department has used half (or four fifths) of its time on a request."""

    request_id: str = shared("the request")
    case_id: str = shared("case number")
    department: str = shared("the department reminded")
    item_code: str = shared("approval item code")
    share_used: float = shared("share of the time limit used: 0.5 or 0.8")
    due_at: datetime = shared("the deadline")


@contract("bureau.deadline-escalated", version=1, consumers={COORDINATION})
class DeadlineEscalated(Event):
    """A department let a request pass its deadline: the coordination office (joint meeting) takes it up."""

    request_id: str = shared("the request")
    case_id: str = shared("case number")
    department: str = shared("the department late")
    item_code: str = shared("approval item code")
    due_at: datetime = shared("the deadline passed")
    working_days_late: float = shared("working days since the deadline")


class Refusal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    department: str
    item_code: str
    reasons: list[str]
    grounds: list[RefusalGround] = []

    @property
    def binding(self) -> bool:
        return bool(self.grounds)


@contract("bureau.conflict-raised", version=2, consumers={COORDINATION})
class ConflictRaised(Event):
    """Departments' opinions on a stage disagree (one approves what another refuses): the stage is held until
    the coordination office decides."""

    conflict_id: str = shared("the conflict")
    case_id: str = shared("case number")
    stage: int = shared("the stage held", ge=1, le=4)
    project: Project = shared("the project")
    approving: list[str] = shared("departments that approved")
    refusals: list[Refusal] = shared("the refusals, their reasons and statutory grounds")
    raised_at: datetime = shared("when")


@contract("bureau.case-suspended", version=1, consumers=REVIEWERS | {COORDINATION})
class CaseSuspended(Event):
    """The approval is suspended: the enterprise missed the date it promised documents by (容缺受理)."""

    case_id: str = shared("case number")
    missing_documents: list[str] = shared("what is still missing")
    promised_by: datetime = shared("the date promised")
    suspended_at: datetime = shared("when")


@contract("bureau.case-resumed", version=1, consumers=REVIEWERS | {COORDINATION})
class CaseResumed(Event):
    """The promised documents arrived: the approval goes on and the departments' clocks run again."""

    case_id: str = shared("case number")
    resumed_at: datetime = shared("when")


@contract("bureau.stage-completed", version=1, consumers={COORDINATION})
class StageCompleted(Event):
    """All items of a stage were approved."""

    case_id: str = shared("case number")
    stage: int = shared("approval stage, 1 to 4", ge=1, le=4)
    completed_at: datetime = shared("when the last opinion arrived")


class CaseOutcome(StrEnum):
    COMPLETED = "completed"
    REJECTED = "rejected"
    CLOSED = "closed"


@contract("bureau.case-completed", version=1, consumers=REVIEWERS | {COORDINATION})
class CaseCompleted(Event):
    """The case ended: every stage done, or rejected, or closed."""

    case_id: str = shared("case number")
    outcome: CaseOutcome = shared("how the case ended")
    reasons: list[str] = shared("why, when rejected or closed", default_factory=list)
    completed_at: datetime = shared("when the case ended")


# ---- approval on commitment (告知承诺制) ---------------------------------------------------------------


@contract("bureau.commitment-approved", version=1, consumers=REVIEWERS, recipient="department")
class CommitmentApproved(Event):
    """An item the catalogue marks for approval on commitment (告知承诺制) was approved on the applicant's written
    commitment: the department verifies it afterwards, by the date given."""

    request_id: str = shared("the approval, as a request of the case")
    case_id: str = shared("case number")
    department: str = shared("the department that verifies")
    item_code: str = shared("approval item code")
    item_name: str = shared("approval item name")
    stage: int = shared("approval stage, 1 to 4", ge=1, le=4)
    project: Project = shared("the project")
    documents: list[str] = shared("documents on file for the case")
    commitment: str = shared("what the applicant committed to in writing")
    approved_at: datetime = shared("when it was approved on the commitment")
    verify_by: datetime = shared("the deadline for the verification")


class Verification(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # the commitment was not kept: the approval is revoked


@contract("bureau.commitment-verified", version=1, consumers={BUREAU}, publishers=REVIEWERS)
class CommitmentVerified(Event):
    """A department verified an approval given on commitment. The department is known from where it entered."""

    request_id: str = shared("the approval verified")
    case_id: str = shared("case number")
    item_code: str = shared("approval item code")
    outcome: Verification = shared("whether the commitment was kept")
    findings: list[str] = shared("what the verification found (required when it failed)", default_factory=list)
    officer: str = shared("the officer who verified", sharing=Sharing.NOT_SHARED)
    verified_at: datetime = shared("when")


@contract("bureau.approval-revoked", version=1, consumers=REVIEWERS | {COORDINATION})
class ApprovalRevoked(Event):
    """A verification failed: the approval given on commitment is revoked, the item is asked for again in the
    ordinary way, and a case that had ended is open again."""

    request_id: str = shared("the approval revoked")
    case_id: str = shared("case number")
    department: str = shared("the department whose verification failed it")
    item_code: str = shared("approval item code")
    findings: list[str] = shared("why")
    reopened_request_id: str = shared("the ordinary request that replaces it")
    case_reopened: bool = shared("whether the case had ended and is open again")
    revoked_at: datetime = shared("when")


# ---- data a department waits for ---------------------------------------------------------------------


@contract("bureau.data-awaited", version=1, consumers={BUREAU}, publishers=REVIEWERS)
class DataAwaited(Event):
    """A department's review of a case waits for conditional data it asked its provider for."""

    request_id: str = shared("the request whose review waits")
    case_id: str = shared("case number")
    agreement_id: str = shared("the sharing request made at the exchange")
    provider: str = shared("the department asked")
    contract_id: str = shared("the contract whose fields are asked for")
    fields: list[str] = shared("the fields asked for")
    purpose: str = shared("what the data is for")
    awaited_at: datetime = shared("since when the review waits")


class DataOutcome(StrEnum):
    SHARED = "shared"
    WITHHELD = "withheld"  # refused (and not overruled): the review goes on without it


@contract("bureau.data-wait-ended", version=1, consumers={BUREAU}, publishers=REVIEWERS)
class DataWaitEnded(Event):
    """The data a review waited for was shared, or withheld: the review goes on."""

    request_id: str = shared("the request whose review waited")
    case_id: str = shared("case number")
    agreement_id: str = shared("the sharing request")
    outcome: DataOutcome = shared("whether the data came")
    ground: SharingGround | None = shared("the ground of a refusal, when it named one", default=None)
    escalated: bool = shared("whether the refusal was escalated to the coordination office")
    ended_at: datetime = shared("when the review went on")
