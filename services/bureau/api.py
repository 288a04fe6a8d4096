"""The bureau's HTTP API: the front desk's way in for cases, and the applicant's for its own case.

Submitting and listing cases takes the bureau's token (the operator's may read); an applicant receives a case
token at submission that reads that case and hands in its documents, supplements and resubmissions only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import Header, HTTPException, Path, Query, Response
from pydantic import BaseModel, Field

from base.http import Authenticate, Authenticated, Caller, ExchangeApi, authenticate_with, forbidden, responses
from base.pages import next_offset
from contracts.bureau import DataOutcome, Decision, Project, RefusalGround, Verification
from contracts.coordination import Resolution
from contracts.departments import BUREAU
from contracts.refusal_grounds import SharingGround
from services.bureau.model import (
    Case,
    CaseApplication,
    CaseStateError,
    CaseStatus,
    Hold,
    IntakeRefused,
    RequestStatus,
    Requirements,
    requirements,
)
from services.bureau.service import Bureau, UnknownCase


class DataWaitView(BaseModel):
    agreement_id: str
    provider: str
    contract_id: str
    fields: list[str]
    since: datetime
    until: datetime | None
    outcome: DataOutcome | None
    ground: SharingGround | None
    escalated: bool


class ReopeningView(BaseModel):
    completed_at: datetime
    reopened_at: datetime


class MomentView(BaseModel):
    at: datetime
    step: str
    department: str | None
    detail: str


class RequestView(BaseModel):
    request_id: str
    stage: int
    department: str
    item_code: str
    item_name: str
    committed_days: int
    requested_at: datetime
    due_at: datetime
    status: RequestStatus
    decision: Decision | None
    conditions: list[str]
    reasons: list[str]
    grounds: list[RefusalGround] = Field(description="the statutory grounds of a refusal, if it names any")
    decided_at: datetime | None
    supplements: int
    escalated_at: datetime | None
    on_commitment: bool = Field(description="approved on the applicant's commitment (告知承诺制), verified afterwards")
    verify_by: datetime | None
    verified_at: datetime | None
    verification: Verification | None
    findings: list[str]
    revoked_at: datetime | None = Field(description="when a failed verification revoked the approval")
    data_waits: list[DataWaitView] = Field(description="data the department's review waited for, from another "
                                                       "department")


class ConflictView(BaseModel):
    conflict_id: str
    stage: int
    raised_at: datetime
    resolved_at: datetime | None
    resolution: Resolution | None
    conditions: list[str]
    reasons: list[str]


class StuckView(BaseModel):
    hold: Hold
    detail: str
    department: str | None
    since: datetime | None


class CaseView(BaseModel):
    case_id: str
    status: CaseStatus
    stage: int
    agent: str
    project: Project
    submitted_at: datetime
    completed_at: datetime | None
    reasons: list[str]
    promised_documents: list[str]
    promised_by: datetime | None
    survey_at: datetime | None
    resubmissions: int
    awaiting_supplement: list[str] = Field(description="requests waiting for the enterprise (补正)")
    conflicts: list[ConflictView]
    requests: list[RequestView]
    stuck: list[StuckView] = Field(description="what holds the case up now: its agent's list to chase")
    reopened: list[ReopeningView] = Field(description="when a revoked approval on commitment reopened the case "
                                                      "after it had completed")
    timeline: list[MomentView] = Field(description="every step of the case, in order")

    @classmethod
    def of(cls, case: Case, now: datetime) -> CaseView:
        return cls(
            case_id=case.case_id, status=case.status, stage=case.stage, agent=case.agent,
            project=case.application.project, submitted_at=case.submitted_at, completed_at=case.completed_at,
            reasons=case.reasons, promised_documents=case.promised_documents, promised_by=case.promised_by,
            survey_at=case.survey_at, resubmissions=case.resubmissions,
            awaiting_supplement=[r.request_id for r in case.requests if r.status is RequestStatus.AWAITING_SUPPLEMENT],
            # read from the records' attributes (dataclasses.asdict would deep-copy each first)
            conflicts=[ConflictView.model_validate(c, from_attributes=True) for c in case.conflicts],
            requests=[RequestView.model_validate(r, from_attributes=True) for r in case.requests],
            stuck=[StuckView.model_validate(h, from_attributes=True) for h in case.stuck(now)],
            reopened=[ReopeningView.model_validate(r, from_attributes=True) for r in case.reopened],
            timeline=[MomentView.model_validate(m, from_attributes=True) for m in case.timeline()],
        )


class CasePage(BaseModel):
    cases: list[CaseView]
    total: int = Field(description="how many cases match")
    next_offset: int | None = Field(description="the offset of the next page (None: this is the last)")


class ProjectDocuments(BaseModel):
    """A project, and the documents an application would hand in and promise."""

    project: Project
    documents: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=200)
    promised_documents: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=200)


class SubmittedCase(CaseView):
    case_token: str = Field(description="the applicant's token for this case: shown once")


class Documents(BaseModel):
    documents: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=1, max_length=100)


class Resubmission(BaseModel):
    project: Project


CaseId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]


def create_api(bureau: Bureau, identity: Authenticate, max_body_bytes: int) -> ExchangeApi:
    api = ExchangeApi("Concord: Administrative Approval Bureau",
                      "The agency service (代办): cases of engineering construction projects.", max_body_bytes)

    async def authenticate(token: str) -> Caller | None:
        case_id = await bureau.case_of_token(token)
        return Caller("applicant", case_id=case_id) if case_id else await identity(token)

    authenticate_with(api, authenticate)

    def front_desk(caller: Caller) -> None:
        if caller.department != BUREAU:
            raise forbidden(f"{caller} may not do this: it is the bureau's front desk")

    def reader(caller: Caller) -> None:
        if caller.department != BUREAU and not caller.operator:
            raise forbidden(f"{caller} may not list cases")

    def for_case(caller: Caller, case_id: str, changes: bool) -> None:
        """The bureau, the case's own applicant, and (to read) the operator."""
        if caller.department == BUREAU or caller.case_id == case_id or (caller.operator and not changes):
            return
        raise forbidden(f"{caller} may not {'act on' if changes else 'read'} case {case_id}")

    @api.post("/v1/cases", status_code=201, responses={**responses(401, 403, 422), 200: {
        "model": SubmittedCase, "description": "a submission sent again with its Idempotency-Key: the case it opened "
                                               "the first time, with a new token (the first one no longer opens it)"}})
    async def submit(application: CaseApplication, caller: Authenticated, response: Response,
                     idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
                     ) -> SubmittedCase:
        """Open a case. With an ``Idempotency-Key``, sending the same submission again (its answer was lost) opens
        no second case."""
        front_desk(caller)
        try:
            case, token, new = await bureau.submit(application, idempotency_key)
        except IntakeRefused as refused:
            raise HTTPException(422, str(refused)) from refused
        if not new:
            response.status_code = 200
        return SubmittedCase(**CaseView.of(case, bureau.clock.now()).model_dump(), case_token=token)

    @api.get("/v1/cases/{case_id}", responses=responses(401, 403, 404))
    async def get_case(case_id: CaseId, caller: Authenticated) -> CaseView:
        for_case(caller, case_id, changes=False)
        case = await bureau.case(case_id)
        if case is None:
            raise HTTPException(404, f"no case {case_id}")
        return CaseView.of(case, bureau.clock.now())

    @api.get("/v1/cases", responses=responses(401, 403))
    async def list_cases(
        caller: Authenticated,
        ids: Annotated[list[Annotated[str, Field(max_length=64)]], Query(max_length=500)] = [],  # noqa: B006
        status: Annotated[list[CaseStatus], Query(max_length=10)] = [],  # noqa: B006
        agent: Annotated[str | None, Query(max_length=32)] = None,
        stuck: Annotated[bool, Query(description="only cases something holds up now")] = False,
        applicant: Annotated[bool, Query(description="only cases waiting for their applicant: a supplement asked "
                                                     "for, documents promised, a refusal or a suspension")] = False,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> CasePage:
        """Cases, newest first, a page at a time: among those named (``ids``), of the statuses and agent given,
        (``applicant``) only those waiting for their applicant, and (``stuck``) only those that something holds up
        now, with what."""
        reader(caller)
        now = bureau.clock.now()
        cases, total = await bureau.listed(ids, status, agent, stuck, limit, offset, applicant)
        return CasePage(cases=[CaseView.of(c, now) for c in cases], total=total,
                        next_offset=next_offset(offset, len(cases), total))

    @api.post("/v1/requirements", responses=responses(401, 422))
    async def what_it_needs(body: ProjectDocuments, caller: Authenticated,
                            stage: Annotated[int | None, Query(ge=1, le=4)] = None) -> Requirements:
        """What a project needs: its approval items (of every stage, or one), their documents and whether the
        documents given would pass intake. Any principal may ask."""
        return requirements(body.project, body.documents, body.promised_documents, bureau.catalogue, stage)

    async def act(caller: Caller, case_id: str, action: Callable[[], Awaitable[Case]]) -> CaseView:
        for_case(caller, case_id, changes=True)
        try:
            return CaseView.of(await action(), bureau.clock.now())
        except UnknownCase as missing:
            raise HTTPException(404, f"no case {missing}") from missing
        except CaseStateError as wrong:
            raise HTTPException(409, str(wrong)) from wrong

    @api.post("/v1/cases/{case_id}/supplements", responses=responses(401, 403, 404, 409))
    async def supplement(case_id: CaseId, body: Documents, caller: Authenticated) -> CaseView:
        """The enterprise answers the supplement requests open on its case (补正)."""
        return await act(caller, case_id, lambda: bureau.provide_supplement(case_id, body.documents))

    @api.post("/v1/cases/{case_id}/documents", responses=responses(401, 403, 404, 409))
    async def documents(case_id: CaseId, body: Documents, caller: Authenticated) -> CaseView:
        """The enterprise hands in documents it promised at intake (容缺受理)."""
        return await act(caller, case_id, lambda: bureau.deliver_promised(case_id, body.documents))

    @api.post("/v1/cases/{case_id}/resubmissions", responses=responses(401, 403, 404, 409))
    async def resubmit(case_id: CaseId, body: Resubmission, caller: Authenticated) -> CaseView:
        """After a refusal, the enterprise resubmits a revised project."""
        return await act(caller, case_id, lambda: bureau.resubmit(case_id, body.project))

    return api
