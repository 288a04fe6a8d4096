"""Contracts owned by the coordination office of the joint meeting (联席会议办公室)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from contracts.base import Event, contract, shared
from contracts.departments import BUREAU, REVIEWERS


class Resolution(StrEnum):
    PROCEED_WITH_CONDITIONS = "proceed_with_conditions"  # the refusing departments' concerns become conditions
    UPHOLD_REFUSAL = "uphold_refusal"  # the case is refused; the enterprise may resubmit


@contract("coordination.conflict-resolved", version=1, consumers={BUREAU} | REVIEWERS)
class ConflictResolved(Event):
    """The joint meeting decided a conflict between departments' opinions; the held stage goes on."""

    conflict_id: str = shared("the conflict")
    case_id: str = shared("case number")
    resolution: Resolution = shared("the decision")
    conditions: list[str] = shared("conditions the project must meet", default_factory=list)
    reasons: list[str] = shared("why")
    decided_by: str = shared("who decided: the rules of the joint meeting or an officer")
    decided_at: datetime = shared("when")
