"""The bureau's domain: a case, its stages and the opinions it asks for. Pure: no I/O. Each change returns
the events it causes; the service stores the case and publishes them in one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.base import Event
from contracts.bureau import (
    CaseCompleted,
    CaseOutcome,
    CaseSubmitted,
    Decision,
    OpinionRequested,
    Project,
    StageCompleted,
)
from services.bureau import credit_code
from services.bureau.catalogue import STAGES, ServiceCatalogue
from services.kit.calendar import WorkingDayCalendar


class CaseApplication(BaseModel):
    """What the enterprise hands in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project: Project
    applicant_name: str = Field(min_length=1)
    applicant_credit_code: str
    contact_person: str = Field(min_length=1)
    contact_phone: str = Field(pattern=r"^\+?[0-9\- ]{7,20}$")

    @field_validator("applicant_credit_code")
    @classmethod
    def _credit_code(cls, value: str) -> str:
        if not credit_code.is_valid(value):
            raise ValueError("not a valid unified social credit code (check digit or characters wrong)")
        return value


class CaseStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CLOSED = "closed"

    @property
    def ended(self) -> bool:
        return self is not CaseStatus.IN_PROGRESS


class NotOurRequest(ValueError):
    """An opinion that answers no open request of this department."""


@dataclass
class OpinionRequest:
    request_id: str
    stage: int
    department: str
    item_code: str
    item_name: str
    requested_at: datetime
    due_at: datetime
    decision: Decision | None = None
    conditions: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    decided_at: datetime | None = None

    @property
    def decided(self) -> bool:
        return self.decision is not None


@dataclass
class Case:
    case_id: str
    application: CaseApplication
    agent: str
    submitted_at: datetime
    status: CaseStatus = CaseStatus.IN_PROGRESS
    stage: int = 0
    completed_at: datetime | None = None
    requests: list[OpinionRequest] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        application: CaseApplication,
        agent: str,
        now: datetime,
        catalogue: ServiceCatalogue,
        calendar: WorkingDayCalendar,
        case_id: str | None = None,
    ) -> tuple[Case, list[Event]]:
        case = cls(case_id or new_case_id(now), application, agent, now)
        a = application
        events: list[Event] = [CaseSubmitted(
            case_id=case.case_id, project=a.project, applicant_name=a.applicant_name,
            applicant_credit_code=a.applicant_credit_code, contact_person=a.contact_person,
            contact_phone=a.contact_phone, agent=agent, submitted_at=now,
        )]
        events += case._next_stage(now, catalogue, calendar)
        return case, events

    def _next_stage(self, now: datetime, catalogue: ServiceCatalogue, calendar: WorkingDayCalendar) -> list[Event]:
        """Open the next stage that has items for this project, or complete the case."""
        for stage in STAGES:
            if stage <= self.stage:
                continue
            items = catalogue.items_for(stage, self.application.project)
            if not items:
                continue
            self.stage = stage
            events: list[Event] = []
            for item in items:
                request = OpinionRequest(
                    request_id=f"{self.case_id}/{item.code}/{uuid.uuid4().hex[:8]}", stage=stage,
                    department=item.department, item_code=item.code, item_name=item.name_zh,
                    requested_at=now, due_at=calendar.add_working_days(now, item.committed_days),
                )
                self.requests.append(request)
                events.append(OpinionRequested(
                    request_id=request.request_id, case_id=self.case_id, department=item.department,
                    item_code=item.code, item_name=item.name_zh, stage=stage, project=self.application.project,
                    requested_at=now, due_at=request.due_at,
                ))
            return events
        return self._end(CaseStatus.COMPLETED, now)

    def _end(self, status: CaseStatus, now: datetime) -> list[Event]:
        self.status = status
        self.completed_at = now
        return [CaseCompleted(case_id=self.case_id, outcome=CaseOutcome(status.value), completed_at=now)]

    def record_opinion(
        self,
        request_id: str,
        department: str,
        decision: Decision,
        conditions: list[str],
        reasons: list[str],
        decided_at: datetime,
        now: datetime,
        catalogue: ServiceCatalogue,
        calendar: WorkingDayCalendar,
    ) -> list[Event]:
        request = next((r for r in self.requests if r.request_id == request_id), None)
        if request is None or request.department != department:
            raise NotOurRequest(f"{department} answered {request_id}, which is not its request on {self.case_id}")
        if request.decided or self.status.ended:
            return []
        request.decision, request.conditions, request.reasons = decision, conditions, reasons
        request.decided_at = decided_at
        if decision is Decision.REJECTED:
            return self._end(CaseStatus.REJECTED, now)
        stage_requests = [r for r in self.requests if r.stage == self.stage]
        if not all(r.decided for r in stage_requests):
            return []
        events: list[Event] = [StageCompleted(case_id=self.case_id, stage=self.stage, completed_at=now)]
        return events + self._next_stage(now, catalogue, calendar)


def new_case_id(now: datetime) -> str:
    return f"G{now:%Y%m%d}-{uuid.uuid4().hex[:10].upper()}"
