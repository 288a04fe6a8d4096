"""On the real gateway: the sharing catalogue shows an agreement in force, a masked field reaches a consumer
without an agreement as its mask, a class the gateway cannot apply is refused at registration, and a nested one
it can is applied when routing."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from base.settings import ADMIN, Settings
from contracts.envelope import encode, encode_payload
from contracts.masks import KeyedHash
from deploy.processes import AppProcesses
from tests.e2e.test_sharing_agreements import revoke_all
from tests.factories import business_registration
from tests.integration.test_registry_api import gateway_url, licence_schema
from tests.tools import Tail, bearer, http_client, produce, run_concord

REPRESENTATIVE = "legal_representative"
SUBMITTED, CONTACT = "bureau.case-submitted", "contact_person"


def entry(entries: list[dict[str, Any]], contract: str, path: str) -> dict[str, Any]:
    [found] = [e for e in entries if e["contract"] == contract and e["path"] == path]
    return found


async def test_the_catalogue_shows_who_receives_a_conditional_field_under_an_agreement_in_force(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    # The bureau's rules answer only the requests a review of its cases waits for: this one is its officer's (here,
    # the test's). Environment takes no contact of the applicant by its own rules.
    async with http_client(base_url=gateway_url(stack)) as http:
        assert (await http.get("/v1/catalogue")).status_code == 401
        await revoke_all(http, "environment", tokens["environment"])
        requested = await http.post("/v1/agreements", headers=bearer(tokens["environment"]), json={
            "contract": SUBMITTED, "fields": [CONTACT],
            "purpose": "catalogue test: whom to call about an impact assessment",
            "legal_basis": "《建设项目环境保护管理条例》"})
        assert requested.status_code == 201, requested.text
        agreement = requested.json()["id"]
        before = (await http.get("/v1/catalogue", headers=bearer(tokens["environment"]))).json()
        assert "environment" not in {r["department"] for r in entry(before, SUBMITTED, CONTACT)["receivers"]}
        approved = await http.post(f"/v1/agreements/{agreement}/approve", headers=bearer(tokens["bureau"]))
        assert approved.status_code == 200 and approved.json()["in_force"]
        try:
            now = (await http.get("/v1/catalogue", headers=bearer(tokens["planning"]))).json()
            field = entry(now, SUBMITTED, CONTACT)
            assert field["sharing"] == "conditional" and field["owner"] == "bureau" and field["mask"] == "keyed-hash"
            environment = [r for r in field["receivers"] if r["department"] == "environment"]
            assert environment == [{"department": "environment", "agreements": [agreement], "cases": 0}]
            assert "environment" not in field["masked_for"] and "water" in field["masked_for"]
            assert entry(now, SUBMITTED, "agent")["receivers"] == []  # not shared: nobody, ever
            listed = await run_concord("catalogue", "--json", "--contract", SUBMITTED)
            assert listed.code == 0, listed.err
            assert {"department": "environment", "agreements": [agreement], "cases": 0} in \
                entry(json.loads(listed.out), SUBMITTED, CONTACT)["receivers"]
        finally:
            revoked = await http.post(f"/v1/agreements/{agreement}/revoke", json={"reasons": "catalogue test done"},
                                      headers=bearer(tokens["environment"]))
            assert revoked.status_code == 200
        after = (await http.get("/v1/catalogue", headers=bearer(tokens["operator"]))).json()
        assert "environment" in entry(after, SUBMITTED, CONTACT)["masked_for"]


async def test_a_consumer_without_an_agreement_receives_the_mask_keyed_with_the_gateways_key(
    stack: Settings, exchange: AppProcesses
) -> None:
    case_id = f"G-MASK-{uuid.uuid4().hex[:8]}"
    registration = business_registration(case_id, legal_representative=f"代表{uuid.uuid4().hex[:4]}")
    async with Tail(stack.kafka(ADMIN), "deliver.planning") as planning:
        await produce(stack.kafka("market"), "ingress.market", encode(registration, source="/concord/market"))
        [delivered] = await planning.wait_for(lambda r: r.key == case_id.encode())
    seen = json.loads(delivered.value)
    assert seen[REPRESENTATIVE] == KeyedHash().apply(registration.legal_representative, stack.secrets.mask_key())
    assert registration.legal_representative not in delivered.value.decode()
    assert "representative_id_number" not in seen and seen["name"] == registration.name


async def test_registration_refuses_a_class_the_gateway_cannot_apply_and_a_nested_one_it_can_is_applied(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    contract_id = f"market.licence-{uuid.uuid4().hex[:8]}"
    chosen = licence_schema(contract_id)
    chosen["properties"]["holder"] = {"x-sharing": "unconditional", "oneOf": [
        {"type": "object", "properties": {"id_number": {"type": "string", "x-sharing": "not_shared"}}},
        {"type": "string"}]}
    masked = copy.deepcopy(licence_schema(contract_id))
    masked["properties"]["legal_person_id"]["x-mask"] = {"kind": "first-characters"}
    async with http_client(base_url=gateway_url(stack), headers=bearer(tokens["market"])) as http:
        for schema, said in ((chosen, "oneOf"), (masked, "x-mask")):
            refused = await http.post(f"/v1/contracts/{contract_id}/versions", json={"schema": schema})
            assert refused.status_code == 422 and refused.json()["kind"] == "invalid", refused.text
            assert any(said in problem for problem in refused.json()["problems"]), refused.json()
        nested = licence_schema(contract_id)
        nested["properties"]["holder"] = {"type": "object", "x-sharing": "unconditional", "properties": {
            "name": {"type": "string"},
            "id_number": {"type": "string", "x-sharing": "conditional", "x-legal-basis": "《市场主体登记管理条例》",
                          "x-mask": {"kind": "birth-year"}}}}
        accepted = await http.post(f"/v1/contracts/{contract_id}/versions", json={"schema": nested})
        assert accepted.status_code == 201, accepted.text
    version = accepted.json()["version"]

    # Routed on the real router, once the admin has made its shared topic: the nested conditional member reaches a
    # consumer as its mask, the exchange's own record keeps it whole.
    provisioned = await run_concord("topics", "ensure")
    assert provisioned.code == 0, provisioned.err
    case_id = f"G-NEST-{uuid.uuid4().hex[:8]}"
    id_number = "110105198807150021"
    event = {"case_id": case_id, "credit_code": "91110000MA01ABCD2X", "scope": "餐饮服务",
             "holder": {"name": "王五", "id_number": id_number}}
    record = encode_payload(json.dumps(event, ensure_ascii=False).encode(), contract_id=contract_id, version=version,
                            subject=case_id, source="/concord/market")
    async with Tail(stack.kafka(ADMIN), "deliver.housing") as housing:
        await produce(stack.kafka("market"), "ingress.market", record)
        [delivered] = await housing.wait_for(lambda r: r.key == case_id.encode(), timeout=60)
    async with Tail(stack.kafka(ADMIN), f"shared.{contract_id}", from_start=True) as shared:
        [kept] = await shared.wait_for(lambda r: r.key == case_id.encode(), timeout=60)
    assert json.loads(delivered.value)["holder"] == {"name": "王五", "id_number": "1988"}
    assert id_number not in delivered.value.decode()
    assert json.loads(kept.value)["holder"]["id_number"] == id_number
