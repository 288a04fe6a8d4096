"""A case of the agency service end to end: bureau API → Kafka → gateway → planning → gateway → bureau."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

import asyncpg
import httpx

from deploy.processes import AppProcesses
from deploy.settings import Settings
from services.bureau.samples import application
from tests.tools import Tail, eventually

FLOW = ["bureau.case-submitted", "bureau.opinion-requested", "bureau.opinion-issued", "bureau.stage-completed",
        "bureau.case-completed"]


def bureau_url(stack: Settings) -> str:
    return f"http://{stack.bureau_host}:{stack.bureau_port}"


async def wait_finished(stack: Settings, case_id: str) -> dict:  # type: ignore[type-arg]
    async with httpx.AsyncClient(base_url=bureau_url(stack)) as http:
        view: dict = {}  # type: ignore[type-arg]

        async def finished() -> bool:
            nonlocal view
            view = (await http.get(f"/v1/cases/{case_id}")).json()
            return view["status"] != "in_progress"

        await eventually(finished)
        return view


async def test_a_case_flows_end_to_end_and_every_step_is_audited(stack: Settings, exchange: AppProcesses) -> None:
    app = application(random.Random(11)).model_copy(update={})
    async with Tail(stack.bootstrap, "audit.exchange") as audit, httpx.AsyncClient(base_url=bureau_url(stack)) as http:
        response = await http.post("/v1/cases", content=app.model_dump_json(),
                                   headers={"content-type": "application/json"})
        assert response.status_code == 201
        case_id = response.json()["case_id"]
        view = await wait_finished(stack, case_id)
        assert view["status"] == "completed"
        [request] = view["requests"]
        assert request["department"] == "planning" and request["decision"] in {"approved", "approved_with_conditions"}
        entries = await audit.wait_for(lambda r: r.key == case_id.encode(), count=len(FLOW))
    routed = [json.loads(e.value) for e in entries]
    assert sorted(e["contract"] for e in routed) == sorted(FLOW)
    assert all(e["action"] == "routed" for e in routed)
    senders = {e["contract"]: e["sender"] for e in routed}
    assert senders["bureau.opinion-issued"] == "planning" and senders["bureau.case-completed"] == "bureau"

    connection = await asyncpg.connect(stack.dsn)
    try:
        handled = await connection.fetchval(
            "SELECT count(*) FROM planning.inbox WHERE contract = 'bureau.opinion-requested' AND outcome = 'handled'"
            " AND event_id IN (SELECT event_id FROM bureau.outbox WHERE key = $1)", case_id.encode())
        assert handled == 1
    finally:
        await connection.close()


async def test_a_project_over_the_plan_is_rejected_with_reasons(stack: Settings, exchange: AppProcesses) -> None:
    app = application(random.Random(12))
    dense = app.model_copy(update={"project": app.project.model_copy(
        update={"land_area_m2": 10_000.0, "floor_area_m2": 45_000.0})})
    async with httpx.AsyncClient(base_url=bureau_url(stack)) as http:
        case_id = (await http.post("/v1/cases", content=dense.model_dump_json(),
                                   headers={"content-type": "application/json"})).json()["case_id"]
    view = await wait_finished(stack, case_id)
    assert view["status"] == "rejected"
    assert "4.50" in view["requests"][0]["reasons"][0]


async def test_a_bad_credit_code_is_refused_at_intake(stack: Settings, exchange: AppProcesses) -> None:
    body = json.loads(application(random.Random(13)).model_dump_json())
    body["applicant_credit_code"] = body["applicant_credit_code"][:17] + "I"
    async with httpx.AsyncClient(base_url=bureau_url(stack)) as http:
        response = await http.post("/v1/cases", json=body)
    assert response.status_code == 422
    assert "credit code" in response.text


async def test_a_case_submitted_from_the_command_line_flows_too(
    stack: Settings, exchange: AppProcesses, tmp_path: Path
) -> None:
    file = tmp_path / "application.json"
    file.write_text(application(random.Random(14)).model_dump_json(), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deploy.cli", "case", "submit", str(file),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    case_id = json.loads(out)["case_id"]
    view = await wait_finished(stack, case_id)
    assert view["status"] in {"completed", "rejected"} and view["requests"][0]["decision"]
