"""The bureau's domain: a case carried by an agent through the four stages. Pure: no I/O. Each change returns
the events it causes; the service stores the case and publishes them in one transaction.

The rules, as the agency service (代办) runs them:
- intake needs every key document; non-key ones may follow against a written promise with a date (容缺受理);
- the items a project needs in a stage are requested in parallel, each with its committed time limit;
- a department may ask for a supplement (补正): its clock stands still until the enterprise hands it in;
- a stage ends when every item is decided: all approved, the next stage opens; all refusals, the case is
  refused (the enterprise may resubmit); approvals and refusals together are a conflict the coordination
  office decides, and the stage is held until it does;
- a promise not kept suspends the approval (every department's clock stops) until the documents come, and
  closes the case after SUSPENSION_LIMIT_DAYS working days;
- departments are reminded at half and four fifths of their time, and escalated when late;
- an item the catalogue marks for it, and the applicant commits to in writing, is approved on the commitment
  (告知承诺制) and verified by its department afterwards; a failed verification revokes the approval, asks for the
  item again in the ordinary way, and reopens the case if it had completed;
- a department's review may wait for another department's data: the case shows what it waits for and since
  when."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from base.calendar import WorkingDayCalendar
from base.errors import Explained
from contracts.base import Event
from contracts.bureau import (
    ApprovalRevoked,
    CaseCompleted,
    CaseOutcome,
    CaseResumed,
    CaseSubmitted,
    CaseSuspended,
    CommitmentApproved,
    ConflictRaised,
    DataOutcome,
    DeadlineEscalated,
    DeadlineReminder,
    Decision,
    OpinionRequested,
    Project,
    Refusal,
    RefusalGround,
    SiteSurveyArranged,
    StageCompleted,
    SupplementProvided,
    Verification,
)
from contracts.coordination import Resolution
from contracts.refusal_grounds import SharingGround
from services.bureau import credit_code
from services.bureau.catalogue import ApprovalItem, ServiceCatalogue

REMINDER_SHARES = (0.5, 0.8)
SUSPENSION_LIMIT_DAYS = 20


class CaseApplication(BaseModel):
    """What the enterprise hands in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project: Project
    applicant_name: str = Field(min_length=1)
    applicant_credit_code: str
    contact_person: str = Field(min_length=1)
    contact_phone: str = Field(pattern=r"^\+?[0-9\- ]{7,20}$")
    documents: list[str] = Field(default_factory=list, description="documents handed in")
    promised_documents: list[str] = Field(default_factory=list, description="non-key documents to follow (容缺)")
    promised_by: AwareDatetime | None = Field(None, description="when the promised documents will be handed in, "
                                                                  "with its time zone")
    commitments: list[str] = Field(default_factory=list, description="codes of the items the applicant gives a "
                                   "written commitment for (告知承诺制): approved on it, verified afterwards")

    @field_validator("applicant_credit_code")
    @classmethod
    def _credit_code(cls, value: str) -> str:
        if not credit_code.is_valid(value):
            raise ValueError("not a valid unified social credit code (check digit or characters wrong)")
        return value

    @model_validator(mode="after")
    def _promise(self) -> CaseApplication:
        if bool(self.promised_documents) != (self.promised_by is not None):
            raise ValueError("promised documents and the date promised go together")
        return self


class IntakeRefused(Explained, ValueError):
    """The application cannot be accepted as it is; the message says what is missing."""


def check_intake(project: Project, documents: list[str], promised: list[str], catalogue: ServiceCatalogue) -> None:
    needed = catalogue.documents_for(project)
    handed_in = set(documents)
    key_missing = [d.name for d in needed if d.key and d.name not in handed_in]
    if key_missing:
        raise IntakeRefused(f"key documents missing: {', '.join(key_missing)}")
    promised_key = [d.name for d in needed if d.key and d.name in promised]
    if promised_key:
        raise IntakeRefused(f"key documents cannot be promised for later: {', '.join(promised_key)}")
    unaccounted = [d.name for d in needed if not d.key and d.name not in handed_in
                   and d.name not in promised]
    if unaccounted:
        raise IntakeRefused(f"documents neither handed in nor promised: {', '.join(unaccounted)}")


def check_commitments(commitments: list[str], catalogue: ServiceCatalogue) -> None:
    marked = {i.code for i in catalogue.items if i.commitment is not None}
    wrong = sorted(set(commitments) - marked)
    if wrong:
        raise IntakeRefused(f"not approved on commitment (告知承诺制): {', '.join(wrong)}; the items that are: "
                            f"{', '.join(sorted(marked))}")


class CaseStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    HELD = "held"  # a conflict waits for the coordination office
    SUSPENDED = "suspended"  # a promise was not kept (容缺受理)
    COMPLETED = "completed"
    REJECTED = "rejected"  # the enterprise may resubmit
    CLOSED = "closed"

    @property
    def ended(self) -> bool:
        return self in (CaseStatus.COMPLETED, CaseStatus.REJECTED, CaseStatus.CLOSED)


class RequestStatus(StrEnum):
    PENDING = "pending"
    AWAITING_SUPPLEMENT = "awaiting_supplement"
    DECIDED = "decided"
    WITHDRAWN = "withdrawn"  # superseded by a resubmission


class DocumentState(StrEnum):
    HANDED_IN = "handed_in"
    PROMISED = "promised"  # to follow by the date promised (容缺受理); key documents cannot be
    MISSING = "missing"


class RequiredDocument(BaseModel):
    name: str
    key: bool = Field(description="needed at intake; a document that is not key may be promised for later")
    state: DocumentState
    items: list[str] = Field(description="the approval items that need it")


class RequiredItem(BaseModel):
    code: str
    name_zh: str
    name_en: str
    department: str
    stage: int
    committed_days: int = Field(description="the district's time limit, in working days")


class Requirements(BaseModel):
    """What a project needs: the approval items of each stage, the documents, and whether an application with
    the documents given would pass intake."""

    items: list[RequiredItem]
    documents: list[RequiredDocument]
    joint_site_survey: bool
    case_target_days: int
    intake: str | None = Field(description="why intake would refuse the application (None: it would pass)")


def requirements(project: Project, documents: list[str], promised: list[str], catalogue: ServiceCatalogue,
                 stage: int | None = None) -> Requirements:
    """The items and documents the project needs (of one stage, or all), and what intake would say."""
    items = [i for i in catalogue.items if i.applies(project) and stage in (None, i.stage)]
    needed: dict[str, RequiredDocument] = {}
    for item in items:
        for d in item.documents:
            state = DocumentState.HANDED_IN if d.name in documents else \
                DocumentState.PROMISED if d.name in promised else DocumentState.MISSING
            needed.setdefault(d.name, RequiredDocument(name=d.name, key=d.key, state=state, items=[]))
            needed[d.name].items.append(item.code)
    try:
        check_intake(project, documents, promised, catalogue)
        intake = None
    except IntakeRefused as refused:
        intake = str(refused)
    return Requirements(
        items=[RequiredItem(code=i.code, name_zh=i.name_zh, name_en=i.name_en, department=i.department,
                            stage=i.stage, committed_days=i.committed_days) for i in items],
        documents=list(needed.values()), joint_site_survey=catalogue.survey.applies(project),
        case_target_days=catalogue.case_target_days, intake=intake)


class Hold(StrEnum):
    """Why a case is not moving: what its agent (代办员) has to chase."""

    CONFLICT = "conflict"  # departments disagree: the coordination office has to decide
    SUSPENDED = "suspended"  # a promised document is late: the enterprise has to hand it in
    SUPPLEMENT = "supplement"  # a department asked for more: the enterprise has to supplement
    OVERDUE = "overdue"  # a department let its deadline pass
    DATA = "data"  # a department's review waits for another department's data


@dataclass(frozen=True)
class Stuck:
    hold: Hold
    detail: str
    department: str | None = None
    since: datetime | None = None


class NotOurRequest(ValueError):
    """An opinion that answers no open request of this department."""


class CaseStateError(ValueError):
    """The case is not in a state where this can happen."""


@dataclass
class DataWait:
    """A department's review waiting for data it asked another department for, and what came of it."""

    agreement_id: str
    provider: str
    contract_id: str
    fields: list[str]
    since: datetime
    until: datetime | None = None
    outcome: DataOutcome | None = None
    ground: SharingGround | None = None
    escalated: bool = False


@dataclass(frozen=True)
class Reopening:
    """A completed case opened again: a verification failed after it had completed."""

    completed_at: datetime
    reopened_at: datetime


@dataclass(frozen=True)
class Moment:
    """A step in a case's timeline."""

    at: datetime
    step: str
    department: str | None = None
    detail: str = ""


@dataclass
class OpinionRequest:
    request_id: str
    stage: int
    department: str
    item_code: str
    item_name: str
    committed_days: int
    requested_at: datetime
    allowed_days: float  # working time from the request to its deadline
    due_at: datetime
    status: RequestStatus = RequestStatus.PENDING
    decision: Decision | None = None
    conditions: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    grounds: list[RefusalGround] = field(default_factory=list)  # statutory grounds of a refusal
    decided_at: datetime | None = None
    supplements: int = 0
    paused_since: datetime | None = None
    paused_days: float = 0.0  # working days the clock stood still (supplements, suspension)
    reminded: list[float] = field(default_factory=list)
    escalated_at: datetime | None = None
    overridden: bool = False  # a refusal the coordination office overruled
    on_commitment: bool = False  # approved on the applicant's commitment (告知承诺制), verified afterwards
    verify_by: datetime | None = None
    verified_at: datetime | None = None
    verification: Verification | None = None
    findings: list[str] = field(default_factory=list)
    revoked_at: datetime | None = None  # its verification failed: the approval was revoked
    data_waits: list[DataWait] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.status in (RequestStatus.PENDING, RequestStatus.AWAITING_SUPPLEMENT)

    def active_days(self, now: datetime, calendar: WorkingDayCalendar) -> float:
        """Working days the department has had the request, its clock's pauses left out."""
        end = self.decided_at or now
        paused = self.paused_days + (calendar.working_days_between(self.paused_since, end) if self.paused_since else 0)
        return max(calendar.working_days_between(self.requested_at, end) - paused, 0.0)

    def pause(self, now: datetime) -> None:
        if self.paused_since is None:
            self.paused_since = now

    def resume(self, now: datetime, calendar: WorkingDayCalendar) -> None:
        if self.paused_since is not None:
            self.paused_days += calendar.working_days_between(self.paused_since, now)
            self.paused_since = None
            self.due_at = calendar.add_working_time(self.requested_at, self.allowed_days + self.paused_days)


@dataclass
class Conflict:
    conflict_id: str
    stage: int
    raised_at: datetime
    resolved_at: datetime | None = None
    resolution: Resolution | None = None
    conditions: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


@dataclass
class Case:
    case_id: str
    application: CaseApplication
    agent: str
    submitted_at: datetime
    catalogue_version: str
    status: CaseStatus = CaseStatus.IN_PROGRESS
    stage: int = 0
    completed_at: datetime | None = None
    reasons: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    promised_documents: list[str] = field(default_factory=list)
    promised_by: datetime | None = None
    suspended_at: datetime | None = None
    survey_at: datetime | None = None
    resubmissions: int = 0
    stage_started: dict[int, datetime] = field(default_factory=dict)
    stage_completed: dict[int, datetime] = field(default_factory=dict)
    requests: list[OpinionRequest] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    reopened: list[Reopening] = field(default_factory=list)  # a revoked approval reopened the completed case

    # ---- intake -------------------------------------------------------------------------------------

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
        check_intake(application.project, application.documents, application.promised_documents, catalogue)
        check_commitments(application.commitments, catalogue)
        a = application
        case = cls(case_id or new_case_id(now), a, agent, now, catalogue.version, documents=list(a.documents),
                   promised_documents=list(a.promised_documents), promised_by=a.promised_by)
        events: list[Event] = [CaseSubmitted(
            case_id=case.case_id, project=a.project, applicant_name=a.applicant_name,
            applicant_credit_code=a.applicant_credit_code, contact_person=a.contact_person,
            contact_phone=a.contact_phone, agent=agent, documents=case.documents,
            promised_documents=case.promised_documents, promised_by=case.promised_by, submitted_at=now,
        )]
        survey = catalogue.survey
        if survey.applies(a.project):
            asked = {i.department for i in catalogue.items_for(survey.stage, a.project)}
            departments = sorted(asked & set(survey.departments))
            case.survey_at = calendar.add_working_days(now, survey.days_after_intake)
            events.append(SiteSurveyArranged(
                survey_id=f"{case.case_id}/survey", case_id=case.case_id, departments=departments,
                location=a.project.location, survey_at=case.survey_at,
            ))
        events += case._next_stage(now, catalogue, calendar)
        return case, events

    # ---- stages -------------------------------------------------------------------------------------

    def _on_commitment(self, item: ApprovalItem) -> bool:
        """Whether the item is approved on the applicant's commitment: marked for it, committed to, and no
        approval of it on commitment revoked before in this case."""
        return item.commitment is not None and item.code in self.application.commitments \
            and not any(r.item_code == item.code and r.revoked_at for r in self.requests)

    def _request(self, item: ApprovalItem, now: datetime, catalogue: ServiceCatalogue,
                 calendar: WorkingDayCalendar) -> tuple[OpinionRequest, Event]:
        due_at = calendar.add_working_days(now, item.committed_days)
        request = OpinionRequest(
            request_id=f"{self.case_id}/{item.code}/{uuid.uuid4().hex[:8]}", stage=item.stage,
            department=item.department, item_code=item.code, item_name=item.name_zh,
            committed_days=item.committed_days, requested_at=now,
            allowed_days=calendar.working_days_between(now, due_at), due_at=due_at,
        )
        if item.commitment is not None and self._on_commitment(item):
            request.on_commitment, request.status, request.decision = True, RequestStatus.DECIDED, Decision.APPROVED
            request.decided_at = now
            request.conditions = [f"approved on commitment (告知承诺制): {item.commitment.undertaking}"]
            request.verify_by = calendar.add_working_days(now, item.commitment.verify_within_days)
            return request, CommitmentApproved(
                request_id=request.request_id, case_id=self.case_id, department=item.department,
                item_code=item.code, item_name=item.name_zh, stage=item.stage, project=self.application.project,
                documents=self.documents, commitment=item.commitment.undertaking, approved_at=now,
                verify_by=request.verify_by)
        if self.status is CaseStatus.SUSPENDED:
            request.pause(now)
        missing = [d.name for d in item.documents if d.name not in self.documents]
        return request, OpinionRequested(
            request_id=request.request_id, case_id=self.case_id, department=item.department, item_code=item.code,
            item_name=item.name_zh, stage=item.stage, project=self.application.project, documents=self.documents,
            missing_documents=missing, requested_at=now, committed_days=item.committed_days, due_at=due_at,
        )

    def _next_stage(self, now: datetime, catalogue: ServiceCatalogue, calendar: WorkingDayCalendar) -> list[Event]:
        """Open the next stage that has items for this project, or complete the case."""
        for stage in range(self.stage + 1, 5):
            items = catalogue.items_for(stage, self.application.project)
            if not items:
                continue
            self.stage = stage
            self.stage_started[stage] = now
            events: list[Event] = []
            for item in items:
                request, event = self._request(item, now, catalogue, calendar)
                self.requests.append(request)
                events.append(event)
            if not any(r.open for r in self.current()):  # every item approved on commitment
                events += self._consolidate(now, catalogue, calendar)
            return events
        if any(r.open for r in self.requests):
            return []  # an item asked for again after a revoked approval: the case ends once it is decided
        return self._end(CaseStatus.COMPLETED, now, [])

    def _end(self, status: CaseStatus, now: datetime, reasons: list[str]) -> list[Event]:
        self.status = status
        self.completed_at = now
        self.reasons = reasons
        return [CaseCompleted(case_id=self.case_id, outcome=CaseOutcome(status.value), reasons=reasons,
                              completed_at=now)]

    def current(self) -> list[OpinionRequest]:
        return [r for r in self.requests if r.stage == self.stage and r.status is not RequestStatus.WITHDRAWN]

    def stuck(self, now: datetime) -> list[Stuck]:
        """What holds the case up now (nothing for a case that moves, or has ended)."""
        if self.status.ended:
            return []
        holds = [Stuck(Hold.CONFLICT, f"stage {c.stage}: the coordination office has not decided", None,
                       c.raised_at) for c in self.conflicts if c.resolution is None]
        if self.status is CaseStatus.SUSPENDED:
            holds.append(Stuck(Hold.SUSPENDED, "promised documents not handed in: " + ", ".join(
                self.promised_documents), None, self.suspended_at))
        for r in self.requests:  # the current stage's, and an earlier item asked for again after a revocation
            if not r.open:
                continue
            holds += [Stuck(Hold.DATA, f"{r.item_code}: waits for {', '.join(w.fields)} of {w.contract_id} from "
                                       f"{w.provider} ({w.agreement_id})", r.department, w.since)
                      for w in r.data_waits if w.until is None]
            if r.status is RequestStatus.AWAITING_SUPPLEMENT:
                holds.append(Stuck(Hold.SUPPLEMENT, f"{r.item_code}: " + "; ".join(r.reasons), r.department,
                                   r.paused_since))
            elif r.status is RequestStatus.PENDING and r.paused_since is None and now >= r.due_at:
                holds.append(Stuck(Hold.OVERDUE, f"{r.item_code} {r.item_name}: due {r.due_at.isoformat()}",
                                   r.department, r.due_at))
        return holds

    def _consolidate(self, now: datetime, catalogue: ServiceCatalogue, calendar: WorkingDayCalendar) -> list[Event]:
        """When every item of the stage is decided: next stage, refusal, or a conflict to resolve."""
        requests = self.current()
        if any(r.open for r in requests):
            return []
        refused = [r for r in requests if r.decision is Decision.REJECTED and not r.overridden]
        approving = [r for r in requests if r.decision is not None and r.decision.approves]
        if refused and approving:
            self.status = CaseStatus.HELD
            conflict = Conflict(f"{self.case_id}/stage-{self.stage}/{uuid.uuid4().hex[:6]}", self.stage, now)
            self.conflicts.append(conflict)
            return [ConflictRaised(
                conflict_id=conflict.conflict_id, case_id=self.case_id, stage=self.stage,
                project=self.application.project, approving=sorted({r.department for r in approving}),
                refusals=[Refusal(department=r.department, item_code=r.item_code, reasons=r.reasons,
                                  grounds=r.grounds) for r in refused],
                raised_at=now,
            )]
        if refused:
            return self._end(CaseStatus.REJECTED, now, [reason for r in refused for reason in r.reasons])
        self.stage_completed[self.stage] = now
        events: list[Event] = [StageCompleted(case_id=self.case_id, stage=self.stage, completed_at=now)]
        return events + self._next_stage(now, catalogue, calendar)

    # ---- what departments, the enterprise and the coordination office do ---------------------------

    def record_opinion(
        self,
        request_id: str,
        department: str,
        decision: Decision,
        conditions: list[str],
        reasons: list[str],
        grounds: list[RefusalGround],
        now: datetime,
        catalogue: ServiceCatalogue,
        calendar: WorkingDayCalendar,
    ) -> list[Event]:
        request = next((r for r in self.requests if r.request_id == request_id), None)
        if request is None or request.department != department:
            raise NotOurRequest(f"{department} answered {request_id}, which is not its request on {self.case_id}")
        if request.status is not RequestStatus.PENDING or self.status.ended:
            return []  # already decided, superseded, or waiting for the enterprise
        request.decision, request.conditions, request.reasons, request.grounds = decision, conditions, reasons, grounds
        if decision is Decision.SUPPLEMENT_REQUESTED:
            request.status = RequestStatus.AWAITING_SUPPLEMENT
            request.supplements += 1
            request.pause(now)
            return []
        request.status = RequestStatus.DECIDED
        request.decided_at = now
        if request.paused_since is not None:  # decided while suspended: the pause ends with the decision
            request.resume(now, calendar)
        if self.status is not CaseStatus.IN_PROGRESS:
            return []
        if request.stage != self.stage or self.stage in self.stage_completed:
            return self._settle_asked_again(request, now)
        return self._consolidate(now, catalogue, calendar)

    def _settle_asked_again(self, request: OpinionRequest, now: datetime) -> list[Event]:
        """An item of a stage gone by, asked for again after its approval on commitment was revoked, is decided:
        refused, the case is refused; approved, the case completes if every stage is done and nothing else is
        open."""
        if request.decision is Decision.REJECTED:
            return self._end(CaseStatus.REJECTED, now, request.reasons)
        if self.stage in self.stage_completed and not any(r.open for r in self.requests):
            return self._end(CaseStatus.COMPLETED, now, [])
        return []

    # ---- approval on commitment (告知承诺制) --------------------------------------------------------------

    def verify_commitment(self, request_id: str, department: str, outcome: Verification, findings: list[str],
                          now: datetime, catalogue: ServiceCatalogue, calendar: WorkingDayCalendar) -> list[Event]:
        """The department verified an approval given on commitment. Failed: the approval is revoked, the item is
        asked for again in the ordinary way, and a completed case is open again."""
        request = next((r for r in self.requests if r.request_id == request_id), None)
        if request is None or request.department != department or not request.on_commitment:
            raise NotOurRequest(f"{department} verified {request_id}, which is not its approval on commitment "
                                f"on {self.case_id}")
        if request.verification is not None:
            return []  # verified already
        request.verified_at, request.verification, request.findings = now, outcome, findings
        if outcome is Verification.PASSED:
            return []
        request.revoked_at, request.status = now, RequestStatus.WITHDRAWN
        if self.status in (CaseStatus.REJECTED, CaseStatus.CLOSED):
            return [ApprovalRevoked(request_id=request_id, case_id=self.case_id, department=department,
                                    item_code=request.item_code, findings=findings, reopened_request_id="",
                                    case_reopened=False, revoked_at=now)]
        reopened = self.status is CaseStatus.COMPLETED
        if reopened:
            self.reopened.append(Reopening(self.completed_at or now, now))
            self.status, self.completed_at, self.reasons = CaseStatus.IN_PROGRESS, None, []
        again, asked = self._request(catalogue.item(request.item_code), now, catalogue, calendar)
        self.requests.append(again)
        return [ApprovalRevoked(request_id=request_id, case_id=self.case_id, department=department,
                                item_code=request.item_code, findings=findings, reopened_request_id=again.request_id,
                                case_reopened=reopened, revoked_at=now), asked]

    # ---- data a department's review waits for --------------------------------------------------------

    def data_awaited(self, request_id: str, department: str, wait: DataWait) -> None:
        request = next((r for r in self.requests if r.request_id == request_id), None)
        if request is None or request.department != department:
            raise NotOurRequest(f"{department} waits for data on {request_id}, which is not its request on "
                                f"{self.case_id}")
        if all(w.agreement_id != wait.agreement_id for w in request.data_waits):
            request.data_waits.append(wait)

    def data_wait_ended(self, request_id: str, department: str, agreement_id: str, outcome: DataOutcome,
                        ground: SharingGround | None, escalated: bool, now: datetime) -> None:
        request = next((r for r in self.requests if r.request_id == request_id), None)
        if request is None or request.department != department:
            raise NotOurRequest(f"{department} ended a wait on {request_id}, which is not its request on "
                                f"{self.case_id}")
        for wait in request.data_waits:
            if wait.agreement_id == agreement_id and wait.until is None:
                wait.until, wait.outcome, wait.ground, wait.escalated = now, outcome, ground, escalated

    def timeline(self) -> list[Moment]:
        """What happened to the case, in order: every step its events told."""
        moments = [Moment(self.submitted_at, "submitted", None, self.application.project.name)]
        moments += [Moment(at, "stage started", None, f"stage {stage}") for stage, at in self.stage_started.items()]
        moments += [Moment(at, "stage completed", None, f"stage {stage}")
                    for stage, at in self.stage_completed.items()]
        for r in self.requests:
            item = f"{r.item_code} {r.item_name}"
            if r.on_commitment:
                moments.append(Moment(r.requested_at, "approved on commitment", r.department,
                                      f"{item}: verify by {r.verify_by.isoformat() if r.verify_by else ''}"))
            else:
                moments.append(Moment(r.requested_at, "requested", r.department, item))
            for w in r.data_waits:
                moments.append(Moment(w.since, "waits for data", r.department,
                                      f"{item}: {', '.join(w.fields)} of {w.contract_id} from {w.provider}"))
                if w.until is not None and w.outcome is not None:
                    why = f" ({w.ground.value})" if w.ground else ""
                    moments.append(Moment(w.until, f"data {w.outcome.value}", r.department,
                                          f"{item}: by {w.provider}{why}" + (", escalated" if w.escalated else "")))
            if r.decided_at is not None and not r.on_commitment and r.decision is not None:
                moments.append(Moment(r.decided_at, r.decision.value, r.department, item))
            if r.verified_at is not None and r.verification is not None:
                moments.append(Moment(r.verified_at, f"verification {r.verification.value}", r.department,
                                      f"{item}: {'; '.join(r.findings)}" if r.findings else item))
            if r.revoked_at is not None:
                moments.append(Moment(r.revoked_at, "approval revoked", r.department, item))
        for c in self.conflicts:
            moments.append(Moment(c.raised_at, "conflict raised", None, f"stage {c.stage}"))
            if c.resolved_at is not None and c.resolution is not None:
                moments.append(Moment(c.resolved_at, c.resolution.value, "coordination", f"stage {c.stage}"))
        for again in self.reopened:
            moments += [Moment(again.completed_at, CaseStatus.COMPLETED.value),
                        Moment(again.reopened_at, "reopened", None, "an approval on commitment was revoked")]
        if self.suspended_at is not None:
            moments.append(Moment(self.suspended_at, "suspended", None, ", ".join(self.promised_documents)))
        if self.completed_at is not None:
            moments.append(Moment(self.completed_at, self.status.value, None, "; ".join(self.reasons)))
        return sorted(moments, key=lambda m: m.at)

    def provide_supplement(self, documents: list[str], now: datetime, calendar: WorkingDayCalendar) -> list[Event]:
        """The enterprise answers every supplement request open on the case: the clocks run again."""
        waiting = [r for r in self.requests if r.status is RequestStatus.AWAITING_SUPPLEMENT]
        if not waiting or self.status.ended:
            raise CaseStateError(f"{self.case_id} has no supplement request open")
        self.documents = sorted(set(self.documents) | set(documents))
        self.promised_documents = [d for d in self.promised_documents if d not in self.documents]
        events: list[Event] = []
        for request in waiting:
            request.status = RequestStatus.PENDING
            request.decision = None
            if self.status is not CaseStatus.SUSPENDED:
                request.resume(now, calendar)
            events.append(SupplementProvided(
                request_id=request.request_id, case_id=self.case_id, department=request.department,
                documents=self.documents, provided_at=now, due_at=request.due_at,
            ))
        return events

    def deliver_promised(self, documents: list[str], now: datetime, catalogue: ServiceCatalogue,
                         calendar: WorkingDayCalendar) -> list[Event]:
        """Documents promised at intake arrive; once all are in, a suspended approval resumes (and the stage
        moves on if every opinion came in meanwhile)."""
        self.documents = sorted(set(self.documents) | set(documents))
        self.promised_documents = [d for d in self.promised_documents if d not in self.documents]
        if self.promised_documents:
            return []
        self.promised_by = None
        if self.status is not CaseStatus.SUSPENDED:
            return []
        self.status = CaseStatus.IN_PROGRESS
        self.suspended_at = None
        for request in self.requests:
            if request.status is RequestStatus.PENDING:
                request.resume(now, calendar)
        return [CaseResumed(case_id=self.case_id, resumed_at=now), *self._consolidate(now, catalogue, calendar)]

    def resolve_conflict(self, conflict_id: str, resolution: Resolution, conditions: list[str], reasons: list[str],
                         now: datetime, catalogue: ServiceCatalogue, calendar: WorkingDayCalendar) -> list[Event]:
        conflict = next((c for c in self.conflicts if c.conflict_id == conflict_id), None)
        if conflict is None or conflict.resolved_at is not None or self.status is not CaseStatus.HELD:
            return []
        conflict.resolved_at, conflict.resolution = now, resolution
        conflict.conditions, conflict.reasons = conditions, reasons
        if resolution is Resolution.UPHOLD_REFUSAL:
            return self._end(CaseStatus.REJECTED, now, reasons)
        for request in self.current():
            if request.decision is Decision.REJECTED:
                request.overridden = True
                request.conditions = conditions
        self.status = CaseStatus.IN_PROGRESS
        return self._consolidate(now, catalogue, calendar)

    def resubmit(self, project: Project, now: datetime, catalogue: ServiceCatalogue,
                 calendar: WorkingDayCalendar) -> list[Event]:
        """After a refusal, the enterprise revises the project: the refused items of the stage are asked again."""
        if self.status is not CaseStatus.REJECTED:
            raise CaseStateError(f"{self.case_id} is {self.status.value}; only a refused case may be resubmitted")
        self.application = self.application.model_copy(update={"project": project})
        self.status, self.completed_at, self.reasons = CaseStatus.IN_PROGRESS, None, []
        self.resubmissions += 1
        approved = {r.item_code for r in self.current() if r.decision is not None and r.decision.approves}
        for request in self.current():
            if request.item_code not in approved:
                request.status = RequestStatus.WITHDRAWN
        events: list[Event] = []
        for item in catalogue.items_for(self.stage, project):
            if item.code not in approved:
                request, event = self._request(item, now, catalogue, calendar)
                self.requests.append(request)
                events.append(event)
        return events or self._consolidate(now, catalogue, calendar)

    # ---- time ---------------------------------------------------------------------------------------

    def check_time(self, now: datetime, calendar: WorkingDayCalendar) -> list[Event]:
        """What the clock brings: a promise missed, a suspension run out, reminders and escalations."""
        if self.status.ended:
            return []
        events: list[Event] = []
        if self.status is CaseStatus.SUSPENDED and self.suspended_at is not None \
                and calendar.working_days_between(self.suspended_at, now) >= SUSPENSION_LIMIT_DAYS:
            return self._end(CaseStatus.CLOSED, now, [
                f"promised documents not handed in within {SUSPENSION_LIMIT_DAYS} working days of the suspension: "
                + ", ".join(self.promised_documents)])
        if self.promised_documents and self.promised_by is not None and now >= self.promised_by \
                and self.status is CaseStatus.IN_PROGRESS:  # a held stage is suspended once the conflict is decided
            self.status = CaseStatus.SUSPENDED
            self.suspended_at = now
            for request in self.requests:
                if request.status is RequestStatus.PENDING:
                    request.pause(now)
            events.append(CaseSuspended(case_id=self.case_id, missing_documents=self.promised_documents,
                                        promised_by=self.promised_by, suspended_at=now))
        for request in self.requests:
            if request.status is not RequestStatus.PENDING or request.paused_since is not None:
                continue
            used = request.active_days(now, calendar) / request.allowed_days if request.allowed_days else 1.0
            for share in REMINDER_SHARES:
                if used >= share and share not in request.reminded:
                    request.reminded.append(share)
                    if now >= request.due_at:
                        continue  # past the deadline already: the escalation says more than a reminder
                    events.append(DeadlineReminder(
                        request_id=request.request_id, case_id=self.case_id, department=request.department,
                        item_code=request.item_code, share_used=share, due_at=request.due_at))
            if now >= request.due_at and request.escalated_at is None:
                request.escalated_at = now
                events.append(DeadlineEscalated(
                    request_id=request.request_id, case_id=self.case_id, department=request.department,
                    item_code=request.item_code, due_at=request.due_at,
                    working_days_late=round(calendar.working_days_between(request.due_at, now), 2)))
        return events

    def next_check(self, calendar: WorkingDayCalendar) -> datetime | None:
        """The next instant at which check_time may have something to do (None: nothing pending)."""
        if self.status.ended:
            return None
        moments: list[datetime] = []
        if self.status is CaseStatus.SUSPENDED and self.suspended_at is not None:
            moments.append(calendar.add_working_time(self.suspended_at, SUSPENSION_LIMIT_DAYS))
        elif self.promised_documents and self.promised_by is not None and self.status is CaseStatus.IN_PROGRESS:
            moments.append(self.promised_by)  # a held stage is looked at again once the conflict is decided
        for request in self.requests:
            if request.status is not RequestStatus.PENDING or request.paused_since is not None:
                continue
            for share in REMINDER_SHARES:
                if share not in request.reminded:
                    moments.append(calendar.add_working_time(
                        request.requested_at, share * request.allowed_days + request.paused_days))
            if request.escalated_at is None:
                moments.append(request.due_at)
        return min(moments) if moments else None


def new_case_id(now: datetime) -> str:
    return f"G{now:%Y%m%d}-{uuid.uuid4().hex[:10].upper()}"
