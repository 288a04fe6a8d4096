"""市场监督管理局 (Market Regulation Bureau): shares the applicant's business registration with every case
(unconditionally, its legal representative only under an agreement it decides on), and takes lift installation
notices."""

from __future__ import annotations

import hashlib
from datetime import date, datetime

from contracts.bureau import CaseSubmitted, Decision, OpinionRequested
from contracts.departments import DEVREFORM, ENVIRONMENT, HOUSING, MARKET
from contracts.exchange import AgreementRequested
from contracts.market import BusinessRegistration
from contracts.refusal_grounds import SharingGround
from services.departments.rules import CaseFile, Opinion, Pace, Reviewer, SharingRules, draw
from services.kit.agreements import APPROVED, SharingAnswer

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
# Departments whose laws name the legal representative (the person responsible) in their approvals.
REPRESENTATIVE_NAMED_BY = frozenset({ENVIRONMENT, HOUSING, DEVREFORM})
VERTICAL_SYSTEM_RATE = 0.25  # the register's officer wants the provincial bureau's consent first
PROTECTED_RECORD_RATE = 0.15  # the representative's record is under protection: personal information law


def licence_revoked(credit_code: str) -> bool:
    """Whether the local stack's register has the enterprise's licence revoked: about 2 % of credit codes."""
    return hashlib.sha256(credit_code.encode()).digest()[0] < 5


def registration(case: CaseSubmitted, now: datetime) -> BusinessRegistration:
    """The register's entry for the applicant (the local stack's register is derived from the credit code)."""
    digest = hashlib.sha256(case.applicant_credit_code.encode()).digest()
    return BusinessRegistration(
        case_id=case.case_id, credit_code=case.applicant_credit_code, name=case.applicant_name,
        status="revoked" if licence_revoked(case.applicant_credit_code) else "in_business",
        registered_capital_10k_cny=float(1_000 + int.from_bytes(digest[1:3], "big") % 50_000),
        established_on=date(2000 + digest[3] % 25, 1 + digest[4] % 12, 1 + digest[5] % 28),
        business_scope=f"{case.project.project_type} construction and operation",
        legal_representative=SURNAMES[digest[6] % len(SURNAMES)] + "总",
        representative_id_number=f"3301{int.from_bytes(digest[7:12], 'big') % 10**14:014d}",
        looked_up_at=now,
    )


def decide(request: OpinionRequested, file: CaseFile) -> Opinion:
    return Opinion(Decision.APPROVED, conditions=[])


def supplement_reason(request: OpinionRequested) -> str:
    return "the lift installer's licence number is missing from the notice"


def share(request: AgreementRequested) -> SharingAnswer:
    """The legal representative: to a department whose law names the person responsible, unless the record is
    protected; the register's officer often wants the provincial bureau's consent first (a vertical system)."""
    if request.consumer not in REPRESENTATIVE_NAMED_BY:
        return SharingAnswer(SharingGround.NO_LEGAL_BASIS,
                             f"{request.legal_basis} does not give {request.consumer} the legal representative")
    roll = draw(request.agreement_id, "sharing")
    if roll < PROTECTED_RECORD_RATE:
        return SharingAnswer(SharingGround.PERSONAL_INFORMATION,
                             "the representative's record is under personal-information protection")
    if roll < PROTECTED_RECORD_RATE + VERTICAL_SYSTEM_RATE:
        return SharingAnswer(SharingGround.VERTICAL_SYSTEM,
                             "the register is the national enterprise credit system's (国家企业信用信息公示系统): "
                             "the provincial bureau's consent comes first")
    return APPROVED


REVIEWER = Reviewer(MARKET, "特设科 冯静", Pace(median_days=1.0, spread=0.3, supplement_rate=0.05), decide,
                    supplement_reason, registration=registration,
                    sharing=SharingRules(Pace(median_days=2.0, spread=0.6), share))
