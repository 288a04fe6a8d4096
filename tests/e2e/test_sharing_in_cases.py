"""Sharing that arises from the work, on the real stack: a department's review asks for conditional data when its
case needs it, waits (the case shows it), and goes on once the provider decided, by its rules or by an officer, on
a typed ground."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from typing import Any

import httpx

from base.settings import Settings
from contracts.bureau import Project
from deploy.processes import AppProcesses
from tests.e2e.cases import FINAL, follow, officers_decide, request, submit
from tests.e2e.test_agency_service import OFFICE
from tests.tools import bearer

PHARMA = Project(name="博源生物医药产业园项目", project_type="industrial", land_area_m2=30_000, floor_area_m2=36_000,
                 investment_10k_cny=20_000, industry_code="C2710", location="经开区")


async def agreement(stack: Settings, agreement_id: str, department: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.gateway_address, timeout=30,
                                 headers=bearer(stack.credentials(department).http_token)) as http:
        response = await http.get(f"/v1/agreements/{agreement_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_the_fire_acceptance_of_a_mall_asks_the_bureau_for_the_applicants_contact_and_goes_on_when_decided(
    stack: Settings, exchange: AppProcesses
) -> None:
    case_id = await submit(stack, OFFICE)
    view = await follow(stack, case_id, lambda v: v["status"] in FINAL, timeout=120)
    assert view["status"] == "completed"
    fire = request(view, "HOU-401")
    [wait] = fire["data_waits"]
    assert (wait["provider"], wait["contract_id"]) == ("bureau", "bureau.case-submitted")
    assert set(wait["fields"]) == {"contact_person", "contact_phone"}
    since, until, decided = (datetime.fromisoformat(t) for t in (wait["since"], wait["until"], fire["decided_at"]))
    assert wait["outcome"] in ("shared", "withheld") and since <= until <= decided
    at_gateway = await agreement(stack, wait["agreement_id"], "housing")
    assert (at_gateway["consumer"], at_gateway["provider"]) == ("housing", "bureau") and case_id in \
        at_gateway["purpose"]
    if wait["outcome"] == "shared":
        assert at_gateway["status"] == "approved" and fire["decision"] == "approved"
    else:  # the agent kept the contact: a judgement, not escalated (the gateway takes no escalation yet)
        assert at_gateway["status"] == "rejected" and at_gateway["reasons"].startswith("not_necessary:")
        assert wait["ground"] == "not_necessary" and not wait["escalated"]
        assert fire["decision"] == "approved_with_conditions" and "agent" in fire["conditions"][0]
    steps = [m["step"] for m in view["timeline"] if m["detail"].startswith("HOU-401")]
    assert steps == ["requested", "waits for data", f"data {wait['outcome']}", fire["decision"]]


async def test_an_officer_of_market_regulation_refuses_the_legal_representative_on_a_binding_ground(
    stack: Settings, exchange: AppProcesses
) -> None:
    async with officers_decide(stack, "market"):
        case_id = await submit(stack, PHARMA)
        view = await follow(stack, case_id, lambda v: any(
            s["hold"] == "data" and s["department"] == "environment" for s in v["stuck"]), timeout=60)
        [wait] = request(view, "EEB-101")["data_waits"]
        assert (wait["provider"], wait["fields"], wait["until"]) == ("market", ["legal_representative"], None)
        async with httpx.AsyncClient(base_url=f"http://{stack.departments_host}:{stack.departments_port}",
                                     headers=bearer(stack.credentials("market").http_token), timeout=30) as http:
            tasks = (await http.get("/v1/departments/market/tasks", params={"status": "open"})).json()
        task = next(t for t in tasks if t["task_id"] == wait["agreement_id"])
        assert task["kind"] == "sharing" and task["item_code"] == "market.business-registration"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "deploy.cli", "tasks", "decide", "market", task["task_id"], "--decision",
            "rejected", "--ground", "personal_information", "--reason", "the representative's record is protected",
            "--officer", "登记科 冯静", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, out.decode()
        view = await follow(stack, case_id, lambda v: request(v, "EEB-101")["status"] == "decided", timeout=60)
    [wait] = request(view, "EEB-101")["data_waits"]
    assert (wait["outcome"], wait["ground"], wait["escalated"]) == ("withheld", "personal_information", False)
    assessment = request(view, "EEB-101")
    assert assessment["decision"] == "approved_with_conditions"
    assert any("legal representative was withheld" in c for c in assessment["conditions"])
    refused = await agreement(stack, wait["agreement_id"], "environment")
    assert refused["status"] == "rejected" and refused["reasons"] == \
        "personal_information: the representative's record is protected"
