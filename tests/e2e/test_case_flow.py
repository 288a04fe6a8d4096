"""A case of the agency service end to end, through the bureau's API and its command line, every step
on the audit trail."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

import asyncpg

from base.settings import ADMIN, Settings
from contracts.bureau import Project
from deploy.processes import AppProcesses
from services.bureau.samples import application
from tests.e2e.cases import FINAL, bureau, follow, submit
from tests.tools import Tail

FLOW = {"bureau.case-submitted", "bureau.opinion-requested", "bureau.opinion-issued", "bureau.stage-completed",
        "bureau.case-completed"}
WAREHOUSE = Project(name="恒泰智慧物流仓储中心项目", project_type="warehouse", land_area_m2=40_000,
                    floor_area_m2=36_000, investment_10k_cny=8_000, industry_code="G5960", location="临港工业园")


async def test_a_case_flows_end_to_end_and_every_step_is_audited(stack: Settings, exchange: AppProcesses) -> None:
    async with Tail(stack.kafka(ADMIN), "audit.exchange") as audit:
        case_id = await submit(stack, WAREHOUSE)
        view = await follow(stack, case_id, lambda v: v["status"] in FINAL)
        assert view["status"] == "completed"
        entries = await audit.wait_for(lambda r: r.key == case_id.encode()
                                       and json.loads(r.value)["contract"] == "bureau.case-completed")
    routed = [json.loads(e.value) for e in audit.records if e.key == case_id.encode()]
    assert {e["contract"] for e in routed} >= FLOW and entries
    assert all(e["action"] == "routed" for e in routed)
    senders = {e["contract"]: e["sender"] for e in routed}
    assert senders["bureau.opinion-issued"] in {"devreform", "planning", "environment", "housing", "market"}
    assert senders["bureau.case-completed"] == "bureau"
    opinions = sum(1 for e in routed if e["contract"] == "bureau.opinion-issued")
    assert opinions >= len([r for r in view["requests"] if r["status"] == "decided"])

    connection = await asyncpg.connect(stack.admin_dsn)
    try:
        handled = await connection.fetchval(
            "SELECT count(*) FROM planning.inbox WHERE contract = 'bureau.opinion-requested' AND outcome = 'handled'"
            " AND event_id IN (SELECT event_id FROM bureau.outbox WHERE key = $1)", case_id.encode())
        assert handled == len([r for r in view["requests"] if r["department"] == "planning"])
    finally:
        await connection.close()


async def test_a_project_over_the_plan_is_refused_with_reasons(stack: Settings, exchange: AppProcesses) -> None:
    dense = WAREHOUSE.model_copy(update={"name": "宏图商业综合体项目", "project_type": "commercial",
                                        "land_area_m2": 10_000.0, "floor_area_m2": 45_000.0, "location": "城南街道"})
    case_id = await submit(stack, dense)
    view = await follow(stack, case_id, lambda v: v["status"] in FINAL)
    assert view["status"] == "rejected"
    assert any("4.50" in reason for reason in view["reasons"])


async def test_a_bad_credit_code_or_a_missing_key_document_is_refused_at_intake(
    stack: Settings, exchange: AppProcesses
) -> None:
    body = json.loads(application(random.Random(13), WAREHOUSE).model_dump_json())
    async with bureau(stack) as http:
        wrong_code = await http.post("/v1/cases", json=body | {
            "applicant_credit_code": body["applicant_credit_code"][:17] + "I"})
        missing = await http.post("/v1/cases", json=body | {"documents": body["documents"][1:]})
    assert wrong_code.status_code == 422 and "credit code" in wrong_code.text
    assert missing.status_code == 422 and "key documents missing" in missing.text


async def test_a_case_submitted_from_the_command_line_flows_too(
    stack: Settings, exchange: AppProcesses, tmp_path: Path
) -> None:
    file = tmp_path / "application.json"
    file.write_text(application(random.Random(14), WAREHOUSE).model_dump_json(), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deploy.cli", "case", "submit", str(file),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    case_id = json.loads(out)["case_id"]
    view = await follow(stack, case_id, lambda v: v["status"] in FINAL)
    assert view["status"] == "completed" and view["requests"][0]["decision"]
