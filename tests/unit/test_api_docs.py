"""The OpenAPI documents of the three HTTP APIs, built from the app objects (no I/O): the bearer scheme is
declared and marks exactly the operations that authenticate their caller (so /docs has an Authorize button that
fills them), and every error answer an operation can give is listed with its body's type. And the AsyncAPI document
FastStream makes of each department's service."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from base.clock import SystemClock
from base.http import Caller, current_caller
from base.settings import Settings
from contracts.departments import SERVICE_DEPARTMENTS
from gateway.api import GatewayState
from gateway.api import create_api as gateway_api
from services.bureau.api import create_api as bureau_api
from services.bureau.service import Bureau
from services.departments.api import create_api as desks_api
from services.kit.service import DepartmentService

APIS = ("gateway", "bureau", "desks")
SCHEMAS = "#/components/schemas/"
PUBLIC = {
    "gateway": {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/v1/contracts"),
                ("GET", "/v1/contracts/{contract_id}/versions"),
                ("GET", "/v1/contracts/{contract_id}/versions/{version}/schema"),
                ("GET", "/v1/contracts/{contract_id}/config")},
    "bureau": {("GET", "/healthz"), ("GET", "/readyz")},
    "desks": {("GET", "/healthz"), ("GET", "/readyz")},
}
REGISTER = ("POST", "/v1/contracts/{contract_id}/versions")  # a new contract's first version names none yet
POSITION = ("GET", "/v1/ingress/{partition}/{offset}")  # a position not decided yet is pending, not missing
ANY_HOLDER = {("GET", "/v1/whoami"), ("POST", "/v1/requirements"), ("GET", "/v1/catalogue")}  # any valid token
# the operations that answer 409: the resource is not in a state that allows the request, or an Idempotency-Key
# is given again for another request
CONFLICTS = {
    "gateway": {REGISTER, ("POST", "/v1/agreements"), *(("POST", f"/v1/agreements/{{agreement_id}}/{action}")
                          for action in ("approve", "reject", "revoke", "backfill", "counter-offer", "accept",
                                         "decline", "suspend", "resume", "renew", "escalate", "proceed", "uphold"))},
    "bureau": {("POST", f"/v1/cases/{{case_id}}/{action}") for action in ("supplements", "documents", "resubmissions")},
    "desks": {("POST", "/v1/departments/{code}/tasks/{task_id}/decision")},
}


async def nobody(token: str) -> Caller | None:
    return None


def build(api: str) -> FastAPI:
    settings = Settings(kafka_security="PLAINTEXT")
    if api == "gateway":  # the routes use the state's connections only when called
        return gateway_api(GatewayState(settings, *cast(Any, [None] * 7), clock=SystemClock(),
                                        verdicts=cast(Any, None), flows=cast(Any, None), lags=cast(Any, None),
                                        inspector=cast(Any, None)))
    if api == "bureau":
        return bureau_api(Bureau(settings, SystemClock()), nobody, 1024)
    return desks_api({}, nobody, 1024)


@pytest.fixture(scope="module", params=APIS)
def app(request: pytest.FixtureRequest) -> tuple[str, FastAPI]:
    return request.param, build(request.param)


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): operation for path, item in document["paths"].items()
            for method, operation in item.items()}


def authenticates(dependant: Dependant) -> bool:
    return any(d.call is current_caller or authenticates(d) for d in dependant.dependencies)


def alternatives(schema: dict[str, Any]) -> list[str]:
    """The component names a response schema refers to (one, or each of an anyOf)."""
    return [s["$ref"].removeprefix(SCHEMAS) for s in schema.get("anyOf", [schema])]


def test_the_bearer_scheme_marks_exactly_the_operations_that_authenticate_their_caller(
        app: tuple[str, FastAPI]) -> None:
    name, api = app
    document = api.openapi()
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    secured = {key for key, operation in operations(document).items() if operation.get("security")}
    assert all(operations(document)[key]["security"] == [{"bearer": []}] for key in secured)
    authenticated = {(method, route.path_format) for route in api.routes if isinstance(route, APIRoute)
                     and route.include_in_schema and authenticates(route.dependant) for method in route.methods}
    assert secured == authenticated
    assert set(operations(document)) - secured == PUBLIC[name]


def test_every_operation_lists_the_error_answers_it_can_give_with_a_typed_body(app: tuple[str, FastAPI]) -> None:
    name, api = app
    document = api.openapi()
    components = document["components"]["schemas"]
    for (method, path), operation in operations(document).items():
        answers = operation["responses"]
        where = f"{name} {method} {path}"
        errors = {int(code) for code in answers if code.startswith("4")}
        secured = bool(operation.get("security"))
        assert (401 in errors) == secured, where
        if secured:
            assert answers["401"]["headers"]["WWW-Authenticate"]["schema"] == {"type": "string"}, where
            assert alternatives(answers["401"]["content"]["application/json"]["schema"]) == ["Problem"], where
        if secured and (method, path) not in ANY_HOLDER:
            assert 403 in errors, where
        takes_body = "requestBody" in operation or method in ("POST", "PUT")
        assert (413 in errors) == takes_body, where
        assert (422 in errors) == (takes_body or bool(operation.get("parameters"))), where
        if 422 in errors:
            assert "InvalidRequest" in alternatives(answers["422"]["content"]["application/json"]["schema"]), where
        if "{" in path and (method, path) not in (REGISTER, POSITION):  # a path naming a resource: 404 without one
            assert 404 in errors, where
        for code in errors:
            answer = answers[str(code)]
            assert answer["description"], where
            for model in alternatives(answer["content"]["application/json"]["schema"]):
                assert "detail" in components[model]["required"], f"{where} {code}: {model}"
    conflicts = {key for key, operation in operations(document).items() if "409" in operation["responses"]}
    assert conflicts == CONFLICTS[name]


def test_the_error_bodies_are_the_exchange_s_own_types(app: tuple[str, FastAPI]) -> None:
    name, api = app
    document = api.openapi()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in json.dumps(document)  # FastAPI's 422 is replaced, not listed beside
    assert schemas["Problem"]["properties"]["detail"]["type"] == "string"
    detail = schemas["InvalidRequest"]["properties"]["detail"]["anyOf"]
    assert {"type": "string"} in detail
    assert {"type": "array", "items": {"$ref": SCHEMAS + "ValidationProblem"}} in detail
    if name == "gateway":
        register = operations(document)[REGISTER]["responses"]
        conflict = register["409"]["content"]["application/json"]["schema"]  # incompatible, or a version taken
        assert alternatives(conflict) == ["Incompatibilities", "RegistrationProblems"]
        assert "RegistrationProblems" in alternatives(register["422"]["content"]["application/json"]["schema"])
        ingest = operations(document)[("POST", "/v1/events")]["responses"]
        assert "EventRefused" in alternatives(ingest["422"]["content"]["application/json"]["schema"])
        assert "unknown_contract" in schemas["Reason"]["enum"]


@pytest.mark.parametrize("department", SERVICE_DEPARTMENTS)
def test_each_departments_service_documents_the_topic_it_consumes(department: str) -> None:
    """FastStream's AsyncAPI document of a department's service (built from its subscriber, no I/O) names the topic
    the gateway delivers to it; the handler takes the batch as it came, which must not stop the document."""
    settings = Settings(kafka_security="PLAINTEXT")
    service = DepartmentService(department, settings, SystemClock())
    document = service.app.schema.to_specification().to_jsonable()
    assert [channel["address"] for channel in document["channels"].values()] == [settings.topics.deliver(department)]
    assert document["info"]["description"] == "events this department consumes"
