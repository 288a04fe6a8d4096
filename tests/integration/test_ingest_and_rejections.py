"""Events over HTTP, and every rejection reason reaching the dead-letter topic, the sender's notice and the
audit log, on the real gateway."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from base.settings import ADMIN, Settings
from base.tokens import parse, salted_hash
from contracts.departments import OPERATOR
from contracts.envelope import encode_payload
from deploy.processes import AppProcesses
from tests.factories import case_submitted, opinion_issued
from tests.tools import Tail, bearer, eventually, header, http_client, produce


def gateway_url(stack: Settings) -> str:
    return f"http://{stack.gateway_host}:{stack.gateway_port}"


def structured(event: Any, source: str = "/legacy/planning", **changes: Any) -> dict[str, Any]:
    contract = type(event).CONTRACT
    body = {"specversion": "1.0", "id": f"http-{uuid.uuid4().hex[:10]}", "source": source, "type": contract.id,
            "subject": getattr(event, contract.subject_field), "time": "2026-11-27T10:00:00+08:00",
            "dataschema": f"urn:concord:contract:{contract.id}:{contract.version}",
            "datacontenttype": "application/json", "data": event.model_dump(mode="json")}
    return body | changes


async def audited(stack: Settings, event_id: str) -> dict[str, Any]:
    """The audit entry of an event, once the keeper has it in PostgreSQL."""
    found: dict[str, Any] = {}

    async def kept() -> bool:
        async with http_client(base_url=gateway_url(stack)) as http:
            operator = bearer(stack.credentials(OPERATOR).http_token)
            for entry in (await http.get("/v1/audit", params={"limit": 10_000}, headers=operator)).json():
                if entry.get("event_id") == event_id:
                    found.update(entry)
                    return True
        return False

    await eventually(kept)
    return found


async def test_an_event_over_http_is_routed_like_any_other(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    case_id = f"G-HTTP-{uuid.uuid4().hex[:8]}"
    body = structured(opinion_issued(case_id))
    async with http_client(base_url=gateway_url(stack)) as http, \
            Tail(stack.kafka(ADMIN), "deliver.bureau") as bureau:
        response = await http.post("/v1/events", json=body, headers=bearer(tokens["planning"]))
        assert response.status_code == 200, response.text  # the router's verdict, not a guess
        verdict = response.json()
        assert verdict["outcome"] == "routed" and verdict["delivered_to"] == ["bureau"]
        assert verdict["topic"] == "ingress.planning" and verdict["status_url"] == f"/v1/events/{body['id']}"
        [delivered] = await bureau.wait_for(lambda r: r.key == case_id.encode())
        assert header(delivered, "concord_sender") == "planning"  # the token's department, not the body's source
        assert header(delivered, "ce_id") == body["id"]
        assert "officer" not in json.loads(delivered.value)
        assert (await http.post("/v1/events", json=body)).status_code == 401


async def test_tokens_are_stored_as_salted_hashes_only(stack: Settings, tokens: dict[str, str]) -> None:
    presented = parse(tokens["planning"])
    assert presented is not None
    connection = await asyncpg.connect(stack.admin_dsn)
    try:
        row = await connection.fetchrow("SELECT * FROM gateway.credentials WHERE id = $1", presented.id)
    finally:
        await connection.close()
    assert row["principal"] == "planning" and row["revoked_at"] is None
    assert bytes(row["token_hash"]) == salted_hash(bytes(row["token_salt"]), presented.secret)
    stored = repr(dict(row))
    assert presented.secret not in stored and stack.credentials("planning").kafka.password not in stored


async def test_bad_events_over_http_are_refused_with_the_reason_and_dead_lettered(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    invalid = structured(opinion_issued(f"G-HTTP-{uuid.uuid4().hex[:8]}"))
    invalid["data"]["decision"] = "perhaps"
    forged = structured(case_submitted(f"G-HTTP-{uuid.uuid4().hex[:8]}"))
    async with http_client(base_url=gateway_url(stack), headers=bearer(tokens["planning"])) as http, \
            Tail(stack.kafka(ADMIN), "deadletter.planning") as dead:
        schema = await http.post("/v1/events", json=invalid)
        assert schema.status_code == 422 and schema.json()["reason"] == "schema_violation"
        assert "decision" in schema.json()["detail"] and schema.json()["deadletter"] == "deadletter.planning"
        not_ours = await http.post("/v1/events", json=forged)
        assert not_ours.status_code == 422 and not_ours.json()["reason"] == "producer_not_authorised"
        garbage = await http.post("/v1/events", content=b"{not json", headers={"content-type": "application/json"})
        assert garbage.status_code == 422 and garbage.json()["reason"] == "malformed_envelope"
        assert garbage.json()["detail"].startswith("the body is not JSON")  # said of the body, not of headers
        lost = await dead.wait_for(lambda r: header(r, "concord_ingress") is not None and (
            header(r, "ce_id") in {invalid["id"], forged["id"]} or r.value == b"{not json"), count=3)
        assert {header(r, "concord_reason") for r in lost} == {"schema_violation", "producer_not_authorised",
                                                               "malformed_envelope"}
        entry = await audited(stack, invalid["id"])
        assert entry["action"] == "rejected" and entry["reason"] == "schema_violation"
        mine = (await http.get("/v1/rejections")).json()
        assert invalid["id"] in {e["event_id"] for e in mine}


async def test_the_same_event_posted_twice_is_routed_once_and_another_under_its_id_refused_as_a_duplicate(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    """A legacy system that posts an event again (it did not hear the answer) is told it was routed, and it is
    delivered once; another event under the same id is refused. Every answer is final."""
    body = structured(opinion_issued(f"G-HTTP-{uuid.uuid4().hex[:8]}"))
    other = body | {"data": body["data"] | {"decision": "approved_with_conditions", "conditions": ["保留绿地"]}}
    async with http_client(base_url=gateway_url(stack), headers=bearer(tokens["planning"])) as http, \
            Tail(stack.kafka(ADMIN), "deliver.bureau") as bureau:
        first = await http.post("/v1/events", json=body)
        again = await http.post("/v1/events", json=body)
        duplicate = await http.post("/v1/events", json=other)
        assert (first.status_code, first.json()["outcome"]) == (200, "routed")
        assert (again.status_code, again.json()["outcome"], again.json()["delivered_to"]) == (200, "routed", ["bureau"])
        assert again.json()["offset"] > first.json()["offset"]  # a copy of its own, with the first copy's verdict
        assert (duplicate.status_code, duplicate.json()["reason"]) == (422, "duplicate_id")
        status = (await http.get(first.json()["status_url"])).json()
        assert [(c["outcome"], c.get("reason")) for c in status["copies"]] == [
            ("routed", None), ("refused", "duplicate_id")]  # a resend is no verdict of its own
        assert (await http.get(f"/v1/ingress/{again.json()['partition']}/{again.json()['offset']}")).json()[
            "outcome"] == "routed"
        # the duplicate came after both copies: everything they caused is delivered by now
        assert len([r for r in await bureau.drain() if header(r, "ce_id") == body["id"]]) == 1
        operator = bearer(stack.credentials(OPERATOR).http_token)
        assert (await http.get(first.json()["status_url"], headers=operator)).status_code == 422  # names no sender
        assert (await http.get(first.json()["status_url"], params={"department": "planning"},
                               headers=operator)).json() == status
        assert (await http.get(first.json()["status_url"], headers=bearer(tokens["water"]))).status_code == 404


async def test_a_body_that_is_no_cloudevent_is_told_what_is_wrong_with_it(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    event = structured(opinion_issued(f"G-HTTP-{uuid.uuid4().hex[:8]}"))
    no_data = {k: v for k, v in event.items() if k != "data"} | {"data_base64": ""}
    nameless = {k: v for k, v in event.items() if k not in ("id", "type")}
    async with http_client(base_url=gateway_url(stack), headers=bearer(tokens["planning"])) as http:
        for body, says in ((no_data, "data_base64 holds no bytes"),
                           (nameless, "CloudEvents attributes missing: id, type"),
                           ([event], "the body is a JSON list, not an object")):
            answer = await http.post("/v1/events", json=body)
            assert answer.status_code == 422 and answer.json()["outcome"] == "refused", answer.text
            assert answer.json()["detail"].startswith(says), answer.json()


async def test_an_oversized_payload_is_refused(stack: Settings, exchange: AppProcesses) -> None:
    case_id = f"G-BIG-{uuid.uuid4().hex[:8]}"
    big = opinion_issued(case_id).model_dump(mode="json") | {"reasons": ["x" * (stack.max_payload_bytes + 10)]}
    record = encode_payload(json.dumps(big).encode(), contract_id="bureau.opinion-issued", version=1,
                            subject=case_id, source="/concord/planning")
    event_id = dict(record.headers)["ce_id"].decode()
    async with Tail(stack.kafka(ADMIN), "deadletter.planning") as dead, \
            Tail(stack.kafka(ADMIN), "deliver.planning") as told:
        await produce(stack.kafka("planning"), "ingress.planning", record)
        [lost] = await dead.wait_for(lambda r: header(r, "ce_id") == event_id)
        assert header(lost, "concord_reason") == "payload_too_large" and lost.value == record.value
        [notice] = await told.wait_for(lambda r: header(r, "ce_type") == "exchange.event-rejected"
                                       and json.loads(r.value)["event_id"] == event_id)
        assert json.loads(notice.value)["reason"] == "payload_too_large"
    assert (await audited(stack, event_id))["reason"] == "payload_too_large"


async def test_an_unknown_contract_version_is_refused(stack: Settings, exchange: AppProcesses) -> None:
    record = encode_payload(b"{}", contract_id="bureau.opinion-issued", version=99, subject="G-X",
                            source="/concord/planning")
    event_id = dict(record.headers)["ce_id"].decode()
    async with Tail(stack.kafka(ADMIN), "deadletter.planning") as dead:
        await produce(stack.kafka("planning"), "ingress.planning", record)
        [lost] = await dead.wait_for(lambda r: header(r, "ce_id") == event_id)
        assert header(lost, "concord_reason") == "unknown_contract"
