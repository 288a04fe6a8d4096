"""What a department's rules are made of: its pace, the opinion its rules give, what it knows of a case, and the
rules of a reviewing department or of the coordination office. Each department fills these in its own module."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts.bureau import CaseSubmitted, ConflictRaised, Decision, OpinionRequested, RefusalGround
from contracts.coordination import Resolution
from contracts.market import BusinessRegistration


@dataclass(frozen=True)
class Pace:
    """How long a department takes: a log-normal number of working days around its median, and how often
    a first review asks for a supplement. Drawn from the task id, so a run can be repeated."""

    median_days: float
    spread: float = 0.5
    supplement_rate: float = 0.0

    def _uniform(self, key: str, salt: str) -> float:
        digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
        return (int.from_bytes(digest[:8], "big") + 0.5) / 2**64

    def days(self, key: str) -> float:
        u1, u2 = self._uniform(key, "a"), self._uniform(key, "b")
        normal = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
        return self.median_days * math.exp(self.spread * normal)

    def asks_supplement(self, key: str) -> bool:
        return self._uniform(key, "supplement") < self.supplement_rate


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


@dataclass(frozen=True)
class Reviewer:
    """A reviewing department's rules: who signs, its pace, its decisions, what it asks to be supplemented."""

    code: str
    officer: str
    pace: Pace
    decide: Callable[[OpinionRequested, CaseFile], Opinion]
    supplement_reason: Callable[[OpinionRequested], str]
    registration: Callable[[CaseSubmitted, datetime], BusinessRegistration] | None = None


@dataclass(frozen=True)
class Arbiter:
    """The coordination office's rules for conflicts between departments' opinions."""

    officer: str
    pace: Pace
    resolve: Callable[[ConflictRaised], tuple[Resolution, list[str], list[str]]]
