"""What a department's rules are made of: its pace, the opinion its rules give, what it knows of a case, the data
a review needs from another department, and the rules of a reviewing department or of the coordination office.
Each department fills these in its own module."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts.bureau import (
    CaseSubmitted,
    CommitmentApproved,
    ConflictRaised,
    DataOutcome,
    Decision,
    OpinionRequested,
    RefusalGround,
    Verification,
)
from contracts.coordination import Resolution
from contracts.exchange import AgreementRequested
from contracts.market import BusinessRegistration
from contracts.refusal_grounds import SharingGround
from services.kit.agreements import SharingAnswer, SharingRequest


def draw(key: str, salt: str) -> float:
    """A number in (0, 1) drawn from a key: the same key draws the same number, so a run can be repeated."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / 2**64


@dataclass(frozen=True)
class Pace:
    """How long a department takes: a log-normal number of working days around its median, and how often
    a first review asks for a supplement. Drawn from the task id, so a run can be repeated."""

    median_days: float
    spread: float = 0.5
    supplement_rate: float = 0.0

    def days(self, key: str) -> float:
        u1, u2 = draw(key, "a"), draw(key, "b")
        normal = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
        return self.median_days * math.exp(self.spread * normal)

    def asks_supplement(self, key: str) -> bool:
        return draw(key, "supplement") < self.supplement_rate


@dataclass(frozen=True)
class Opinion:
    """A decision with its conditions and reasons; a refusal on a statutory ground names it (``grounds``), and
    binds the coordination office."""

    decision: Decision
    conditions: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    grounds: list[RefusalGround] = field(default_factory=list)


@dataclass(frozen=True)
class CaseFile:
    """What the department knows of a case besides the request: the survey, the business registration."""

    case_id: str
    survey_at: datetime | None
    registration: dict[str, Any] | None
    suspended: bool = False
    data: DataOutcome | None = None  # what came of the data the review waited for (None: it asked for none)


@dataclass(frozen=True)
class DataNeed:
    """Conditional data a review needs from another department before it decides, and whether the review is
    worth a fight for it (an essential need's refusal on a ground that does not bind is escalated)."""

    provider: str
    request: SharingRequest
    essential: bool
    # the fields the review cannot do without (None: all those asked for): a counter-offer holding them is accepted
    must_have: tuple[str, ...] | None = None
    # binding grounds the consumer disputes applying to this need (it escalates them all the same)
    contests: frozenset[SharingGround] = frozenset()


def escalates(need: DataNeed, ground: SharingGround | None) -> bool:
    """Whether a refusal of the data a review needs is taken to the coordination office: only for an essential
    need, and only when the ground is the provider's judgement or one the consumer disputes (a ground binding in
    law is upheld by the office)."""
    return need.essential and (ground is None or not ground.binding or ground in need.contests)


def accepts_offer(need: DataNeed, offered: list[str]) -> bool:
    """Whether a counter-offer is accepted: it holds every field the review cannot do without."""
    return set(need.request.fields if need.must_have is None else need.must_have) <= set(offered)


@dataclass(frozen=True)
class SharingRules:
    """A providing department's rules for the sharing requests it receives, and its pace in answering them."""

    pace: Pace
    decide: Callable[[AgreementRequested], SharingAnswer]


@dataclass(frozen=True)
class Reviewer:
    """A reviewing department's rules: who signs, its pace, its decisions, what it asks to be supplemented."""

    code: str
    officer: str
    pace: Pace
    decide: Callable[[OpinionRequested, CaseFile], Opinion]
    supplement_reason: Callable[[OpinionRequested], str]
    registration: Callable[[CaseSubmitted, datetime], BusinessRegistration] | None = None
    needs: Callable[[OpinionRequested, CaseFile], DataNeed | None] | None = None  # data a review waits for
    sharing: SharingRules | None = None  # as a provider of conditional data
    # approvals on commitment (告知承诺制) it verifies: the outcome and what was found
    verify: Callable[[CommitmentApproved, CaseFile], tuple[Verification, list[str]]] | None = None


@dataclass(frozen=True)
class SharingRefusal:
    """A refusal of a sharing request that its consumer took to the coordination office."""

    agreement_id: str
    consumer: str
    provider: str
    contract_id: str
    fields: list[str]
    purpose: str
    ground: SharingGround | None  # None: the refusal named none
    reasons: str


@dataclass(frozen=True)
class Arbiter:
    """The coordination office's rules for conflicts between departments' opinions, and for refusals to share
    that a consumer escalated: each gives a resolution, its conditions and its reasons."""

    officer: str
    pace: Pace
    resolve: Callable[[ConflictRaised], tuple[Resolution, list[str], list[str]]]
    resolve_refusal: Callable[[SharingRefusal], tuple[Resolution, list[str], list[str]]]
