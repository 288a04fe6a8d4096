"""The bureau's contracts as their first versions said them, where a second version replaced them. A registered
version never changes (its schema here is the one registered, to the byte), and a department that has not yet
moved on may still speak it: each first version says how it reads in its successor's terms (``upgraded``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from contracts import bureau
from contracts.base import Event, Sharing, contract, shared
from contracts.bureau import Decision, Project
from contracts.departments import BUREAU, COORDINATION, REVIEWERS


@contract("bureau.opinion-issued", version=1, consumers={BUREAU}, publishers=REVIEWERS)
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

    def upgraded(self) -> bureau.OpinionIssued:
        """The opinion in the second version's terms: it named no statutory grounds."""
        return bureau.OpinionIssued.model_validate(self.model_dump())


class Refusal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    department: str
    item_code: str
    reasons: list[str]


@contract("bureau.conflict-raised", version=1, consumers={COORDINATION})
class ConflictRaised(Event):
    """Departments' opinions on a stage disagree (one approves what another refuses): the stage is held until
    the coordination office decides."""

    conflict_id: str = shared("the conflict")
    case_id: str = shared("case number")
    stage: int = shared("the stage held", ge=1, le=4)
    project: Project = shared("the project")
    approving: list[str] = shared("departments that approved")
    refusals: list[Refusal] = shared("the refusals and their reasons")
    raised_at: datetime = shared("when")

    def upgraded(self) -> bureau.ConflictRaised:
        """The conflict in the second version's terms: its refusals named no statutory grounds."""
        return bureau.ConflictRaised.model_validate(self.model_dump())
