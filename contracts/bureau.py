"""Contracts owned by the Administrative Approval Bureau (行政审批局): the agency service's case flow."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Event, Sharing, contract, shared
from contracts.departments import BUREAU, COORDINATION, REVIEWERS

CONTACT_BASIS = "《政务数据共享条例》(2025) 第十四条: contact details shared for handling the applicant's own approval"


class Project(BaseModel):
    """The construction project as the enterprise declared it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    project_type: str = Field(description="catalogue project type, e.g. industrial, residential, public")
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


@contract("bureau.case-submitted", version=1, consumers=REVIEWERS | {COORDINATION})
class CaseSubmitted(Event):
    """An enterprise's project was accepted for the agency service."""

    case_id: str = shared("case number")
    project: Project = shared("the project")
    applicant_name: str = shared("enterprise name")
    applicant_credit_code: str = shared("unified social credit code (统一社会信用代码)")
    contact_person: str = shared("applicant's contact person", sharing=Sharing.CONDITIONAL, legal_basis=CONTACT_BASIS)
    contact_phone: str = shared("applicant's contact phone", sharing=Sharing.CONDITIONAL, legal_basis=CONTACT_BASIS)
    agent: str = shared("the bureau's agent (代办员) in charge", sharing=Sharing.NOT_SHARED)
    submitted_at: datetime = shared("when the case was accepted")


@contract("bureau.opinion-requested", version=1, consumers=REVIEWERS, recipient="department")
class OpinionRequested(Event):
    """The bureau asks one department for its opinion on one approval item of a case."""

    request_id: str = shared("request id, unique per item and round")
    case_id: str = shared("case number")
    department: str = shared("the department asked")
    item_code: str = shared("approval item code from the service catalogue")
    item_name: str = shared("approval item name")
    stage: int = shared("approval stage, 1 to 4", ge=1, le=4)
    project: Project = shared("the project")
    requested_at: datetime = shared("when the request was made")
    due_at: datetime = shared("deadline for the opinion")


@contract("bureau.opinion-issued", version=1, consumers={BUREAU}, publishers=REVIEWERS, subject="case_id")
class OpinionIssued(Event):
    """A department's opinion on an approval item. The department is known from where it entered."""

    request_id: str = shared("the request answered")
    case_id: str = shared("case number")
    item_code: str = shared("approval item code")
    decision: Decision = shared("the opinion")
    conditions: list[str] = shared("conditions attached to an approval", default_factory=list)
    reasons: list[str] = shared("reasons for a rejection or a supplement request", default_factory=list)
    officer: str = shared("the officer who decided", sharing=Sharing.NOT_SHARED)
    decided_at: datetime = shared("when the opinion was given")


@contract("bureau.stage-completed", version=1, consumers=REVIEWERS | {COORDINATION})
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
    completed_at: datetime = shared("when the case ended")
