"""The departments' desks over HTTP: officers list their tasks and decide them (human-in-the-loop), and
switch a desk between its rules and its officers. A department's token works at its own desk only; the
operator's reads every desk and changes nothing."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import HTTPException, Path, Query
from pydantic import BaseModel, Field

from base.http import Authenticate, Authenticated, Caller, ExchangeApi, authenticate_with, forbidden, responses
from base.pages import next_offset
from contracts.bureau import Decision, RefusalGround, Verification
from contracts.coordination import Resolution
from contracts.exchange import AgreementOutcome
from contracts.refusal_grounds import SharingGround
from services.departments.desk import CoordinationDesk, Desk, ReviewingDesk, VerificationDecision, WrongDecision
from services.departments.rules import Opinion
from services.departments.store import Mode
from services.departments.tasks import TaskKind, TaskNotOpen, TaskStatus
from services.kit.agreements import SharingAnswer

Text = Annotated[str, Field(min_length=1, max_length=2000)]


class OfficerDecision(BaseModel):
    decision: str = Field(max_length=64, description="an opinion (approved, approved_with_conditions, "
                          "supplement_requested, rejected); on a sharing request approved or rejected (with its "
                          "sharing_ground); on an approval on commitment passed or failed (the reasons are the "
                          "findings); at the coordination office a resolution (proceed_with_conditions, "
                          "uphold_refusal)")
    conditions: list[Text] = Field(default_factory=list, max_length=50)
    reasons: list[Text] = Field(default_factory=list, max_length=50)
    grounds: list[RefusalGround] = Field(default_factory=list, max_length=10,
                                         description="statutory grounds of a refusal (binding on coordination)")
    sharing_ground: SharingGround | None = Field(None, description="the ground of a refusal to share data")
    officer: str = Field(min_length=1, max_length=100)


class TaskPage(BaseModel):
    tasks: list[dict[str, Any]]
    total: int = Field(description="how many tasks match")
    next_offset: int | None = Field(description="the offset of the next page (None: this is the last)")


class DeskMode(BaseModel):
    mode: Mode


Code = Annotated[str, Path(max_length=32, pattern=r"^[a-z]+$")]
TaskId = Annotated[str, Path(max_length=256)]


def officer_decision(kind: TaskKind | None, body: OfficerDecision) -> Opinion | SharingAnswer | VerificationDecision:
    """The decision an officer's body makes on a task of this kind (a ValueError if it makes none)."""
    if kind is TaskKind.SHARING:
        if AgreementOutcome(body.decision) is AgreementOutcome.APPROVED:
            return SharingAnswer()
        if AgreementOutcome(body.decision) is not AgreementOutcome.REJECTED or body.sharing_ground is None:
            raise WrongDecision("a sharing request is approved, or rejected on a sharing_ground with reasons")
        return SharingAnswer(body.sharing_ground, "; ".join(body.reasons))
    if kind is TaskKind.VERIFICATION:
        return VerificationDecision(Verification(body.decision), body.reasons)
    return Opinion(Decision(body.decision), body.conditions, body.reasons, body.grounds)


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
                    status: TaskStatus | None = None,
                    case: Annotated[str | None, Query(max_length=64, description="only this case's tasks")] = None,
                    limit: Annotated[int, Query(ge=1, le=200)] = 50,
                    offset: Annotated[int, Query(ge=0)] = 0) -> TaskPage:
        """The desk's tasks, oldest first, a page at a time: of the status and case given."""
        found, total = await desk(code, caller, changes=False).tasks(status, case, limit, offset)
        return TaskPage(tasks=[asdict(task) for task in found], total=total,
                        next_offset=next_offset(offset, len(found), total))

    @api.get("/v1/departments/{code}/tasks/{task_id:path}", responses=responses(401, 403, 404))
    async def task(code: Code, task_id: TaskId, caller: Authenticated) -> dict[str, Any]:
        found = await desk(code, caller, changes=False).task(task_id)
        if found is None:
            raise HTTPException(404, f"no task {task_id} at {code}")
        return asdict(found)

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
        reasons_needed = body.decision in (Decision.REJECTED, Decision.SUPPLEMENT_REQUESTED, Resolution.UPHOLD_REFUSAL,
                                           Verification.FAILED)
        if reasons_needed and not body.reasons:
            raise HTTPException(422, "a refusal, a supplement request or a failed verification needs reasons")
        try:
            if isinstance(target, CoordinationDesk):
                await target.officer_resolution(task_id, Resolution(body.decision), body.conditions, body.reasons,
                                                body.officer)
            elif isinstance(target, ReviewingDesk):
                await target.officer_decision(task_id, officer_decision(await target.kind_of(task_id), body),
                                              body.officer)
        except ValueError as wrong:
            detail = str(wrong) if isinstance(wrong, WrongDecision) else \
                f"not a decision this desk gives: {body.decision}"
            raise HTTPException(422, detail) from wrong
        except TaskNotOpen as missing:
            raise HTTPException(409, f"no open task {task_id} at {code}") from missing
        return {"task_id": task_id, "decision": body.decision, "officer": body.officer}

    return api
