"""The contract registry over HTTP, on the real gateway and PostgreSQL."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from base.settings import Settings
from contracts.bureau import CaseSubmitted
from deploy.processes import AppProcesses
from tests.tools import bearer, http_client


def gateway_url(stack: Settings) -> str:
    return f"http://{stack.gateway_host}:{stack.gateway_port}"


def licence_schema(contract_id: str) -> dict[str, Any]:
    """A business licence contract of market regulation, as a publisher would write it by hand."""
    return {
        "type": "object", "additionalProperties": False, "title": "LicenceIssued",
        "properties": {
            "case_id": {"type": "string", "x-sharing": "unconditional"},
            "credit_code": {"type": "string", "minLength": 18, "maxLength": 18, "x-sharing": "unconditional"},
            "scope": {"type": "string", "x-sharing": "unconditional"},
            "legal_person_id": {"type": "string", "x-sharing": "conditional",
                                "x-legal-basis": "《市场主体登记管理条例》"},
        },
        "required": ["case_id", "credit_code", "scope"],
        "x-contract": {"id": contract_id, "owner": "market", "publishers": ["market"],
                       "consumers": ["bureau", "housing"], "subject": "case_id"},
    }


@pytest.fixture
def contract_id() -> str:
    return f"market.licence-{uuid.uuid4().hex[:8]}"


async def test_contracts_in_code_are_registered_and_served(stack: Settings, exchange: AppProcesses) -> None:
    async with http_client(base_url=gateway_url(stack)) as http:
        listed = {c["id"]: c for c in (await http.get("/v1/contracts")).json()}
        assert listed["bureau.case-submitted"]["owner"] == "bureau"
        assert 1 in listed["bureau.case-submitted"]["versions"]
        assert (await http.get("/v1/contracts/bureau.case-submitted/versions")).json()[0] == 1
        schema = (await http.get("/v1/contracts/bureau.case-submitted/versions/1/schema")).json()
        assert schema == CaseSubmitted.CONTRACT.json_schema
        assert (await http.get("/v1/contracts/bureau.nothing/versions")).status_code == 404
        assert (await http.get("/docs")).status_code == 200


async def test_registering_versions_under_a_compatibility_mode(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str], contract_id: str
) -> None:
    v1 = licence_schema(contract_id)
    v2_breaking = copy.deepcopy(v1)
    v2_breaking["properties"]["capital"] = {"type": "number", "x-sharing": "unconditional"}
    v2_breaking["required"].append("capital")  # a new required field: old events no longer valid
    async with http_client(base_url=gateway_url(stack), headers=bearer(tokens["market"])) as http:
        created = await http.post(f"/v1/contracts/{contract_id}/versions", json={"schema": v1})
        assert created.status_code == 201 and created.json()["version"] == 1
        again = await http.post(f"/v1/contracts/{contract_id}/versions", json={"schema": v1})
        assert again.status_code == 200 and again.json() == {"id": contract_id, "version": 1, "created": False,
                                                             "shared_topic": f"shared.{contract_id}"}

        refused = await http.post(f"/v1/contracts/{contract_id}/versions", json={"schema": v2_breaking})
        assert refused.status_code == 409
        assert any(line.startswith("REQUIRED_") for line in refused.json()["incompatibilities"])
        assert (await http.get(f"/v1/contracts/{contract_id}/config")).json() == {"compatibility": "BACKWARD"}

        relaxed = await http.put(f"/v1/contracts/{contract_id}/config", json={"compatibility": "NONE"})
        assert relaxed.status_code == 200
        accepted = await http.post(f"/v1/contracts/{contract_id}/versions", json={"schema": v2_breaking})
        assert accepted.status_code == 201 and accepted.json()["version"] == 2
        assert (await http.get(f"/v1/contracts/{contract_id}/versions")).json() == [1, 2]
        stored = (await http.get(f"/v1/contracts/{contract_id}/versions/2/schema")).json()
        assert stored["x-contract"]["version"] == 2


async def test_a_contract_must_class_every_field_and_only_its_owner_registers_it(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str], contract_id: str
) -> None:
    unclassed = licence_schema(contract_id)
    del unclassed["properties"]["scope"]["x-sharing"]
    no_basis = licence_schema(contract_id)
    del no_basis["properties"]["legal_person_id"]["x-legal-basis"]
    open_model = licence_schema(contract_id) | {"additionalProperties": True}
    async with http_client(base_url=gateway_url(stack)) as http:
        url = f"/v1/contracts/{contract_id}/versions"
        for bad, expected in [(unclassed, "sharing class"), (no_basis, "x-legal-basis"), (open_model, "closed")]:
            response = await http.post(url, json={"schema": bad}, headers=bearer(tokens["market"]))
            assert response.status_code == 422 and expected in response.text
        forged = await http.post(url, json={"schema": licence_schema(contract_id)}, headers=bearer(tokens["planning"]))
        assert forged.status_code == 403
        assert (await http.post(url, json={"schema": licence_schema(contract_id)})).status_code == 401
        assert (await http.post(url, json={"schema": licence_schema(contract_id)},
                                headers=bearer("cnc_market_forged"))).status_code == 401
        assert (await http.get(f"/v1/contracts/{contract_id}/versions")).status_code == 404


async def test_versions_are_numbered_by_what_is_registered(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str], contract_id: str
) -> None:
    v1 = licence_schema(contract_id)
    v2 = copy.deepcopy(v1)
    v2["properties"]["capital"] = {"type": "number", "x-sharing": "unconditional"}
    v3 = copy.deepcopy(v2)
    v3["properties"]["district"] = {"type": "string", "x-sharing": "unconditional"}
    url = f"/v1/contracts/{contract_id}/versions"
    async with http_client(base_url=gateway_url(stack), headers=bearer(tokens["market"])) as http:
        # no version named: the registry gives the next free one, and the stored schema names it
        assert (await http.post(url, json={"schema": v1})).json()["version"] == 1
        assert (await http.post(url, json={"schema": v2 | {"x-contract": {**v2["x-contract"], "version": 2}}})
                ).status_code == 201
        assert (await http.get(f"{url}/1/schema")).json()["x-contract"]["version"] == 1

        # the same content again, whatever version it names: which version it is, nothing registered
        for named in (None, 1, 2, 5):
            again = await http.post(url, json={"schema": v1 | {"x-contract": {**v1["x-contract"], "version": named}}})
            assert (again.status_code, again.json()["version"], again.json()["created"]) == (200, 1, False), named

        # other content under a registered number: refused, naming the version taken and the next free one
        taken = await http.post(url, json={"schema": v3 | {"x-contract": {**v3["x-contract"], "version": 2}}})
        assert taken.status_code == 409
        assert (taken.json()["kind"], taken.json()["next_version"]) == ("version_taken", 3)
        assert taken.json()["detail"].startswith(
            f"version 2 of {contract_id} is registered with other content; the next free version is 3")
        skipped = await http.post(url, json={"schema": v3 | {"x-contract": {**v3["x-contract"], "version": 5}}})
        assert skipped.status_code == 409
        assert (skipped.json()["kind"], skipped.json()["next_version"]) == ("version_skipped", 3)
        assert (await http.get(url)).json() == [1, 2]

        created = await http.post(url, json={"schema": v3})
        assert (created.status_code, created.json()["version"]) == (201, 3)


async def test_a_refusal_says_its_kind_and_the_body_is_the_schema_alone(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str], contract_id: str
) -> None:
    v1 = licence_schema(contract_id)
    breaking = copy.deepcopy(v1)
    breaking["required"].append("legal_person_id")
    url = f"/v1/contracts/{contract_id}/versions"
    async with http_client(base_url=gateway_url(stack), headers=bearer(tokens["market"])) as http:
        extra = await http.post(url, json={"schema": v1, "version": 1})
        assert extra.status_code == 422  # a member the body does not have is refused, not ignored
        assert (await http.post(url, json={"schema": v1})).status_code == 201
        refused = await http.post(url, json={"schema": breaking})
        assert refused.status_code == 409
        assert refused.json() | {"detail": ""} == {
            "detail": "", "kind": "incompatible", "compatibility": "BACKWARD",
            "incompatibilities": ["REQUIRED_ATTRIBUTE_ADDED #/required/legal_person_id"]}
        invalid = await http.post(url, json={"schema": v1 | {"additionalProperties": True}})
        assert (invalid.status_code, invalid.json()["kind"]) == (422, "invalid")
        forged = await http.post(url, json={"schema": v1}, headers=bearer(tokens["planning"]))
        assert (forged.status_code, forged.json()["kind"]) == (403, "not_owner")
