"""A desk's work, as a model: a task and the transitions it may go through. Pure: no I/O.

A task is opened by an event (an opinion request, a conflict to decide, an escalation to note, a sharing request to
answer as the provider, an approval on commitment to verify, an escalated refusal to share to decide). It is decided
by the department's rules when its pace says so, or by an officer; it waits while the case is suspended, while the
enterprise supplements, or while the data its review asked another department for is decided; and a rule that fails
parks it with the error, for an officer to see and decide, never to be retried in a loop."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class TaskKind(StrEnum):
    OPINION = "opinion"  # an approval item to give an opinion on
    CONFLICT = "conflict"  # departments disagree: the coordination office decides
    ESCALATION = "escalation"  # a deadline passed: noted for the joint meeting, nothing to decide here
    SHARING = "sharing"  # another department asks for data this one provides: approve or refuse
    VERIFICATION = "verification"  # an approval given on commitment (告知承诺制) to verify
    REFUSAL = "refusal"  # a refusal to share that its consumer escalated: the coordination office proceeds or upholds


class TaskStatus(StrEnum):
    OPEN = "open"
    ON_HOLD = "on_hold"  # the case is suspended
    AWAITING_SUPPLEMENT = "awaiting_supplement"  # the enterprise was asked for more (补正)
    AWAITING_DATA = "awaiting_data"  # the review asked another department for data: its answer is awaited
    DECIDED = "decided"
    NOTED = "noted"
    PARKED = "parked"  # the rules failed on it: an officer decides


class TaskNotOpen(KeyError):
    """No task with this id that may be decided now."""


OFFICERS_DECIDE = frozenset({TaskStatus.OPEN, TaskStatus.ON_HOLD, TaskStatus.PARKED, TaskStatus.AWAITING_DATA})


@dataclass(frozen=True)
class Task:
    task_id: str
    kind: TaskKind
    case_id: str
    item_code: str
    payload: dict[str, Any]  # the event that brought the task, as received
    status: TaskStatus
    received_at: datetime
    decide_at: datetime  # when the rules will have an answer (the department's pace)
    round: int = 1
    due_at: datetime | None = None
    decided_at: datetime | None = None
    decision: str | None = None
    decided_by: str | None = None
    error: str | None = None  # why the rules could not decide it (parked)
    agreement_id: str | None = None  # the data the review asked for, as a sharing request at the exchange
    data: str | None = None  # what came of it (a DataOutcome)
    escalated: bool = False  # its refusal was taken to the coordination office

    @classmethod
    def opened(cls, task_id: str, kind: TaskKind, case_id: str, item_code: str, payload: dict[str, Any],
               now: datetime, decide_at: datetime, due_at: datetime | None, suspended: bool) -> Task:
        status = TaskStatus.ON_HOLD if suspended else TaskStatus.OPEN
        return cls(task_id, kind, case_id, item_code, payload, status, now, decide_at, due_at=due_at)

    @classmethod
    def noted(cls, task_id: str, case_id: str, subject: str, payload: dict[str, Any], now: datetime) -> Task:
        return cls(task_id, TaskKind.ESCALATION, case_id, subject, payload, TaskStatus.NOTED, now, now)

    def due_for_rules(self, now: datetime) -> bool:
        return self.status is TaskStatus.OPEN and self.decide_at <= now

    def held(self) -> Task:
        """The case is suspended: an open task waits."""
        return replace(self, status=TaskStatus.ON_HOLD) if self.status is TaskStatus.OPEN else self

    def resumed(self, now: datetime) -> Task:
        """The case goes on: a waiting task is open again, decided no earlier than now."""
        if self.status is not TaskStatus.ON_HOLD:
            return self
        return replace(self, status=TaskStatus.OPEN, decide_at=max(self.decide_at, now))

    def decided(self, decision: str, by: str, now: datetime, awaiting_supplement: bool = False) -> Task:
        if self.status not in OFFICERS_DECIDE:
            raise TaskNotOpen(self.task_id)
        status = TaskStatus.AWAITING_SUPPLEMENT if awaiting_supplement else TaskStatus.DECIDED
        return replace(self, status=status, decision=decision, decided_by=by, decided_at=now, error=None)

    def supplemented(self, due_at: datetime, decide_at: datetime) -> Task:
        """The enterprise answered: a second round, decided at the department's (shorter) pace."""
        if self.status is not TaskStatus.AWAITING_SUPPLEMENT:
            return self
        return replace(self, status=TaskStatus.OPEN, round=self.round + 1, due_at=due_at, decide_at=decide_at,
                       decision=None)

    def awaiting_data(self, agreement_id: str) -> Task:
        """The review asked another department for data: it waits for the answer."""
        return replace(self, status=TaskStatus.AWAITING_DATA, agreement_id=agreement_id)

    def escalation(self) -> Task:
        """The refusal of the data was taken to the coordination office: it waits for the office."""
        return replace(self, escalated=True)

    def data_answered(self, outcome: str, decide_at: datetime) -> Task:
        """The data came, or was withheld: the review goes on (on hold if the case was suspended meanwhile)."""
        if self.status is not TaskStatus.AWAITING_DATA:
            return self
        return replace(self, status=TaskStatus.OPEN, data=outcome, decide_at=decide_at)

    def parked(self, error: str) -> Task:
        return replace(self, status=TaskStatus.PARKED, error=error[:2000])
