"""Sharing agreements end to end: a conditional field reaches a consumer only under an approved agreement,
stops at revocation and expiry; a not-shared field never reaches any deliver topic; requests left
unanswered are reminded and escalated on the working-day clock; history is backfilled on approval."""

from __future__ import annotations

import json
import random
import re
from datetime import datetime, timedelta
from typing import Any

import httpx

from base.clock import AcceleratedClock
from base.settings import ADMIN, Settings
from contracts.masks import KeyedHash
from deploy.processes import AppProcesses
from services.bureau.samples import application
from tests.tools import Record, Tail, bearer, clock_reaches, header, http_client

CONTACT = ["contact_person", "contact_phone"]


def masked_contact(seen: dict[str, Any], seed: int) -> bool:
    """Whether a delivery holds the applicant's contact masked as the contract says (the phone's last four, a
    keyed hash of the person), never in clear."""
    sent = application(random.Random(seed))
    return seen["contact_phone"] == "****" + sent.contact_phone[-4:] \
        and re.fullmatch("[0-9a-f]{64}", seen["contact_person"]) is not None


def urls(stack: Settings) -> tuple[str, str]:
    return (f"http://{stack.gateway_host}:{stack.gateway_port}", f"http://{stack.bureau_host}:{stack.bureau_port}")


async def submit_case(stack: Settings, seed: int) -> str:
    async with http_client(base_url=urls(stack)[1], headers=bearer(stack.credentials("bureau").http_token)) \
            as http:
        response = await http.post("/v1/cases", content=application(random.Random(seed)).model_dump_json(),
                                   headers={"content-type": "application/json"})
        assert response.status_code == 201
        return str(response.json()["case_id"])


def case_submitted(case_id: str) -> Any:
    return lambda r: r.key == case_id.encode() and header(r, "ce_type") == "bureau.case-submitted"


def payload(record: Record) -> dict[str, Any]:
    return dict(json.loads(record.value))


async def request_agreement(http: httpx.AsyncClient, token: str, fields: list[str], **extra: Any) -> dict[str, Any]:
    body = {"contract": "bureau.case-submitted", "fields": fields, "purpose": "fire-protection design review",
            "legal_basis": "《建设工程消防设计审查验收管理暂行规定》第十五条", **extra}
    response = await http.post("/v1/agreements", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def revoke_all(http: httpx.AsyncClient, consumer: str, token: str) -> None:
    """Start from no agreement in force (an earlier run on this stack may have left one)."""
    kept = 0  # those on the pages that stay as they are (the department provides them): the next page is after them
    while True:
        page = (await http.get("/v1/agreements", headers=bearer(token), params={
            "status": ["approved", "suspended"], "limit": 200, "offset": kept})).json()
        for agreement in page["agreements"]:
            revoked = agreement["consumer"] == consumer and (await http.post(
                f"/v1/agreements/{agreement['id']}/revoke", json={"reasons": "test set-up"},
                headers=bearer(token))).status_code == 200
            kept += not revoked
        if page["next_offset"] is None:
            return


async def test_conditional_fields_flow_only_under_an_agreement_in_force(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    gateway = urls(stack)[0]
    async with http_client(base_url=gateway) as http:
        await revoke_all(http, "housing", tokens["housing"])
    async with http_client(base_url=gateway) as http, \
            Tail(stack.kafka(ADMIN), "deliver.housing") as housing, \
            Tail(stack.kafka(ADMIN), "deliver.bureau") as bureau:
        before = await submit_case(stack, 101)
        [seen] = await housing.wait_for(case_submitted(before))
        assert masked_contact(payload(seen), 101) and "agent" not in payload(seen)

        agreement = await request_agreement(http, tokens["housing"], CONTACT)
        assert agreement["status"] == "pending" and agreement["provider"] == "bureau"
        [asked] = await bureau.wait_for(lambda r: header(r, "ce_type") == "exchange.agreement-requested"
                                        and payload(r)["agreement_id"] == agreement["id"])
        assert payload(asked)["consumer"] == "housing"

        not_provider = await http.post(f"/v1/agreements/{agreement['id']}/approve", headers=bearer(tokens["housing"]))
        assert not_provider.status_code == 403
        approved = await http.post(f"/v1/agreements/{agreement['id']}/approve", headers=bearer(tokens["bureau"]))
        assert approved.json()["status"] == "approved" and approved.json()["in_force"]
        [told] = await housing.wait_for(lambda r: header(r, "ce_type") == "exchange.agreement-decided"
                                        and payload(r)["agreement_id"] == agreement["id"])
        assert payload(told)["outcome"] == "approved"

        during = await submit_case(stack, 102)
        [seen] = await housing.wait_for(case_submitted(during))
        sent = application(random.Random(102))
        assert (payload(seen)["contact_phone"], payload(seen)["contact_person"]) == \
            (sent.contact_phone, sent.contact_person)
        assert "agent" not in payload(seen)

        # a backfill reads the contract's shared topic from its start before it answers: given as long as the
        # command line gives it (base.runtime.api_client)
        replay = await http.post(f"/v1/agreements/{agreement['id']}/backfill", headers=bearer(tokens["housing"]),
                                 timeout=60)
        assert replay.status_code == 200 and replay.json()["events"] >= 1
        replayed = await housing.wait_for(lambda r: header(r, "concord_backfill") == agreement["id"]
                                          and r.key == during.encode())
        assert payload(replayed[0])["contact_phone"] == sent.contact_phone
        assert not [r for r in housing.records if header(r, "concord_backfill") and r.key == before.encode()]

        refused = await http.post(f"/v1/agreements/{agreement['id']}/revoke", json={"reasons": ""},
                                  headers=bearer(tokens["bureau"]))
        assert refused.status_code == 422
        revoked = await http.post(f"/v1/agreements/{agreement['id']}/revoke",
                                  json={"reasons": "the review is finished"}, headers=bearer(tokens["bureau"]))
        assert revoked.json()["status"] == "revoked"
        after = await submit_case(stack, 103)
        [seen] = await housing.wait_for(case_submitted(after))
        assert masked_contact(payload(seen), 103)


async def test_a_not_shared_field_never_reaches_any_deliver_topic(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    consumers = ["devreform", "planning", "environment", "housing", "airdefence", "market", "water", "coordination"]
    async with http_client(base_url=urls(stack)[0]) as http:
        refused = await http.post("/v1/agreements", headers=bearer(tokens["housing"]), json={
            "contract": "bureau.case-submitted", "fields": ["agent"], "purpose": "to know the agent",
            "legal_basis": "none that allows it"})
        assert refused.status_code == 422 and "not shared" in refused.text
    tails = [Tail(stack.kafka(ADMIN), f"deliver.{d}") for d in consumers]
    tails.append(Tail(stack.kafka(ADMIN), "shared.bureau.case-submitted"))
    for tail in tails:
        await tail.__aenter__()
    try:
        case_id = await submit_case(stack, 104)
        for tail in tails:
            [seen] = await tail.wait_for(case_submitted(case_id))
            assert "agent" not in payload(seen), tail.topic
            assert payload(seen)["project"]
    finally:
        for tail in tails:
            await tail.__aexit__(None, None, None)


async def test_unconditional_fields_are_granted_at_once_and_make_a_consumer(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    async with http_client(base_url=urls(stack)[0]) as http, \
            Tail(stack.kafka(ADMIN), "deliver.coordination") as coordination:
        response = await http.post("/v1/agreements", headers=bearer(tokens["coordination"]), json={
            "contract": "bureau.opinion-issued", "fields": ["request_id", "case_id", "decision", "reasons"],
            "purpose": "follow the departments' opinions", "legal_basis": "联席会议制度 第三条"})
        assert response.status_code == 201 and response.json()["status"] == "approved"
        case_id = await submit_case(stack, 105)
        opinions = await coordination.wait_for(
            lambda r: r.key == case_id.encode() and header(r, "ce_type") == "bureau.opinion-issued")
        assert all("officer" not in payload(opinion) for opinion in opinions)  # departments answer in parallel
        await http.post(f"/v1/agreements/{response.json()['id']}/revoke", json={"reasons": "done"},
                        headers=bearer(tokens["coordination"]))


async def test_an_unanswered_request_is_reminded_at_half_time_and_escalated_when_overdue(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str], clock: AcceleratedClock
) -> None:
    async with http_client(base_url=urls(stack)[0]) as http, \
            Tail(stack.kafka(ADMIN), "deliver.bureau") as bureau, \
            Tail(stack.kafka(ADMIN), "deliver.coordination") as coordination:
        agreement = await request_agreement(http, tokens["airdefence"], ["contact_phone"])
        [reminder] = await bureau.wait_for(lambda r: header(r, "ce_type") == "exchange.agreement-reminder"
                                           and payload(r)["agreement_id"] == agreement["id"], timeout=60)
        [escalation] = await coordination.wait_for(
            lambda r: header(r, "ce_type") == "exchange.agreement-escalated"
            and payload(r)["agreement_id"] == agreement["id"], timeout=60)
        assert payload(escalation)["provider"] == "bureau" and payload(escalation)["working_days_late"] >= 0
        reminded_at = datetime.fromisoformat(header(reminder, "ce_time") or "")
        escalated_at = datetime.fromisoformat(header(escalation, "ce_time") or "")
        assert reminded_at >= datetime.fromisoformat(agreement["remind_at"])
        assert escalated_at >= datetime.fromisoformat(agreement["due_at"])
        assert reminded_at < datetime.fromisoformat(agreement["due_at"])
        late = await http.get(f"/v1/agreements/{agreement['id']}", headers=bearer(tokens["airdefence"]))
        assert late.json()["reminded_at"] and late.json()["escalated_at"] and late.json()["status"] == "pending"
        rejected = await http.post(f"/v1/agreements/{agreement['id']}/reject", json={"reasons": "no legal basis"},
                                   headers=bearer(tokens["bureau"]))
        assert rejected.json()["status"] == "rejected" and rejected.json()["reasons"] == "no legal basis"
    assert clock.now() > clock.start + timedelta(days=10)


async def test_an_expired_agreement_stops_delivery(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str], clock: AcceleratedClock
) -> None:
    async with http_client(base_url=urls(stack)[0]) as http:
        await revoke_all(http, "environment", tokens["environment"])
    async with http_client(base_url=urls(stack)[0]) as http, \
            Tail(stack.kafka(ADMIN), "deliver.environment") as environment:
        until = clock.now() + timedelta(days=6)  # about 2.6 real seconds: the case below is seen before
        agreement = await request_agreement(http, tokens["environment"], ["contact_phone"],
                                            valid_until=until.isoformat())
        await http.post(f"/v1/agreements/{agreement['id']}/approve", headers=bearer(tokens["bureau"]))
        during = await submit_case(stack, 106)
        [seen] = await environment.wait_for(case_submitted(during))
        assert payload(seen)["contact_phone"] == application(random.Random(106)).contact_phone
        await clock_reaches(clock, until + timedelta(hours=6))
        after = await submit_case(stack, 107)
        [seen] = await environment.wait_for(case_submitted(after))
        assert masked_contact(payload(seen), 107)


async def test_market_regulation_shares_the_registration_but_only_a_token_of_the_representative_without_an_agreement(
    stack: Settings, exchange: AppProcesses
) -> None:
    async with Tail(stack.kafka(ADMIN), "deliver.devreform") as devreform, \
            Tail(stack.kafka(ADMIN), "deliver.bureau") as bureau, \
            Tail(stack.kafka(ADMIN), "shared.market.business-registration") as record:
        case_id = await submit_case(stack, 108)
        registered = lambda r: r.key == case_id.encode() and header(r, "ce_type") == "market.business-registration"  # noqa: E731
        [seen] = await devreform.wait_for(registered)
        [told] = await bureau.wait_for(registered)
        [kept] = await record.wait_for(registered)
    assert header(seen, "concord_sender") == "market"
    for delivered in (payload(seen), payload(told)):
        assert delivered["status"] in {"in_business", "revoked"} and delivered["credit_code"]
        assert "representative_id_number" not in delivered
        assert delivered["legal_representative"] == KeyedHash().apply(payload(kept)["legal_representative"],
                                                                      stack.secrets.mask_key())
    assert payload(kept)["legal_representative"] and "representative_id_number" not in payload(kept)
