"""`concord service run …` runs department services; `concord tasks …` is an officer's desk from the shell."""

from __future__ import annotations

import asyncio
import json
import os

import httpx
import typer
import uvicorn
from rich.table import Table

from base.http import GatewayIdentity
from base.runtime import answer, run_until_signalled, terminal
from base.settings import settings
from contracts.departments import BUREAU, COORDINATION

service = typer.Typer(help="Department services.", no_args_is_help=True)
tasks = typer.Typer(help="A department's desk: its tasks, decided by officers (human-in-the-loop).",
                    no_args_is_help=True)
console = terminal()


async def serve_until(app: object, host: str, port: int, stop: asyncio.Event) -> None:
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await serving


async def run_bureau(stop: asyncio.Event) -> None:
    from services.bureau.api import create_api
    from services.bureau.service import Bureau

    s = settings()
    bureau = Bureau(s)
    identity = GatewayIdentity(s.gateway_address)
    await bureau.service.start()
    try:
        api = create_api(bureau, identity, s.http_max_body_bytes)
        await asyncio.gather(serve_until(api, s.bureau_host, s.bureau_port, stop), bureau.watch(stop))
    finally:
        await bureau.service.stop()
        await identity.close()


async def run_departments(codes: list[str], stop: asyncio.Event) -> None:
    """Several departments' services in one process (each its own consumer group and schema), with one API
    for their desks."""
    from services.departments import REVIEWERS
    from services.departments.api import create_api
    from services.departments.coordination import ARBITER
    from services.departments.desk import CoordinationDesk, Desk, ReviewingDesk

    s = settings()
    desks: dict[str, Desk] = {
        code: CoordinationDesk(ARBITER, s) if code == COORDINATION else ReviewingDesk(REVIEWERS[code], s)
        for code in codes
    }
    identity = GatewayIdentity(s.gateway_address)
    for desk in desks.values():
        await desk.service.start()
    try:
        api = create_api(desks, identity, s.http_max_body_bytes)
        await asyncio.gather(serve_until(api, s.departments_host, s.departments_port, stop),
                             *(desk.work(stop) for desk in desks.values()))
    finally:
        for desk in desks.values():
            await desk.service.stop()
        await identity.close()


def department_codes() -> list[str]:
    from services.departments import REVIEWERS

    return [*REVIEWERS, COORDINATION]


@service.command("run")
def run(departments: list[str] = typer.Argument(..., help="bureau, or one or more departments, or 'departments' "
                                                          "for every reviewing department and the coordination office")
        ) -> None:
    """Run the bureau (with its case API), or departments' services in one process (with their desks' API)."""
    if departments == [BUREAU]:
        run_until_signalled(run_bureau)
        return
    codes = department_codes() if departments == ["departments"] else departments
    unknown = set(codes) - set(department_codes())
    if unknown:
        raise typer.BadParameter(f"no service for {sorted(unknown)}; known: {[BUREAU, *department_codes()]}")
    run_until_signalled(lambda stop: run_departments(codes, stop))


TokenOption = typer.Option(None, "--token", envvar="CONCORD_TOKEN",
                           help="a bearer token (default: the local stack's credentials of the department)")


def _desks(token: str | None, acting: str) -> httpx.Client:
    """The desks' API with a bearer token: the one given, else the local stack's credentials of ``acting``."""
    s = settings()
    if token is None and s.secrets.credentials_file(acting).exists():
        token = s.credentials(acting).http_token
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=f"http://{s.departments_host}:{s.departments_port}", headers=headers, timeout=30.0)


@tasks.command("list")
def list_tasks(department: str, status: str = typer.Option("open", help="open, on_hold, awaiting_supplement, "
                                                                         "decided, or all"),
               token: str = TokenOption) -> None:
    """A department's tasks."""
    with _desks(token, department) as api:
        rows = answer(api.get(f"/v1/departments/{department}/tasks",
                               params={} if status == "all" else {"status": status}))
    table = Table("task", "case", "item", "status", "decide by rules at", "due")
    for t in rows:
        table.add_row(t["task_id"], t["case_id"], t["item_code"], t["status"], str(t["decide_at"])[:16],
                      str(t["due_at"] or "")[:16])
    console.print(table)


@tasks.command("decide")
def decide(
    department: str, task_id: str,
    decision: str = typer.Option(..., help="approved, approved_with_conditions, supplement_requested, rejected; "
                                           "at the coordination office proceed_with_conditions or uphold_refusal"),
    condition: list[str] = typer.Option([], help="a condition (repeat for several)"),
    reason: list[str] = typer.Option([], help="a reason (repeat for several)"),
    officer: str = typer.Option(os.environ.get("USER", "officer"), help="who decides"),
    token: str = TokenOption,
) -> None:
    """Decide a task as an officer."""
    body = {"decision": decision, "conditions": condition, "reasons": reason, "officer": officer}
    with _desks(token, department) as api:
        result = answer(api.post(f"/v1/departments/{department}/tasks/{task_id}/decision", json=body))
    console.print_json(json.dumps(result, ensure_ascii=False))


@tasks.command("mode")
def mode(department: str, new_mode: str = typer.Argument(None, metavar="[rules|human]"),
         token: str = TokenOption) -> None:
    """Show or switch who decides at a desk: its rules, or its officers."""
    with _desks(token, department) as api:
        path = f"/v1/departments/{department}/mode"
        result = answer(api.put(path, json={"mode": new_mode}) if new_mode else api.get(path))
    console.print(f"{department}: {result['mode']}")
