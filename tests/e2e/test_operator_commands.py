"""The console's views from a terminal: `concord lag`, `concord tail` (masked exactly as the console masks) and
`concord rejections`, run as an operator would, on the real exchange."""

from __future__ import annotations

import json
import uuid

from base.settings import Settings
from contracts.base import Sharing
from contracts.departments import SERVICE_DEPARTMENTS
from deploy.processes import AppProcesses
from gateway.masking import MASKS
from tests.factories import opinion_issued
from tests.integration.test_ingest_and_rejections import structured
from tests.tools import bearer, concord, eventually, http_client, run_concord


async def test_lag_lists_every_departments_consumer(exchange: AppProcesses) -> None:
    found: list[dict[str, object]] = []

    async def sampled() -> bool:
        ran = await run_concord("lag", "--json")
        if ran.code == 0:
            found[:] = json.loads(ran.out)
        return ran.code == 0

    await eventually(sampled)
    mine = {(row["department"], row["topic"]) for row in found}
    assert {(d, f"deliver.{d}") for d in SERVICE_DEPARTMENTS} <= mine
    assert {("gateway", f"ingress.{d}") for d in SERVICE_DEPARTMENTS} <= mine
    assert all(isinstance(row["lag"], int) and 0 <= row["lag"] <= row["end"] for row in found)  # type: ignore[operator]
    code, table = await concord("lag", "--department", "planning")
    assert code == 0 and "deliver.planning" in table and "deliver.water" not in table


async def test_tail_masks_as_the_console_does_and_rejections_say_why(
        stack: Settings, exchange: AppProcesses, tokens: dict[str, str]) -> None:
    secret = f"私密-{uuid.uuid4().hex[:10]}"
    body = structured(opinion_issued(f"G-TAIL-{uuid.uuid4().hex[:8]}"))
    body["data"] |= {"officer": secret, "unexpected": "x"}
    async with http_client(base_url=stack.gateway_address, timeout=30) as http:
        answer = await http.post("/v1/events", json=body, headers=bearer(tokens["planning"]))
    assert answer.status_code == 422, answer.text

    ran = await run_concord("tail", "deadletter.planning", "-n", "50", "--json")
    assert ran.code == 0, ran.err
    assert secret not in ran.out
    [record] = [json.loads(line) for line in ran.out.splitlines() if body["id"] in line]
    assert record["payload"]["officer"] == MASKS[Sharing.NOT_SHARED]
    assert record["payload"]["unexpected"] == MASKS[None]
    assert record["payload"]["case_id"] == body["data"]["case_id"]
    assert record["headers"]["concord_reason"] == "schema_violation"

    code, out = await concord("rejections", "--department", "planning", "--json")
    assert code == 0
    assert any(r["event_id"] == body["id"] and r["reason"] == "schema_violation" for r in json.loads(out))

    denied = await run_concord("tail", "deliver.water", "--token", tokens["planning"])
    assert denied.code == 1 and "403" in denied.err
