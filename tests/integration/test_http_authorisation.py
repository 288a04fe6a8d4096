"""Every endpoint of the three HTTP APIs (gateway, bureau, desks) against every kind of caller: no token,
another department's, the right one, the operator's (and, at the bureau, a case's own token and another
case's). 401 without a valid token, 403 where the holder may not act, through otherwise. A table row per
endpoint, and a check that the table covers every endpoint each API publishes in its OpenAPI document."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio

from base.settings import Settings
from contracts.departments import COORDINATION, OPERATOR
from deploy.processes import AppProcesses
from services.bureau.samples import application
from tests.e2e.cases import officers_decide
from tests.integration.test_registry_api import licence_schema
from tests.tools import bearer, http_client, undocumented

THROUGH = "through"  # neither 401 nor 403: what the endpoint answers then depends on the resource's state
ANYONE = {"none": THROUGH, "planning": THROUGH, "operator": THROUGH}


@dataclass(frozen=True)
class Row:
    api: str
    method: str
    path: str  # as the OpenAPI document writes it
    expect: dict[str, int | str]  # caller (none, a principal, case:own, case:other) -> status or THROUGH
    params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass
class World:
    """What the rows act on, made once: a case with its token, another case's token, an agreement, a contract."""

    urls: dict[str, str]
    tokens: dict[str, str]
    case_id: str
    case_token: str
    other_case_token: str
    agreement_id: str
    contract_id: str


async def submit(url: str, token: str, seed: int) -> dict[str, Any]:
    async with http_client(base_url=url, timeout=30) as http:
        response = await http.post("/v1/cases", content=application(random.Random(seed)).model_dump_json(),
                                   headers={**bearer(token), "content-type": "application/json"})
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest_asyncio.fixture(scope="module")
async def world(stack: Settings, exchange: AppProcesses, tokens: dict[str, str]) -> World:
    urls = {"gateway": stack.gateway_address, "bureau": f"http://{stack.bureau_host}:{stack.bureau_port}",
            "desks": f"http://{stack.departments_host}:{stack.departments_port}"}
    case = await submit(urls["bureau"], tokens["bureau"], 301)
    other = await submit(urls["bureau"], tokens["bureau"], 302)
    async with http_client(base_url=urls["gateway"], timeout=30) as http:
        asked = await http.post("/v1/agreements", headers=bearer(tokens["housing"]), json={
            "contract": "bureau.case-submitted", "fields": ["contact_phone"], "purpose": "authorisation matrix",
            "legal_basis": "《建设工程消防设计审查验收管理暂行规定》第十五条"})
    assert asked.status_code == 201, asked.text
    return World(urls, tokens, case["case_id"], case["case_token"], other["case_token"], asked.json()["id"],
                 f"market.matrix-{uuid.uuid4().hex[:8]}")


def rows(w: World) -> list[Row]:
    contract = {"contract_id": "bureau.case-submitted"}
    agreement = {"agreement_id": w.agreement_id}
    case = {"case_id": w.case_id}
    desk = {"code": "planning"}
    event = {"specversion": "1.0", "id": f"matrix-{uuid.uuid4().hex}", "source": "/matrix", "type": "bureau.x",
             "subject": "G-MATRIX", "time": "2026-11-27T10:00:00+08:00", "data": {}}
    reasons = {"reasons": "authorisation matrix"}
    documents = {"documents": ["补正材料"]}
    only_dept = {"none": 401, "operator": 403}
    readers = {"none": 401, "planning": THROUGH, "operator": THROUGH}
    return [
        # the gateway
        Row("gateway", "GET", "/healthz", ANYONE),
        Row("gateway", "GET", "/readyz", ANYONE),
        Row("gateway", "GET", "/metrics", {"none": 401, "planning": 403, "operator": 200}),
        Row("gateway", "GET", "/v1/whoami", {"none": 401, "planning": 200, "operator": 200}),
        Row("gateway", "GET", "/v1/catalogue", {"none": 401, "planning": 200, "operator": 200}),
        Row("gateway", "GET", "/v1/contracts", ANYONE),
        Row("gateway", "GET", "/v1/contracts/{contract_id}/versions", ANYONE, contract),
        Row("gateway", "GET", "/v1/contracts/{contract_id}/versions/{version}/schema", ANYONE,
            contract | {"version": "1"}),
        Row("gateway", "GET", "/v1/contracts/{contract_id}/config", ANYONE, contract),
        Row("gateway", "POST", "/v1/contracts/{contract_id}/versions",
            only_dept | {"planning": 403, "market": 201}, {"contract_id": w.contract_id},
            body={"schema": licence_schema(w.contract_id)}),
        Row("gateway", "PUT", "/v1/contracts/{contract_id}/config", only_dept | {"planning": 403, "market": 200},
            {"contract_id": w.contract_id}, body={"compatibility": "BACKWARD"}),
        Row("gateway", "POST", "/v1/events", only_dept | {"planning": THROUGH, "water": THROUGH}, body=event),
        Row("gateway", "GET", "/v1/events/{event_id}", only_dept | {"planning": THROUGH, "operator": 422},
            {"event_id": "no-such-event"}),
        Row("gateway", "GET", "/v1/events/{event_id}", only_dept | {"water": 403, "operator": THROUGH},
            {"event_id": "no-such-event"}, query={"department": "planning"}),
        Row("gateway", "GET", "/v1/ingress/{partition}/{offset}", only_dept | {"planning": 200, "operator": 422},
            {"partition": "0", "offset": "0"}),
        Row("gateway", "GET", "/v1/rejections", readers),
        Row("gateway", "GET", "/v1/rejections", readers | {"water": 403}, query={"department": "planning"}),
        Row("gateway", "GET", "/v1/lag", readers),
        Row("gateway", "GET", "/v1/lag", readers | {"water": 403}, query={"department": "planning"}),
        Row("gateway", "GET", "/v1/topics/{topic}/records", readers | {"water": 403},
            params={"topic": "deadletter.planning"}),
        Row("gateway", "GET", "/v1/topics/{topic}/records", {"none": 401, "planning": 403, "operator": THROUGH},
            params={"topic": "shared.bureau.case-submitted"}),
        Row("gateway", "POST", "/v1/agreements", only_dept | {"water": THROUGH},
            body={"contract": "bureau.case-submitted", "fields": ["contact_phone"], "purpose": "matrix",
                  "legal_basis": "matrix basis"}),
        Row("gateway", "GET", "/v1/agreements", readers),
        Row("gateway", "GET", "/v1/agreements", {"none": 401, "planning": 403, "housing": THROUGH, "operator": THROUGH},
            query={"department": "housing"}),
        Row("gateway", "GET", "/v1/agreements/{agreement_id}",
            {"none": 401, "water": 403, "housing": 200, "bureau": 200, "operator": 200}, agreement),
        Row("gateway", "POST", "/v1/agreements/{agreement_id}/reject",
            only_dept | {"water": 403, "housing": 403, "bureau": 200}, agreement, body=reasons),
        Row("gateway", "POST", "/v1/agreements/{agreement_id}/approve",
            only_dept | {"water": 403, "housing": 403, "bureau": 409}, agreement),  # already refused above
        Row("gateway", "POST", "/v1/agreements/{agreement_id}/revoke",
            only_dept | {"water": 403, "housing": 409, "bureau": 409}, agreement, body=reasons),
        Row("gateway", "POST", "/v1/agreements/{agreement_id}/backfill",
            only_dept | {"water": 403, "bureau": 403, "housing": 409}, agreement),
        # the lifecycle, on from the refusal above: escalated, decided by the office, suspended, resumed, renewed
        Row("gateway", "POST", "/v1/agreements/{agreement_id}/escalate",
            only_dept | {"water": 403, "bureau": 403, "coordination": 403, "housing": 200}, agreement, body=reasons),
        Row("gateway", "POST", "/v1/agreements/{agreement_id}/uphold",
            only_dept | {"water": 403, "bureau": 403, "housing": 403}, agreement, body=reasons),
        Row("gateway", "POST", "/v1/agreements/{agreement_id}/proceed",
            only_dept | {"water": 403, "bureau": 403, "housing": 403, "coordination": 200}, agreement,
            body={"reasons": "authorisation matrix", "conditions": ["only for the fire review"]}),
        Row("gateway", "POST", "/v1/agreements/{agreement_id}/suspend",
            only_dept | {"water": 403, "housing": 403, "coordination": 403, "bureau": 200}, agreement, body=reasons),
        Row("gateway", "POST", "/v1/agreements/{agreement_id}/resume",
            only_dept | {"water": 403, "housing": 403, "bureau": 200}, agreement, body=reasons),
        Row("gateway", "POST", "/v1/agreements/{agreement_id}/counter-offer",
            only_dept | {"water": 403, "housing": 403, "bureau": 409}, agreement, body=reasons),
        Row("gateway", "POST", "/v1/agreements/{agreement_id}/accept",
            only_dept | {"water": 403, "bureau": 403, "housing": 409}, agreement),
        Row("gateway", "POST", "/v1/agreements/{agreement_id}/decline",
            only_dept | {"water": 403, "bureau": 403, "housing": 409}, agreement),
        Row("gateway", "POST", "/v1/agreements/{agreement_id}/renew",
            only_dept | {"water": 403, "bureau": 403, "housing": 201}, agreement, body={"working_days": 5}),
        Row("gateway", "POST", "/v1/agreements/{agreement_id}/revoke",
            only_dept | {"water": 403, "housing": 200}, agreement, body=reasons),  # leaves nothing in force
        Row("gateway", "GET", "/v1/audit", readers),
        Row("gateway", "GET", "/v1/audit", readers | {"water": 403}, query={"department": "planning"}),
        # the bureau
        Row("bureau", "GET", "/healthz", ANYONE),
        Row("bureau", "GET", "/readyz", ANYONE),
        Row("bureau", "GET", "/metrics", {"none": 401, "planning": 403, "bureau": 403, "operator": 200}),
        Row("bureau", "POST", "/v1/cases",
            {"none": 401, "planning": 403, "operator": 403, "case:own": 403, "bureau": THROUGH},
            body=application(random.Random(303)).model_dump(mode="json")),
        Row("bureau", "GET", "/v1/cases",
            {"none": 401, "planning": 403, "case:own": 403, "bureau": 200, "operator": 200}, query={"ids": w.case_id}),
        Row("bureau", "GET", "/v1/cases", {"none": 401, "planning": 403, "bureau": 200, "operator": 200},
            query={"stuck": "true"}),
        Row("bureau", "POST", "/v1/requirements", {"none": 401, "planning": 200, "case:own": 200, "operator": 200},
            body={"project": application(random.Random(302)).project.model_dump(mode="json")}),
        Row("bureau", "GET", "/v1/cases/{case_id}", {"none": 401, "planning": 403, "case:other": 403,
                                                     "case:own": 200, "bureau": 200, "operator": 200}, case),
        *(Row("bureau", "POST", f"/v1/cases/{{case_id}}/{action}",
              {"none": 401, "planning": 403, "operator": 403, "case:other": 403, "case:own": THROUGH,
               "bureau": THROUGH}, case, body=body)
          for action, body in (("supplements", documents), ("documents", documents),
                               ("resubmissions", {"project": application(random.Random(301)).project.model_dump(
                                   mode="json")}))),
        # the desks
        Row("desks", "GET", "/healthz", ANYONE),
        Row("desks", "GET", "/readyz", ANYONE),
        Row("desks", "GET", "/metrics", {"none": 401, "planning": 403, "operator": 200}),
        Row("desks", "GET", "/v1/departments/{code}/tasks",
            {"none": 401, "water": 403, "planning": 200, "operator": 200}, desk),
        Row("desks", "GET", "/v1/departments/{code}/tasks/{task_id}",
            {"none": 401, "water": 403, "planning": 404, "operator": 404}, desk | {"task_id": "no-such-task"}),
        Row("desks", "GET", "/v1/departments/{code}/mode",
            {"none": 401, "water": 403, "planning": 200, "operator": 200}, desk),
        Row("desks", "PUT", "/v1/departments/{code}/mode",
            {"none": 401, "water": 403, "operator": 403, "planning": 200}, desk, body={"mode": "rules"}),
        Row("desks", "POST", "/v1/departments/{code}/tasks/{task_id}/decision",
            {"none": 401, "water": 403, "operator": 403, "planning": 409}, desk | {"task_id": "no-such-task"},
            body={"decision": "approved", "officer": "matrix"}),
    ]


def token_of(w: World, caller: str) -> str | None:
    return {"none": None, "case:own": w.case_token, "case:other": w.other_case_token}.get(caller, w.tokens.get(caller))


async def test_every_endpoint_answers_each_caller_as_the_trust_model_says(world: World, stack: Settings) -> None:
    """... and every error answer is one the API's OpenAPI document lists, with the body it documents. The
    coordination office's officers decide (its rules would take up the escalated refusal before the rows do)."""
    wrong: list[str] = []
    documents = {}
    for api, url in world.urls.items():
        async with http_client(base_url=url, timeout=30) as http:
            documents[api] = (await http.get("/openapi.json")).json()
    async with officers_decide(stack, COORDINATION):
        await _ask_every_row(world, documents, wrong)
    assert not wrong, "\n".join(wrong)


async def _ask_every_row(world: World, documents: dict[str, Any], wrong: list[str]) -> None:
    for row in rows(world):
        path = row.path.format(**row.params)
        for caller, expected in row.expect.items():
            token = token_of(world, caller)
            async with http_client(base_url=world.urls[row.api], timeout=30) as http:
                response = await http.request(row.method, path, params=row.query, json=row.body,
                                              headers=bearer(token) if token else {})
            status = response.status_code
            if (expected == THROUGH and status in (401, 403)) or (expected != THROUGH and status != expected):
                wrong.append(f"{row.api} {row.method} {path} {row.query} as {caller}: {status}, expected {expected}"
                             f" ({response.text[:120]})")
            problem = undocumented(documents[row.api], row.method, row.path, response) if status >= 400 else None
            if problem:
                wrong.append(f"{row.api} as {caller}: {problem}")


@pytest.mark.parametrize("api", ["gateway", "bureau", "desks"])
async def test_the_table_covers_every_endpoint_the_api_publishes(world: World, api: str) -> None:
    async with http_client(base_url=world.urls[api], timeout=30) as http:
        document = (await http.get("/openapi.json")).json()
    published = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    covered = {(row.method, row.path) for row in rows(world) if row.api == api}
    assert published == covered
    if api != "gateway":
        return
    secured = {path for path, item in document["paths"].items()
               for operation in item.values() if operation.get("security")}
    assert "/v1/agreements" in secured  # the bearer scheme is declared, so /docs has an Authorize button


async def test_a_department_reads_only_what_concerns_it(world: World) -> None:
    async with http_client(base_url=world.urls["gateway"], timeout=30) as http:
        entries = (await http.get("/v1/audit", headers=bearer(world.tokens["housing"]))).json()
        agreements = (await http.get("/v1/agreements", headers=bearer(world.tokens["housing"]))).json()["agreements"]
        refusals = (await http.get("/v1/rejections", headers=bearer(world.tokens["planning"]))).json()
        everything = (await http.get("/v1/audit", headers=bearer(world.tokens[OPERATOR]))).json()
    assert entries and agreements
    assert all(e.get("sender") == "housing" or "housing" in e.get("delivered", {}) or "housing" in e.get("parties", [])
               for e in entries)
    assert all("housing" in (a["consumer"], a["provider"]) for a in agreements)
    assert all(r["sender"] == "planning" for r in refusals)
    assert {e.get("sender") for e in everything} - {"housing"}  # the operator sees the others too


async def test_bodies_are_bounded_before_they_are_parsed(world: World) -> None:
    async def chunks() -> Any:
        for _ in range(40):
            yield b"[" * 65536

    token = bearer(world.tokens["planning"])
    async with http_client(base_url=world.urls["gateway"], timeout=60) as http:
        declared = await http.post("/v1/events", content=b"{" + b" " * (3 * 1024 * 1024) + b"}", headers=token)
        streamed = await http.post("/v1/events", content=chunks(), headers=token)
    async with http_client(base_url=world.urls["bureau"], timeout=60) as http:
        case = await http.post("/v1/cases", content=b" " * (1024 * 1024), headers=bearer(world.tokens["bureau"]))
        nul = await http.get("/v1/cases/G%00X", headers=bearer(world.tokens["bureau"]))
    assert (declared.status_code, streamed.status_code, case.status_code) == (413, 413, 413)
    assert nul.status_code == 422
