"""What every HTTP API of the exchange shares: who is calling (a bearer token), bodies bounded before they
are parsed, clear answers for input no handler should have to think about, and its documentation: the OpenAPI
document with the bearer scheme and every error answer typed, and Swagger UI and ReDoc served from assets the
package ships (a government network has no internet to fetch them from a CDN).

Tokens of issued credentials are checked by the gateway, which keeps their salted hashes; the other services
ask it (``GET /v1/whoami``) on each request, so a revoked token fails everywhere at once."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
import httpx
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from base.health import Health
from contracts.departments import DEPARTMENTS, OPERATOR

BEARER = HTTPBearer(
    auto_error=False, scheme_name="bearer",
    description="A token from `concord credentials issue <principal>` (`http_token`), or a case token.",
)


class Problem(BaseModel):
    """The body of an error answer: what went wrong, for a person to read. A client decides on the status."""

    detail: str


class ValidationProblem(BaseModel):
    """One way in which a request does not fit what the endpoint declares (FastAPI's validation error)."""

    type: str
    loc: list[str | int] = Field(description="where: body, query, path or header, then the field's path")
    msg: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class InvalidRequest(BaseModel):
    """A 422: the request does not fit what the endpoint declares (a list of problems), or a value in it is one
    the endpoint cannot take (in words)."""

    detail: str | list[ValidationProblem]


@dataclass(frozen=True)
class ErrorAnswer:
    description: str
    body: type[BaseModel]


ERRORS = {
    401: ErrorAnswer("no bearer token, or one the exchange did not issue or has revoked", Problem),
    403: ErrorAnswer("the token is valid but its holder may not do this", Problem),
    404: ErrorAnswer("no such resource", Problem),
    409: ErrorAnswer("the resource is not in a state that allows this", Problem),
    413: ErrorAnswer("the body is over the limit", Problem),
    422: ErrorAnswer("the request is not valid; the detail says why", InvalidRequest),
}


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: a principal (a department, the operator, the gateway), or the applicant
    holding one case's token."""

    principal: str
    case_id: str | None = None

    @property
    def department(self) -> str | None:
        return self.principal if self.principal in DEPARTMENTS and self.case_id is None else None

    @property
    def operator(self) -> bool:
        return self.principal == OPERATOR

    def __str__(self) -> str:
        return f"the applicant of {self.case_id}" if self.case_id else self.principal


Authenticate = Callable[[str], Awaitable[Caller | None]]


def unauthorised() -> HTTPException:
    return HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


def forbidden(detail: str) -> HTTPException:
    return HTTPException(403, detail)


def authenticate_with(api: FastAPI, authenticate: Authenticate) -> None:
    """How an API finds the caller of a bearer token (read by ``Authenticated``)."""
    api.state.authenticate = authenticate


async def current_caller(request: Request,
                         credentials: HTTPAuthorizationCredentials | None = Depends(BEARER)) -> Caller:
    """The caller of the request, or 401."""
    if credentials is None or not credentials.credentials:
        raise unauthorised()
    authenticate: Authenticate = request.app.state.authenticate
    found = await authenticate(credentials.credentials)
    if found is None:
        raise unauthorised()
    return found


Authenticated = Annotated[Caller, Depends(current_caller)]


def department_of(caller: Caller) -> str:
    """The department a caller acts for; 403 for the operator (who changes nothing) and anyone else."""
    if caller.department is None:
        raise forbidden(f"{caller} reads only; this needs a department's token")
    return caller.department


class GatewayIdentity:
    """Asks the gateway whose a token is. A gateway that cannot answer is a 503, never a pass."""

    def __init__(self, gateway_url: str) -> None:
        self.client = httpx.AsyncClient(base_url=gateway_url, timeout=5.0)

    async def __call__(self, token: str) -> Caller | None:
        try:
            response = await self.client.get("/v1/whoami", headers={"authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise HTTPException(503, "the gateway, which checks tokens, cannot be reached") from exc
        if response.status_code == 401:
            return None
        if response.status_code != 200:
            raise HTTPException(503, f"the gateway could not check the token ({response.status_code})")
        return Caller(str(response.json()["principal"]))

    async def close(self) -> None:
        await self.client.aclose()


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimit:
    """Refuses a body over the limit before anything parses it: by its Content-Length when it gives one, and
    by counting what arrives otherwise."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            response = JSONResponse(Problem(detail=BodyTooLarge(self.max_bytes).detail).model_dump(),
                                    status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


def harden(api: FastAPI, max_body_bytes: int) -> None:
    """Bounded bodies, and a clear 422 for values PostgreSQL cannot hold (a NUL character, say) wherever a
    handler passes one on."""
    api.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    async def unstorable(request: Request, exc: Exception) -> JSONResponse:
        problem = Problem(detail=f"a value in the request cannot be stored: {type(exc).__name__}")
        return JSONResponse(problem.model_dump(), status_code=422)

    api.add_exception_handler(asyncpg.DataError, unstorable)


def responses(*codes: int, bodies: dict[int, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    """The error answers an endpoint gives, for its OpenAPI description (``ExchangeApi`` adds those every
    endpoint of its kind gives: 401 where a token is needed, 413 where a body is taken, 422 where input is).
    ``bodies`` types an answer whose body is not the standard one (a ``Problem``, or an ``InvalidRequest``)."""
    typed = bodies or {}
    return {code: {"description": ERRORS[code].description} | ({"model": typed[code]} if code in typed else {})
            for code in codes}


SCHEMAS = "#/components/schemas/"
STANDARD_BODIES = models_json_schema([(m.body, "serialization") for m in ERRORS.values()],
                                     ref_template=SCHEMAS + "{model}")[1]["$defs"]
FASTAPI_VALIDATION = {"$ref": SCHEMAS + "HTTPValidationError"}  # what FastAPI documents a 422 with, replaced


def with_error_answers(document: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI document in which every operation lists the error answers it can give, each with its body's
    schema: 401 (with ``WWW-Authenticate``) on the operations that need the bearer token, 413 on those that take
    a body, 422 on those that take input, and the standard body for every answer its route describes without one."""
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            answers: dict[str, dict[str, Any]] = operation.setdefault("responses", {})
            if operation.get("security"):
                answers.setdefault("401", {})
            if "requestBody" in operation or method in ("post", "put", "patch"):
                answers.setdefault("413", {})
            if "requestBody" in operation or operation.get("parameters"):
                answers.setdefault("422", {})
            for code, answer in answers.items():
                known = ERRORS.get(int(code)) if code.isdigit() else None
                if known is None:
                    continue
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                if schema == FASTAPI_VALIDATION:
                    answer.clear()
                if schema is None or schema == FASTAPI_VALIDATION:
                    answer.setdefault("description", known.description)
                    answer["content"] = {"application/json": {"schema": {"$ref": SCHEMAS + known.body.__name__}}}
                if code == "401":
                    answer["headers"] = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in STANDARD_BODIES.items():
        schemas.setdefault(name, schema)
    if f'"{FASTAPI_VALIDATION["$ref"]}"' not in json.dumps(document):  # no longer used: not listed either
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return document


DOCS_ASSETS = "/docs/assets"  # fastapi-offline's copies of swagger-ui-dist and redoc, and a favicon
# The documentation pages may load and ask only this API: the browser refuses whatever else their scripts would
# fetch (ReDoc's menu shows a logo from its makers' CDN), so no request of theirs leaves for the internet.
DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")


async def metrics(caller: Authenticated) -> Response:
    """This process's Prometheus metrics (the operator's token)."""
    if not caller.operator:
        raise forbidden("metrics are for the operator")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class ExchangeApi(FastAPI):
    """An HTTP API of the exchange: bodies bounded before they are parsed, a clear 422 for values PostgreSQL
    cannot hold, an OpenAPI document with the bearer scheme and every error answer, its documentation at
    ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from the package's own assets, with no request to the internet,
    the Prometheus metrics of the process that serves it at ``/metrics``, and its health probes (``base.health``)."""

    def __init__(self, title: str, description: str, max_body_bytes: int) -> None:
        super().__init__(title=title, version="1", description=description, docs_url=None, redoc_url=None)
        harden(self, max_body_bytes)
        self.mount(DOCS_ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")
        self.add_api_route("/docs", self.swagger_ui, include_in_schema=False, response_class=HTMLResponse)
        self.add_api_route("/redoc", self.redoc, include_in_schema=False, response_class=HTMLResponse)
        self.add_api_route("/metrics", metrics, responses=responses(401, 403), response_class=Response)
        self.health = Health()  # /healthz and /readyz: each part of the process adds its checks
        self.health.install(self)

    def openapi(self) -> dict[str, Any]:
        if not self.openapi_schema:
            self.openapi_schema = with_error_answers(super().openapi())
        return self.openapi_schema

    async def swagger_ui(self, request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{self.openapi_url}", title=f"{self.title}: Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # never ask swagger.io to validate the document
        )
        page.headers["content-security-policy"] = DOCS_POLICY
        return page

    async def redoc(self, request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{self.openapi_url}", title=f"{self.title}: ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png", with_google_fonts=False,
        )
        page.headers["content-security-policy"] = DOCS_POLICY
        return page
