"""The bureau's HTTP API: the enterprise's (or the front desk's) way in, and case lookup."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, Field

from contracts.bureau import Project
from services.bureau.model import Case, CaseApplication, CaseStateError, IntakeRefused, RequestStatus
from services.bureau.service import Bureau, UnknownCase


class RequestView(BaseModel):
    request_id: str
    stage: int
    department: str
    item_code: str
    item_name: str
    committed_days: int
    requested_at: datetime
    due_at: datetime
    status: str
    decision: str | None
    conditions: list[str]
    reasons: list[str]
    decided_at: datetime | None
    supplements: int
    escalated_at: datetime | None


class CaseView(BaseModel):
    case_id: str
    status: str
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
    conflicts: list[dict[str, Any]]
    requests: list[RequestView]

    @classmethod
    def of(cls, case: Case) -> CaseView:
        return cls(
            case_id=case.case_id, status=case.status.value, stage=case.stage, agent=case.agent,
            project=case.application.project, submitted_at=case.submitted_at, completed_at=case.completed_at,
            reasons=case.reasons, promised_documents=case.promised_documents, promised_by=case.promised_by,
            survey_at=case.survey_at, resubmissions=case.resubmissions,
            awaiting_supplement=[r.request_id for r in case.requests if r.status is RequestStatus.AWAITING_SUPPLEMENT],
            conflicts=[{"conflict_id": c.conflict_id, "stage": c.stage, "raised_at": c.raised_at,
                        "resolved_at": c.resolved_at, "resolution": c.resolution.value if c.resolution else None}
                       for c in case.conflicts],
            requests=[RequestView(**{**r.__dict__, "status": r.status.value,
                                     "decision": r.decision.value if r.decision else None})
                      for r in case.requests],
        )


class Documents(BaseModel):
    documents: list[str] = Field(min_length=1)


class Resubmission(BaseModel):
    project: Project


def create_api(bureau: Bureau) -> FastAPI:
    api = FastAPI(title="Concord: Administrative Approval Bureau", version="1",
                  description="The agency service (代办): cases of engineering construction projects.")

    @api.get("/healthz")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "catalogue": bureau.catalogue.version}

    @api.post("/v1/cases", status_code=201)
    async def submit(application: CaseApplication) -> CaseView:
        try:
            return CaseView.of(await bureau.submit(application))
        except IntakeRefused as refused:
            raise HTTPException(422, str(refused)) from refused

    @api.get("/v1/cases/{case_id}")
    async def get_case(case_id: str) -> CaseView:
        case = await bureau.case(case_id)
        if case is None:
            raise HTTPException(404, f"no case {case_id}")
        return CaseView.of(case)

    @api.get("/v1/cases")
    async def list_cases(ids: list[str] = Query(default_factory=list)) -> list[CaseView]:
        return [CaseView.of(c) for c in await bureau.cases(ids)]

    async def act(action: Any) -> CaseView:
        try:
            return CaseView.of(await action)
        except UnknownCase as missing:
            raise HTTPException(404, f"no case {missing}") from missing
        except CaseStateError as wrong:
            raise HTTPException(409, str(wrong)) from wrong

    @api.post("/v1/cases/{case_id}/supplements")
    async def supplement(case_id: str, body: Documents) -> CaseView:
        """The enterprise answers the supplement requests open on its case (补正)."""
        return await act(bureau.provide_supplement(case_id, body.documents))

    @api.post("/v1/cases/{case_id}/documents")
    async def documents(case_id: str, body: Documents) -> CaseView:
        """The enterprise hands in documents it promised at intake (容缺受理)."""
        return await act(bureau.deliver_promised(case_id, body.documents))

    @api.post("/v1/cases/{case_id}/resubmissions")
    async def resubmit(case_id: str, body: Resubmission) -> CaseView:
        """After a refusal, the enterprise resubmits a revised project."""
        return await act(bureau.resubmit(case_id, body.project))

    return api
