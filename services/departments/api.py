"""The departments' desks over HTTP: officers list their tasks and decide them (human-in-the-loop), and
switch a desk between its rules and its officers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from contracts.bureau import Decision
from contracts.coordination import Resolution
from services.departments.desk import CoordinationDesk, Desk, Mode, Opinion, ReviewingDesk, TaskNotOpen


class OfficerDecision(BaseModel):
    decision: str = Field(description="an opinion (approved, approved_with_conditions, supplement_requested, "
                                      "rejected) or, at the coordination office, a resolution "
                                      "(proceed_with_conditions, uphold_refusal)")
    conditions: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    officer: str = Field(min_length=1)


class DeskMode(BaseModel):
    mode: Mode


def create_api(desks: dict[str, Desk]) -> FastAPI:
    api = FastAPI(title="Concord: departments' desks", version="1")

    def desk(code: str) -> Desk:
        if code not in desks:
            raise HTTPException(404, f"no desk for {code} in this process; desks here: {sorted(desks)}")
        return desks[code]

    @api.get("/healthz")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "desks": sorted(desks)}

    @api.get("/v1/departments/{code}/tasks")
    async def tasks(code: str, status: str | None = None) -> list[dict[str, Any]]:
        return await desk(code).tasks(status)

    @api.get("/v1/departments/{code}/mode")
    async def get_mode(code: str) -> DeskMode:
        return DeskMode(mode=await desk(code).mode())

    @api.put("/v1/departments/{code}/mode")
    async def set_mode(code: str, body: DeskMode) -> DeskMode:
        await desk(code).set_mode(body.mode)
        return body

    @api.post("/v1/departments/{code}/tasks/{task_id:path}/decision")
    async def decide(code: str, task_id: str, body: OfficerDecision) -> dict[str, Any]:
        target = desk(code)
        reasons_needed = body.decision in (Decision.REJECTED, Decision.SUPPLEMENT_REQUESTED, Resolution.UPHOLD_REFUSAL)
        if reasons_needed and not body.reasons:
            raise HTTPException(422, "a refusal or a supplement request needs reasons")
        try:
            if isinstance(target, CoordinationDesk):
                await target.decide_by_officer(task_id, Resolution(body.decision), body.conditions, body.reasons,
                                               body.officer)
            elif isinstance(target, ReviewingDesk):
                opinion = Opinion(Decision(body.decision), body.conditions, body.reasons)
                await target.decide_by_officer(task_id, opinion, body.officer)
        except ValueError as wrong:
            raise HTTPException(422, f"not a decision this desk gives: {body.decision}") from wrong
        except TaskNotOpen as missing:
            raise HTTPException(409, f"no open task {task_id} at {code}") from missing
        return {"task_id": task_id, "decision": body.decision, "officer": body.officer}

    return api
