"""The bureau's HTTP API: the enterprise's (or the front desk's) way in, and case lookup."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel

from services.bureau.model import Case, CaseApplication
from services.bureau.service import Bureau


class RequestView(BaseModel):
    request_id: str
    stage: int
    department: str
    item_code: str
    item_name: str
    requested_at: datetime
    due_at: datetime
    decision: str | None
    conditions: list[str]
    reasons: list[str]
    decided_at: datetime | None


class CaseView(BaseModel):
    case_id: str
    status: str
    stage: int
    agent: str
    project_name: str
    submitted_at: datetime
    completed_at: datetime | None
    requests: list[RequestView]

    @classmethod
    def of(cls, case: Case) -> CaseView:
        return cls(
            case_id=case.case_id, status=case.status.value, stage=case.stage, agent=case.agent,
            project_name=case.application.project.name, submitted_at=case.submitted_at,
            completed_at=case.completed_at,
            requests=[RequestView(**{**r.__dict__, "decision": r.decision.value if r.decision else None})
                      for r in case.requests],
        )


def create_api(bureau: Bureau) -> FastAPI:
    api = FastAPI(title="Concord: Administrative Approval Bureau", version="1")

    @api.get("/healthz")
    async def health() -> dict[str, Any]:
        return {"status": "ok"}

    @api.post("/v1/cases", status_code=201)
    async def submit(application: CaseApplication) -> CaseView:
        return CaseView.of(await bureau.submit(application))

    @api.get("/v1/cases/{case_id}")
    async def get_case(case_id: str) -> CaseView:
        case = await bureau.case(case_id)
        if case is None:
            raise HTTPException(404, f"no case {case_id}")
        return CaseView.of(case)

    @api.get("/v1/cases")
    async def list_cases(ids: list[str] = Query(default_factory=list)) -> list[CaseView]:
        cases = [await bureau.case(i) for i in ids]
        return [CaseView.of(c) for c in cases if c is not None]

    return api
