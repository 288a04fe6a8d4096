"""The agency service end to end on the real stack: the bureau, every department's desk and the coordination
office as processes, the gateway between them, one accelerated clock."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from datetime import datetime
from pathlib import Path

import asyncpg

from base.clock import AcceleratedClock
from base.settings import ADMIN, Settings
from contracts.bureau import Project
from contracts.departments import HOUSING
from deploy.processes import AppProcesses
from services.bureau.samples import application
from tests.e2e.cases import (
    CALENDAR,
    FINAL,
    bureau,
    decide,
    desks,
    follow,
    officers_decide,
    request,
    submit,
    task_of,
)
from tests.tools import Tail, bearer, clock_reaches, eventually, header, http_client

OFFICE = Project(name="恒泰商业综合体项目", project_type="commercial", land_area_m2=20_000, floor_area_m2=40_000,
                 investment_10k_cny=30_000, industry_code="K7010", location="城东街道")
RED_LINE_FACTORY = Project(name="远景电子元器件生产基地项目", project_type="industrial", land_area_m2=60_000,
                           floor_area_m2=60_000, investment_10k_cny=20_000, industry_code="C3989",
                           location="滨江湿地保护区")
async def test_a_case_goes_through_all_four_stages(stack: Settings, exchange: AppProcesses) -> None:
    async with Tail(stack.kafka(ADMIN), "deliver.coordination") as coordination:
        case_id = await submit(stack, OFFICE)
        view = await follow(stack, case_id, lambda v: v["status"] in FINAL)
        assert view["status"] == "completed" and view["stage"] == 4
        stages = await coordination.wait_for(
            lambda r: r.key == case_id.encode() and header(r, "ce_type") == "bureau.stage-completed", count=4)
    assert sorted(json.loads(s.value)["stage"] for s in stages) == [1, 2, 3, 4]
    by_stage = {s: {r["item_code"] for r in view["requests"] if r["stage"] == s} for s in (1, 2, 3, 4)}
    assert by_stage[1] == {"DRC-101", "NRP-101", "NRP-102"}
    assert {"NRP-201", "NRP-202", "AIR-201", "WAT-201"} <= by_stage[2]
    assert {"HOU-301", "AIR-301", "HOU-302", "MKT-301"} <= by_stage[3]
    assert {"NRP-401", "HOU-401", "AIR-401", "HOU-402"} <= by_stage[4]
    assert all(r["decision"] in ("approved", "approved_with_conditions") for r in view["requests"]
               if r["status"] == "decided")

    # Housing's fire acceptance of a commercial building asked the bureau for the applicant's contact: for this
    # case's records alone, and the agreement ended with the case, whatever the bureau answered.
    async def ended_with_the_case() -> bool:
        async with http_client(base_url=stack.gateway_address, timeout=30,
                                     headers=bearer(stack.credentials(HOUSING).http_token)) as http:
            mine = (await http.get("/v1/agreements", params={"case": case_id})).json()["agreements"]
        return bool(mine) and all(a["case_id"] == case_id and a["status"] in ("ended", "rejected", "declined",
                                                                               "upheld") for a in mine)

    await eventually(ended_with_the_case)


async def test_a_supplement_stops_the_departments_clock_and_it_resumes_on_resubmission(
    stack: Settings, exchange: AppProcesses, clock: AcceleratedClock
) -> None:
    async with officers_decide(stack, "planning"):
        case_id = await submit(stack, OFFICE)
        task = await task_of(stack, "planning", case_id)
        await decide(stack, "planning", task["task_id"], "supplement_requested",
                     reasons=["the red-line drawing lacks boundary coordinates"])
        view = await follow(stack, case_id, lambda v: task["task_id"] in v["awaiting_supplement"], supplements=False)
        due_before = datetime.fromisoformat(request(view, task["item_code"])["due_at"])
        asked_at = clock.now()
        await clock_reaches(clock, CALENDAR.add_working_days(asked_at, 2))  # the enterprise takes two working days
        async with bureau(stack) as http:
            answered = (await http.post(f"/v1/cases/{case_id}/supplements",
                                        json={"documents": ["界址点坐标表"]})).json()
        handed_in = clock.now()
        after = request(answered, task["item_code"])
        assert after["status"] == "pending" and after["supplements"] == 1
        stood_still = CALENDAR.working_days_between(asked_at, handed_in)
        moved = CALENDAR.working_days_between(due_before, datetime.fromisoformat(after["due_at"]))
        assert stood_still >= 2 and abs(moved - stood_still) < 0.5  # the deadline moved by the time it stood still
        second = await task_of(stack, "planning", case_id, task["task_id"])
        assert second["round"] == 2
        await decide(stack, "planning", task["task_id"], "approved")
        view = await follow(stack, case_id, lambda v: request(v, task["item_code"])["status"] == "decided")
        assert request(view, task["item_code"])["decision"] == "approved"
    connection = await asyncpg.connect(stack.admin_dsn)
    try:
        paused = await connection.fetchval("SELECT paused_days FROM bureau.requests WHERE request_id = $1",
                                           task["task_id"])
    finally:
        await connection.close()
    assert abs(paused - stood_still) < 0.5


async def test_an_overdue_department_is_reminded_escalated_and_decided_by_an_officer_from_the_command_line(
    stack: Settings, exchange: AppProcesses
) -> None:
    async with officers_decide(stack, "devreform"), \
            Tail(stack.kafka(ADMIN), "deliver.devreform") as devreform, \
            Tail(stack.kafka(ADMIN), "deliver.coordination") as coordination:
        case_id = await submit(stack, OFFICE)
        task = await task_of(stack, "devreform", case_id)  # three working days to file it
        reminders = await devreform.wait_for(
            lambda r: r.key == case_id.encode() and header(r, "ce_type") == "bureau.deadline-reminder", count=2)
        assert sorted(json.loads(r.value)["share_used"] for r in reminders) == [0.5, 0.8]
        [escalation] = await coordination.wait_for(
            lambda r: r.key == case_id.encode() and header(r, "ce_type") == "bureau.deadline-escalated")
        late = json.loads(escalation.value)
        assert late["department"] == "devreform" and late["item_code"] == "DRC-101"
        assert late["working_days_late"] >= 0
        async with desks(stack, "coordination") as http:

            async def office_noted_it() -> bool:  # the office's desk reads the escalation in its own time
                noted = await http.get(f"/v1/departments/coordination/tasks/late:{task['task_id']}")
                return noted.status_code == 200 and noted.json()["status"] == "noted"

            await eventually(office_noted_it)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "deploy.cli", "tasks", "decide", "devreform", task["task_id"],
            "--decision", "approved_with_conditions", "--condition", "energy-saving review first",
            "--officer", "投资科 孙磊", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, out.decode()
        view = await follow(stack, case_id, lambda v: request(v, "DRC-101")["status"] == "decided")
    filed = request(view, "DRC-101")
    assert filed["decision"] == "approved_with_conditions" and filed["escalated_at"]
    assert filed["conditions"] == ["energy-saving review first"]


async def test_a_conflict_holds_the_stage_until_the_coordination_office_decides(
    stack: Settings, exchange: AppProcesses
) -> None:
    async with officers_decide(stack, "coordination"), Tail(stack.kafka(ADMIN), "deliver.coordination") as office:
        case_id = await submit(stack, RED_LINE_FACTORY)
        view = await follow(stack, case_id, lambda v: v["status"] == "held")  # supplements answered meanwhile
        assert view["stage"] == 1
        [raised] = await office.wait_for(
            lambda r: r.key == case_id.encode() and header(r, "ce_type") == "bureau.conflict-raised")
        conflict = json.loads(raised.value)
        assert conflict["refusals"][0]["department"] == "environment" and "planning" in conflict["approving"]
        task = await task_of(stack, "coordination", case_id)
        assert task["task_id"] == conflict["conflict_id"]
        relocate = ["move the production line 300 m out of the wetland buffer"]
        await decide(stack, "coordination", task["task_id"], "proceed_with_conditions", conditions=relocate,
                     reasons=["the joint meeting accepts the relocation plan"])
        # the officer's decision moves the stage on (the case may be further on by the time it is looked at)
        view = await follow(stack, case_id, lambda v: v["stage"] >= 2)
    [resolved] = [c for c in view["conflicts"] if c["stage"] == 1]
    assert resolved["resolution"] == "proceed_with_conditions" and resolved["conditions"] == relocate
    assert view["status"] != "rejected"


async def test_by_its_rules_the_joint_meeting_upholds_a_refusal_on_the_ecological_red_line(
    stack: Settings, exchange: AppProcesses
) -> None:
    case_id = await submit(stack, RED_LINE_FACTORY.model_copy(update={"name": "瑞达电子元器件生产基地项目"}))
    view = await follow(stack, case_id, lambda v: v["status"] in FINAL)
    assert view["status"] == "rejected" and view["conflicts"][0]["resolution"] == "uphold_refusal"
    assert any("生态保护红线" in reason for reason in view["reasons"])


async def test_a_missed_promise_suspends_the_approval_until_the_documents_come(
    stack: Settings, exchange: AppProcesses, clock: AcceleratedClock
) -> None:
    complete = application(random.Random("promise"), OFFICE)
    # Missed as soon as the case is opened, and the bureau suspends it at its next look, right after: the approval
    # stops with its first requests out (a department takes a quarter of an hour of the district's time at the
    # least to answer one, and the request reaches it first). A promise of days would race the departments' pace.
    promised_by = clock.now()
    async with Tail(stack.kafka(ADMIN), "deliver.planning") as planning:
        case_id = await submit(stack, OFFICE, documents=[d for d in complete.documents if d != "勘察报告"],
                               promised_documents=["勘察报告"], promised_by=promised_by)
        [suspended] = await planning.wait_for(
            lambda r: r.key == case_id.encode() and header(r, "ce_type") == "bureau.case-suspended")
        assert json.loads(suspended.value)["missing_documents"] == ["勘察报告"]
        assert datetime.fromisoformat(json.loads(suspended.value)["suspended_at"]) >= promised_by
        view = await follow(stack, case_id, lambda v: v["status"] == "suspended", supplements=False)
        waiting = [r for r in view["requests"] if r["status"] in ("pending", "awaiting_supplement")]
        assert waiting  # the approval stopped with requests out

        async def held_at_every_desk() -> bool:  # each waiting request's task is on its desk, and not open
            for r in waiting:
                async with desks(stack, r["department"]) as http:
                    mine = await http.get(f"/v1/departments/{r['department']}/tasks/{r['request_id']}")
                if mine.status_code != 200 or mine.json()["status"] == "open":
                    return False
            return True

        await eventually(held_at_every_desk)
        async with bureau(stack) as http:
            resumed = (await http.post(f"/v1/cases/{case_id}/documents", json={"documents": ["勘察报告"]})).json()
        assert resumed["status"] in ("in_progress", "completed") and resumed["promised_documents"] == []
        await planning.wait_for(lambda r: r.key == case_id.encode() and header(r, "ce_type") == "bureau.case-resumed")
    view = await follow(stack, case_id, lambda v: v["status"] in FINAL)
    assert view["status"] == "completed"


async def test_the_report_shows_the_case_and_the_figures_of_each_department_that_answered_it(
    stack: Settings, exchange: AppProcesses, tmp_path: Path
) -> None:
    case_id = await submit(stack, RED_LINE_FACTORY.model_copy(update={
        "name": "新洲电子元器件生产基地项目", "location": "高新区", "land_area_m2": 80_000}))
    view = await follow(stack, case_id, lambda v: v["status"] in FINAL)  # a factory: environment and water too
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deploy.cli", "report", "--json", "--html", str(tmp_path / "report.html"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    report = json.loads(out[out.index(b"{"):])
    [mine] = [c for c in report["case_durations"] if c["case_id"] == case_id]
    assert mine["status"] == view["status"] and mine["finished"] and mine["working_days"] > 0
    departments = {d["code"]: d for d in report["departments"]}
    answered = {r["department"] for r in view["requests"] if r["status"] == "decided"}
    assert {"devreform", "planning", "environment", "water"} <= answered <= set(departments)
    for code in answered:
        figures = departments[code]
        assert figures["decided"] >= 1 and figures["median_response_working_days"] is not None
        for key in ("p90_response_working_days", "on_time_rate", "supplement_rate", "rejection_rate", "escalations"):
            assert key in figures
    exchange = report["exchange"]  # the exchange's own transit, measured apart from the departments
    assert exchange["hops"] > 0 and exchange["transit_p99_ms"] >= exchange["transit_p50_ms"] > 0
    hops = {(h["sender"], h["consumer"]) for h in exchange["by_hop"]}
    assert {("bureau", "planning"), ("planning", "bureau")} <= hops
    assert [s["stage"] for s in report["stages"]] == [1, 2, 3, 4]
    assert set(report["sharing"]) >= {"agreement_requests", "median_turnaround_working_days", "refused"}
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 2 and "environment" in page and "transit" in page
