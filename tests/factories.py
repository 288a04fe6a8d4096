"""Sample events and records for tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

from contracts.bureau import (
    CaseSubmitted,
    ConflictRaised,
    Decision,
    OpinionIssued,
    OpinionRequested,
    Project,
    Refusal,
)
from contracts.market import BusinessRegistration
from services.bureau.samples import applications

T0 = datetime(2026, 9, 21, 9, 0, tzinfo=UTC)


def project(**changes: object) -> Project:
    base = applications(1, seed=7)[0].project
    return base.model_copy(update=changes)


def case_submitted(case_id: str = "G-TEST-1") -> CaseSubmitted:
    a = applications(1, seed=7)[0]
    return CaseSubmitted(
        case_id=case_id, project=a.project, applicant_name=a.applicant_name,
        applicant_credit_code=a.applicant_credit_code, contact_person=a.contact_person,
        contact_phone=a.contact_phone, agent="王芳", documents=a.documents, promised_documents=[],
        promised_by=None, submitted_at=T0,
    )


def opinion_requested(case_id: str = "G-TEST-1", department: str = "planning", **changes: object) -> OpinionRequested:
    fields: dict[str, object] = dict(
        request_id=f"{case_id}/NRP-101/1", case_id=case_id, department=department, item_code="NRP-101",
        item_name="建设用地规划许可证核发", stage=1, project=project(), documents=["用地预审申请表"],
        missing_documents=[], requested_at=T0, committed_days=8, due_at=T0,
    )
    fields.update(changes)
    return OpinionRequested.model_validate(fields)


def opinion_issued(case_id: str = "G-TEST-1", request_id: str | None = None) -> OpinionIssued:
    return OpinionIssued(
        request_id=request_id or f"{case_id}/NRP-101/1", case_id=case_id, item_code="NRP-101",
        decision=Decision.APPROVED, officer="规划科 赵敏", decided_at=T0,
    )


def conflict_raised(*refusals: Refusal, approving: tuple[str, ...] = ("planning",)) -> ConflictRaised:
    return ConflictRaised(
        conflict_id="G-TEST-1/1", case_id="G-TEST-1", stage=1, project=project(), approving=list(approving),
        refusals=list(refusals), raised_at=T0,
    )


def business_registration(case_id: str = "G-TEST-1", **changes: object) -> BusinessRegistration:
    """Market regulation's record of an applicant (its conditional and not-shared fields filled)."""
    values: dict[str, object] = dict(
        case_id=case_id, credit_code="91320102MA1W8Q5K2T", name="示例有限公司", status="in_business",
        registered_capital_10k_cny=500.0, established_on=date(2020, 1, 2), business_scope="制造",
        legal_representative="张三", representative_id_number="320102199001011234", looked_up_at=T0,
    )
    return BusinessRegistration.model_validate(values | changes)
