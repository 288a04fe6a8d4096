"""The departments' desks over HTTP: officers list their tasks and decide them (human-in-the-loop), and
switch a desk between its rules and its officers. A department's token works at its own desk only; the
operator's reads every desk and changes nothing."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import HTTPException, Path, Query
from pydantic import BaseModel, Field

from base.http import Authenticate, Authenticated, Caller, ExchangeApi, authenticate_with, forbidden, responses
from contracts.bureau import Decision, RefusalGround
from contracts.coordination import Resolution
from services.departments.desk import CoordinationDesk, Desk, ReviewingDesk
from services.departments.rules import Opinion
from services.departments.store import Mode
from services.departments.tasks import TaskNotOpen

Text = Annotated[str, Field(min_length=1, max_length=2000)]


class OfficerDecision(BaseModel):
    decision: str = Field(max_length=64, description="an opinion (approved, approved_with_conditions, "
                          "supplement_requested, rejected) or, at the coordination office, a resolution "
                          "(proceed_with_conditions, uphold_refusal)")
    conditions: list[Text] = Field(default_factory=list, max_length=50)
    reasons: list[Text] = Field(default_factory=list, max_length=50)
    grounds: list[RefusalGround] = Field(default_factory=list, max_length=10,
                                         description="statutory grounds of a refusal (binding on coordination)")
    officer: str = Field(min_length=1, max_length=100)


class DeskMode(BaseModel):
    mode: Mode


Code = Annotated[str, Path(max_length=32, pattern=r"^[a-z]+$")]
TaskId = Annotated[str, Path(max_length=256)]


def create_api(desks: dict[str, Desk], identity: Authenticate, max_body_bytes: int) -> ExchangeApi:
    api = ExchangeApi("Concord: departments' desks", "Officers' tasks and decisions at each department's desk "
                      "(human-in-the-loop), and whether a desk's rules or its officers decide.", max_body_bytes)
    authenticate_with(api, identity)

    def desk(code: str, caller: Caller, changes: bool) -> Desk:
        if caller.department != code and (changes or not caller.operator):
            raise forbidden(f"{caller} may not {'work at' if changes else 'read'} the desk of {code}")
        if code not in desks:
            raise HTTPException(404, f"no desk for {code} in this process; desks here: {sorted(desks)}")
        return desks[code]

    @api.get("/v1/departments/{code}/tasks", responses=responses(401, 403, 404))
    async def tasks(code: Code, caller: Authenticated,
                    status: Annotated[str | None, Query(max_length=32)] = None) -> list[dict[str, Any]]:
        return [asdict(task) for task in await desk(code, caller, changes=False).tasks(status)]

    @api.get("/v1/departments/{code}/mode", responses=responses(401, 403, 404))
    async def get_mode(code: Code, caller: Authenticated) -> DeskMode:
        return DeskMode(mode=await desk(code, caller, changes=False).mode())

    @api.put("/v1/departments/{code}/mode", responses=responses(401, 403, 404))
    async def set_mode(code: Code, body: DeskMode, caller: Authenticated) -> DeskMode:
        await desk(code, caller, changes=True).set_mode(body.mode)
        return body

    @api.post("/v1/departments/{code}/tasks/{task_id:path}/decision", responses=responses(401, 403, 404, 409, 422))
    async def decide(code: Code, task_id: TaskId, body: OfficerDecision, caller: Authenticated) -> dict[str, Any]:
        target = desk(code, caller, changes=True)
        reasons_needed = body.decision in (Decision.REJECTED, Decision.SUPPLEMENT_REQUESTED, Resolution.UPHOLD_REFUSAL)
        if reasons_needed and not body.reasons:
            raise HTTPException(422, "a refusal or a supplement request needs reasons")
        try:
            if isinstance(target, CoordinationDesk):
                await target.officer_resolution(task_id, Resolution(body.decision), body.conditions, body.reasons,
                                                body.officer)
            elif isinstance(target, ReviewingDesk):
                opinion = Opinion(Decision(body.decision), body.conditions, body.reasons, body.grounds)
                await target.officer_opinion(task_id, opinion, body.officer)
        except ValueError as wrong:
            raise HTTPException(422, f"not a decision this desk gives: {body.decision}") from wrong
        except TaskNotOpen as missing:
            raise HTTPException(409, f"no open task {task_id} at {code}") from missing
        return {"task_id": task_id, "decision": body.decision, "officer": body.officer}

    return api
