"""A submission sent again with its Idempotency-Key (its answer was lost) opens no second case: the bureau answers
with the case the first one opened and a new applicant's token, and the first token no longer opens it."""

from __future__ import annotations

import random
import uuid

from base.settings import Settings
from deploy.processes import AppProcesses
from services.bureau.samples import application
from tests.e2e.cases import bureau
from tests.tools import bearer, http_client


async def test_a_submission_sent_again_with_its_key_opens_no_second_case(
        stack: Settings, exchange: AppProcesses) -> None:
    body = application(random.Random(uuid.uuid4().hex)).model_dump_json()
    key = f"test-{uuid.uuid4().hex}"
    headers = {"content-type": "application/json", "idempotency-key": key}
    async with bureau(stack) as http:
        first = await http.post("/v1/cases", content=body, headers=headers)
        again = await http.post("/v1/cases", content=body, headers=headers)
        other = await http.post("/v1/cases", content=body, headers={**headers, "idempotency-key": f"{key}-2"})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201), first.text
    assert again.json()["case_id"] == first.json()["case_id"] != other.json()["case_id"]
    async with http_client(base_url=f"http://{stack.bureau_host}:{stack.bureau_port}", timeout=30) as http:
        case = f"/v1/cases/{first.json()['case_id']}"
        assert (await http.get(case, headers=bearer(again.json()["case_token"]))).status_code == 200
        assert (await http.get(case, headers=bearer(first.json()["case_token"]))).status_code == 401
