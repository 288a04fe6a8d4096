"""Approval on commitment (告知承诺制) on the real stack: the construction permit of two office blocks is approved
on their applicants' commitments; housing's officers verify one (it passes) and fail the other once its case has
completed, which revokes the approval, asks for the permit again and reopens the case. Every step is an event
and in the case's timeline."""

from __future__ import annotations

import asyncio
import json
import time

from base.settings import ADMIN, Settings
from deploy.processes import AppProcesses
from tests.e2e.cases import View, bureau, decide, desks, officers_decide, submit
from tests.e2e.test_agency_service import OFFICE
from tests.tools import Tail, header


def permit(view: View) -> list[dict[str, object]]:
    return [r for r in view["requests"] if r["item_code"] == "HOU-302"]


def settled(view: View) -> bool:
    """Completed, with every approval on commitment verified and no request open."""
    return view["status"] == "completed" and all(
        r["status"] not in ("pending", "awaiting_supplement") and (not r["on_commitment"] or r["verification"])
        for r in view["requests"])


async def housing_officers(stack: Settings, verdicts: dict[str, str], timeout: float = 120) -> dict[str, View]:
    """Housing's officers approve every opinion of the cases and verify their permits as ``verdicts`` says (a
    failure only once the case has completed), until every case is settled."""
    deadline = time.monotonic() + timeout
    views: dict[str, View] = {}
    async with bureau(stack) as front, desks(stack, "housing") as http:
        while time.monotonic() < deadline:
            views = {c: (await front.get(f"/v1/cases/{c}")).json() for c in verdicts}
            if all(settled(v) for v in views.values()):
                return views
            open_tasks = [task for case_id in verdicts for task in (await http.get(
                "/v1/departments/housing/tasks", params={"status": "open", "case": case_id})).json()["tasks"]]
            for task in open_tasks:
                case_id = task["case_id"]
                if task["kind"] == "opinion":
                    await decide(stack, "housing", task["task_id"], "approved")
                elif verdicts[case_id] == "passed":
                    await decide(stack, "housing", task["task_id"], "passed")
                elif views[case_id]["status"] == "completed":
                    await decide(stack, "housing", task["task_id"], "failed",
                                 reasons=["the wage guarantee deposit was not paid"])
            for case_id, view in views.items():
                if view["awaiting_supplement"]:
                    await front.post(f"/v1/cases/{case_id}/supplements", json={"documents": ["补正材料"]})
            await asyncio.sleep(0.2)
    raise AssertionError(f"not there in {timeout}s: {[(c, v['status']) for c, v in views.items()]}")


async def test_a_commitment_approves_at_once_and_a_failed_verification_revokes_it_and_reopens_the_case(
    stack: Settings, exchange: AppProcesses
) -> None:
    async with officers_decide(stack, "housing"), Tail(stack.kafka(ADMIN), "deliver.housing") as housing, \
            Tail(stack.kafka(ADMIN), "deliver.coordination") as coordination:
        kept = await submit(stack, OFFICE, commitments=["HOU-302"])
        broken = await submit(stack, OFFICE, commitments=["HOU-302"])
        views = await housing_officers(stack, {kept: "passed", broken: "failed"})
        approved = await housing.wait_for(lambda r: header(r, "ce_type") == "bureau.commitment-approved"
                                          and r.key in (kept.encode(), broken.encode()), count=2)
        assert {json.loads(r.value)["item_code"] for r in approved} == {"HOU-302"}
        [revoked] = await coordination.wait_for(lambda r: header(r, "ce_type") == "bureau.approval-revoked"
                                                and r.key == broken.encode())
        # the permit asked for again comes to housing as an ordinary request
        asked = json.loads(revoked.value)
        await housing.wait_for(lambda r: header(r, "ce_type") == "bureau.opinion-requested"
                               and json.loads(r.value)["request_id"] == asked["reopened_request_id"])
    assert asked["case_reopened"] and asked["findings"] == ["the wage guarantee deposit was not paid"]

    [standing] = permit(views[kept])
    assert standing["on_commitment"] and standing["verification"] == "passed" and standing["revoked_at"] is None
    assert standing["decided_at"] == standing["requested_at"]  # approved at once, on the commitment
    assert not views[kept]["reopened"]

    first, again = sorted(permit(views[broken]), key=lambda r: str(r["requested_at"]))
    assert first["on_commitment"] and first["verification"] == "failed" and first["status"] == "withdrawn"
    assert not again["on_commitment"] and again["request_id"] == asked["reopened_request_id"]
    assert again["decision"] == "approved"
    [reopening] = views[broken]["reopened"]
    steps = [(m["step"], m["at"]) for m in views[broken]["timeline"]]
    names = [s for s, _ in steps]
    assert names.index("approved on commitment") < names.index("completed") < names.index("verification failed") \
        <= names.index("approval revoked") <= names.index("reopened")
    assert ("completed", reopening["completed_at"]) in steps and ("reopened", reopening["reopened_at"]) in steps
    assert names[-1] == "completed"  # and completed again at the end
