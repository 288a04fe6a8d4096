"""What every HTTP API of the exchange shares: who is calling (a bearer token), bodies bounded before they
are parsed, and clear answers for input no handler should have to think about.

Tokens of issued credentials are checked by the gateway, which keeps their salted hashes; the other services
ask it (``GET /v1/whoami``) on each request, so a revoked token fails everywhere at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
import httpx
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.departments import DEPARTMENTS, OPERATOR

BEARER = HTTPBearer(
    auto_error=False, scheme_name="bearer",
    description="A token from `concord credentials issue <principal>` (`http_token`), or a case token.",
)
UNAUTHORISED = {401: {"description": "no bearer token, or one the exchange did not issue or has revoked"}}
FORBIDDEN = {403: {"description": "the token is valid but its holder may not do this"}}


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
            response = JSONResponse({"detail": BodyTooLarge(self.max_bytes).detail}, status_code=413)
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
        return JSONResponse({"detail": f"a value in the request cannot be stored: {type(exc).__name__}"},
                            status_code=422)

    api.add_exception_handler(asyncpg.DataError, unstorable)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI descriptions of the error answers an endpoint gives."""
    known = {**UNAUTHORISED, **FORBIDDEN, 404: {"description": "no such resource"},
             409: {"description": "the resource is not in a state that allows this"},
             413: {"description": "the body is over the limit"},
             422: {"description": "the request is not valid; the detail says why"}}
    return {code: known[code] for code in codes}
