"""市场监督管理局 (Market Regulation Bureau): shares the applicant's business registration with every case
(unconditionally, its legal representative only under an agreement), and takes lift installation notices."""

from __future__ import annotations

import hashlib
from datetime import date, datetime

from contracts.bureau import CaseSubmitted, Decision, OpinionRequested
from contracts.departments import MARKET
from contracts.market import BusinessRegistration
from services.departments.rules import CaseFile, Opinion, Pace, Reviewer

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


def registration(case: CaseSubmitted, now: datetime) -> BusinessRegistration:
    """The register's entry for the applicant (the local stack's register is derived from the credit code)."""
    digest = hashlib.sha256(case.applicant_credit_code.encode()).digest()
    return BusinessRegistration(
        case_id=case.case_id, credit_code=case.applicant_credit_code, name=case.applicant_name,
        status="revoked" if digest[0] < 5 else "in_business",  # about 2 % have lost their licence
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


REVIEWER = Reviewer(MARKET, "特设科 冯静", Pace(median_days=1.0, spread=0.3, supplement_rate=0.05), decide,
                    supplement_reason, registration=registration)
