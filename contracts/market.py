"""Contracts owned by the Market Regulation Bureau (市场监督管理局)."""

from __future__ import annotations

from datetime import date, datetime

from contracts.base import Event, Sharing, contract, shared
from contracts.departments import BUREAU, COORDINATION, REVIEWERS
from contracts.masks import KeyedHash

REPRESENTATIVE_BASIS = "《市场主体登记管理条例》第三十五条: identity of the legal representative for approval review"


@contract("market.business-registration", version=1, consumers={BUREAU, COORDINATION} | REVIEWERS)
class BusinessRegistration(Event):
    """The applicant's business registration, shared unconditionally when a case is submitted."""

    case_id: str = shared("the case it was looked up for")
    credit_code: str = shared("unified social credit code")
    name: str = shared("registered name")
    status: str = shared("registration status: in_business, revoked, cancelled")
    registered_capital_10k_cny: float = shared("registered capital in 10,000 CNY")
    established_on: date = shared("date of establishment")
    business_scope: str = shared("registered business scope")
    legal_representative: str = shared("legal representative", sharing=Sharing.CONDITIONAL,
                                       legal_basis=REPRESENTATIVE_BASIS, mask=KeyedHash())
    representative_id_number: str = shared("legal representative's ID number", sharing=Sharing.NOT_SHARED)
    looked_up_at: datetime = shared("when")
