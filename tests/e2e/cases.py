"""Driving cases on the real stack from tests, as an enterprise and as officers would."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from base.calendar import WorkingDayCalendar
from base.settings import Settings
from contracts.bureau import Project
from contracts.departments import BUREAU
from services.bureau.samples import application
from services.departments.market import licence_revoked
from tests.tools import bearer, http_client

FINAL = ("completed", "rejected", "closed")
CALENDAR = WorkingDayCalendar()
View = dict[str, Any]


def bureau(stack: Settings) -> httpx.AsyncClient:
    """The bureau's API as its front desk (the bureau's token)."""
    return http_client(base_url=f"http://{stack.bureau_host}:{stack.bureau_port}", timeout=30,
                             headers=bearer(stack.credentials(BUREAU).http_token))


def desks(stack: Settings, department: str) -> httpx.AsyncClient:
    """The desks' API as one department's officers (its token)."""
    return http_client(base_url=f"http://{stack.departments_host}:{stack.departments_port}", timeout=30,
                             headers=bearer(stack.credentials(department).http_token))


async def submit(stack: Settings, project: Project, **changes: Any) -> str:
    """Submit the project for an applicant in business (the register revokes about 2 % of the credit codes drawn,
    and development and reform then refuses the filing: a test that expects its case to go through drew one now
    and then), unless ``changes`` name the applicant's credit code."""
    rng = random.Random(project.name)
    body = application(rng, project)
    while licence_revoked(body.applicant_credit_code):
        body = application(rng, project)
    body = body.model_copy(update=changes)
    async with bureau(stack) as http:
        response = await http.post("/v1/cases", content=body.model_dump_json(),
                                   headers={"content-type": "application/json"})
    assert response.status_code == 201, response.text
    return str(response.json()["case_id"])


async def follow(stack: Settings, case_id: str, until: Callable[[View], bool], *, supplements: bool = True,
                 timeout: float = 90) -> View:
    """Watch a case as its enterprise would, answering supplement requests, until `until` holds."""
    deadline = time.monotonic() + timeout
    async with bureau(stack) as http:
        while time.monotonic() < deadline:
            view: View = (await http.get(f"/v1/cases/{case_id}")).json()
            if until(view):
                return view
            if supplements and view["awaiting_supplement"]:
                await http.post(f"/v1/cases/{case_id}/supplements", json={"documents": ["补正材料"]})
            await asyncio.sleep(0.2)
    raise AssertionError(f"{case_id} did not get there in {timeout}s: {view['status']} at stage {view['stage']}")


async def task_of(stack: Settings, department: str, case_id: str | None, task_id: str | None = None,
                  timeout: float = 30, status: str = "open") -> dict[str, Any]:
    """The department's oldest task for the case in ``status``, or that very task (waits until it is on the desk in
    ``status``: the desk takes what it is sent up in its own time)."""
    assert case_id is not None or task_id is not None
    deadline = time.monotonic() + timeout
    async with desks(stack, department) as http:
        while time.monotonic() < deadline:
            if task_id is not None:
                answer = await http.get(f"/v1/departments/{department}/tasks/{task_id}")
                if answer.status_code == 200 and answer.json()["status"] == status:
                    return dict(answer.json())
            else:
                page = (await http.get(f"/v1/departments/{department}/tasks",
                                       params={"status": status, "case": case_id})).json()
                if page["tasks"]:
                    return dict(page["tasks"][0])
            await asyncio.sleep(0.2)
    raise AssertionError(f"no {status} task {task_id or ''} of {department} for {case_id or 'any case'}")


@asynccontextmanager
async def officers_decide(stack: Settings, department: str) -> AsyncIterator[None]:
    """The department's officers decide instead of its rules, for the duration."""
    async with desks(stack, department) as http:
        assert (await http.put(f"/v1/departments/{department}/mode", json={"mode": "human"})).status_code == 200
        try:
            yield
        finally:
            await http.put(f"/v1/departments/{department}/mode", json={"mode": "rules"})


async def decide(stack: Settings, department: str, task_id: str, decision: str, **extra: Any) -> None:
    async with desks(stack, department) as http:
        response = await http.post(f"/v1/departments/{department}/tasks/{task_id}/decision",
                                   json={"decision": decision, "officer": "测试 officer", **extra})
    assert response.status_code == 200, response.text


def request(view: View, item_code: str) -> dict[str, Any]:
    return next(r for r in view["requests"] if r["item_code"] == item_code and r["status"] != "withdrawn")
