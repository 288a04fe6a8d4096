"""The operators' console, served by the gateway at ``/console/``: server-rendered pages (Jinja2, escaped) with
one small script that replaces each live view's content from a server-sent event stream every half second.
Assets come from the package; the pages' Content-Security-Policy lets them load and ask nothing else.

Login takes a token (``concord credentials issue operator``, or a department's); it is kept in an HttpOnly,
SameSite=Strict cookie and checked on every request, so a revoked token ends the session at once. The operator
sees every department; a department's token sees only what concerns that department, and is refused (403) any
view of another's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from base.runtime import local_time
from contracts.departments import DEPARTMENTS, OPERATOR
from deploy.console import views
from deploy.console.views import Sources
from gateway.agreements import Standing

HERE = Path(__file__).parent
COOKIE = "concord_console"
TICK_SECONDS = 0.5  # live views are rendered again this often, and sent when they changed
RECHECK_SECONDS = 30.0  # a live stream checks its token again this often (a revoked token ends it)
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
CaseId = Annotated[str, PathParam(max_length=256, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,255}$")]
DepartmentCode = Annotated[str | None, Query(max_length=32, pattern=r"^[a-z]+$")]

Principal = Callable[[str], Awaitable[str | None]]
Gather = Callable[["Viewer", Request], Awaitable[tuple[str, dict[str, Any]]]]  # a view's fragment and its data


@dataclass(frozen=True)
class Viewer:
    principal: str

    @property
    def operator(self) -> bool:
        return self.principal == OPERATOR

    @property
    def department(self) -> str | None:
        return None if self.operator else self.principal

    def scope(self, department: str | None) -> str | None:
        """Whose view this is: the operator's choice (None: all), a department only its own (else 403)."""
        if self.operator:
            if department is not None and department not in DEPARTMENTS:
                raise HTTPException(404, f"no department {department}")
            return department
        if department not in (None, self.principal):
            raise HTTPException(403, f"{self.principal} may see only its own views, not {department}'s")
        return self.principal


class LoginNeeded(Exception):
    def __init__(self, path: str) -> None:
        self.path = path


async def viewer(request: Request) -> Viewer:
    """Who holds the session's token; LoginNeeded (to the login page, or 401 for a stream) without a valid one."""
    token = request.cookies.get(COOKIE)
    principal_of: Principal = request.app.state.principal_of
    principal = await principal_of(token) if token else None
    if principal is None or (principal != OPERATOR and principal not in DEPARTMENTS):
        raise LoginNeeded(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return Viewer(principal)


Seen = Annotated[Viewer, Depends(viewer)]


def _time(value: Any) -> str:
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value).astimezone()
    return local_time(value)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} ms"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _days(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def templates() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters |= {"time": _time, "ms": _ms, "rate": _rate, "days": _days,
                    "pretty": lambda v: json.dumps(v, ensure_ascii=False, indent=2, default=str)}
    env.globals |= {"DEPARTMENTS": DEPARTMENTS}
    return env


def create_console(src: Sources, principal_of: Principal) -> FastAPI:
    """The console as an app to mount at ``/console`` on the gateway's API."""
    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    env = templates()

    console.state.principal_of = principal_of

    @console.exception_handler(LoginNeeded)
    async def to_login(request: Request, exc: LoginNeeded) -> Response:
        if request.url.path.startswith(("/console/live", "/live")):
            return Response("log in again", status_code=401)
        return RedirectResponse(f"/console/login?next={quote(exc.path, safe='')}", status_code=303)

    def page(name: str, answer: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=answer, headers={"content-security-policy": POLICY,
                                                               "cache-control": "no-store"})

    @console.exception_handler(HTTPException)
    async def problem(request: Request, exc: HTTPException) -> Response:
        return page("problem.html", exc.status_code, status=exc.status_code, detail=exc.detail, viewer=None,
                    view="", query="")

    LIVE: dict[str, Gather] = {}

    async def render_page(view: str, who: Viewer, request: Request) -> HTMLResponse:
        fragment, context = await LIVE[view](who, request)
        body = env.get_template(fragment).render(viewer=who, **context)
        stream = f"/console/live/{view}{request.url.path.removeprefix('/console/' + view)}" \
                 f"{'?' + request.url.query if request.url.query else ''}"
        return page(f"{view}.html", viewer=who, view=view, live=body, stream=stream, query=request.url.query,
                    **context)

    @console.get("/", include_in_schema=False)
    async def home(who: Seen) -> Response:
        return RedirectResponse("/console/map", status_code=303)

    @console.get("/login", response_class=HTMLResponse)
    async def login_form(next: Annotated[str, Query(max_length=2000)] = "/console/map") -> HTMLResponse:
        return page("login.html", viewer=None, view="login", next=_local(next), error=None, query="")

    @console.post("/login", response_class=HTMLResponse)
    async def login(token: Annotated[str, Form(max_length=512)],
                    next: Annotated[str, Form(max_length=2000)] = "/console/map") -> Response:
        principal = await principal_of(token.strip())
        if principal is None or (principal != OPERATOR and principal not in DEPARTMENTS):
            return page("login.html", 401, viewer=None, view="login", next=_local(next), query="",
                        error="该令牌无效或已吊销 · the token is not valid, or has been revoked")
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", path="/console")
        return response

    @console.post("/logout")
    async def logout() -> Response:
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    # --- the views: each gathers its data and names its live fragment -------------------------------------
    def scoped(fragment: str, name: str, load: Callable[[Sources, str | None], Awaitable[Any]]) -> Gather:
        """A view of one department or all: its data under ``name``, for the viewer's scope."""
        async def gather(who: Viewer, request: Request) -> tuple[str, dict[str, Any]]:
            scope = who.scope(request.query_params.get("department"))
            return fragment, {name: await load(src, scope), "scope": scope}
        return gather

    LIVE |= {
        "map": scoped("map_live.html", "data", views.exchange_map),
        "flows": scoped("flows_live.html", "data", views.flows),
        "deadletters": scoped("deadletters_live.html", "rows", views.dead_letters),
        "departments": scoped("departments_live.html", "data", views.departments),
        "audit": scoped("audit_live.html", "data", views.audit_state),
    }

    async def agreements_view(who: Viewer, request: Request) -> tuple[str, dict[str, Any]]:
        scope = who.scope(request.query_params.get("department"))
        standing, offset = _standing_page(request.query_params.get("standing"), request.query_params.get("offset"))
        return "agreements_live.html", {"groups": await views.agreements(src, scope, standing, offset),
                                        "scope": scope, "standing": standing}

    LIVE["agreements"] = agreements_view

    async def case_view(who: Viewer, request: Request) -> tuple[str, dict[str, Any]]:
        case_id = request.path_params.get("case_id") or request.url.path.split("/cases/", 1)[-1]
        trace = await views.case_trace(src, case_id, who.department)
        if trace is None:
            raise HTTPException(404, f"no audit entry of case {case_id}"
                                     + ("" if who.operator else f" that concerns {who.principal}"))
        return "case_live.html", {"trace": trace, "scope": who.department}

    LIVE["cases"] = case_view

    def shown(view: str) -> Callable[..., Awaitable[HTMLResponse]]:
        async def show(request: Request, who: Seen, department: DepartmentCode = None) -> HTMLResponse:
            del department  # read by the view from the query (declared here for its validation)
            return await render_page(view, who, request)
        return show

    for name in LIVE.keys() - {"cases"}:
        console.add_api_route(f"/{name}", shown(name), methods=["GET"], response_class=HTMLResponse)

    @console.get("/cases", response_class=HTMLResponse)
    async def find_case(who: Seen, case: Annotated[str, Query(max_length=256)] = "") -> Response:
        if case.strip():
            return RedirectResponse(f"/console/cases/{quote(case.strip(), safe='')}", status_code=303)
        return page("case_search.html", viewer=who, view="cases", query="")

    @console.get("/cases/{case_id:path}", response_class=HTMLResponse)
    async def case(case_id: CaseId, request: Request, who: Seen) -> HTMLResponse:
        return await render_page("cases", who, request)

    @console.get("/deadletters/{seq}", response_class=HTMLResponse)
    async def deadletter(seq: Annotated[int, PathParam(ge=1)], who: Seen) -> HTMLResponse:
        found = await views.dead_letter(src, seq)
        if found is None:
            raise HTTPException(404, f"no refusal at audit entry {seq}")
        entry, record = found
        who.scope(entry.get("sender"))
        return page("deadletter.html", viewer=who, view="deadletters", entry=entry, record=record, query="")

    @console.post("/audit/verify")
    async def verify(who: Seen) -> Response:
        if not who.operator:
            raise HTTPException(403, "verifying the whole chain is the operator's")
        views.start_verification(src, who.principal)  # one at a time: a second press while one runs joins it
        return RedirectResponse("/console/audit", status_code=303)

    @console.get("/live/{view}")
    @console.get("/live/{view}/{rest:path}")
    async def stream(view: str, request: Request, who: Seen, rest: str = "") -> StreamingResponse:
        """The live view's content as server-sent events: rendered again every tick, sent when it changed."""
        if view not in LIVE:
            raise HTTPException(404, f"no live view {view}")
        if view == "cases":
            request.scope["path_params"] = {"case_id": rest}
        await LIVE[view](who, request)  # refused here (403, 404) before the stream begins
        token = request.cookies.get(COOKIE, "")

        async def events() -> AsyncIterator[str]:
            sent, checked = None, asyncio.get_running_loop().time()
            while not await request.is_disconnected():
                now = asyncio.get_running_loop().time()
                if now - checked > RECHECK_SECONDS:
                    checked = now
                    if await principal_of(token) != who.principal:
                        yield "event: denied\ndata: {}\n\n"
                        return
                fragment, context = await LIVE[view](who, request)
                html = env.get_template(fragment).render(viewer=who, **context)
                if html != sent:
                    sent = html
                    yield f"data: {json.dumps({'html': html})}\n\n"
                await asyncio.sleep(TICK_SECONDS)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    return console


def _standing_page(standing: str | None, offset: str | None) -> tuple[Standing | None, int]:
    """The agreements view's query: one standing's page from an offset, or (no standing) every standing's first."""
    try:
        page = (Standing(standing) if standing else None, int(offset or 0))
    except ValueError:
        raise HTTPException(422, f"no standing {standing!r} or offset {offset!r}: a standing is one of "
                                 f"{[s.value for s in Standing]}, an offset a whole number") from None
    if not 0 <= page[1] <= 10**9:
        raise HTTPException(422, "an offset is from 0 to 1,000,000,000")
    return page


def _local(target: str) -> str:
    """Where to go after logging in: a console path only (never another site)."""
    return target if target.startswith("/console/") and not target.startswith("//") else "/console/map"
