"""`concord service run <department>`: run a department's service in the foreground."""

from __future__ import annotations

import asyncio

import typer
import uvicorn

from contracts.departments import BUREAU
from deploy.runtime import run_until_signalled
from deploy.settings import settings

service = typer.Typer(help="Department services.", no_args_is_help=True)


async def run_bureau(stop: asyncio.Event) -> None:
    from services.bureau.api import create_api
    from services.bureau.service import Bureau

    s = settings()
    bureau = Bureau(s)
    await bureau.service.start()
    server = uvicorn.Server(uvicorn.Config(create_api(bureau), host=s.bureau_host, port=s.bureau_port,
                                           log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        await stop.wait()
    finally:
        server.should_exit = True
        await serving
        await bureau.service.stop()


async def run_reviewer(code: str, stop: asyncio.Event) -> None:
    from services.departments import RULES
    from services.departments.opinion import ReviewingDepartment

    rules, officer = RULES[code]
    await ReviewingDepartment(code, rules, officer, settings()).service.run(stop)


@service.command("run")
def run(department: str) -> None:
    """Run one department's service (``bureau`` also serves the case API)."""
    from services.departments import RULES

    if department != BUREAU and department not in RULES:
        raise typer.BadParameter(f"no service for {department!r}; known: {[BUREAU, *RULES]}")
    if department == BUREAU:
        run_until_signalled(run_bureau)
    else:
        run_until_signalled(lambda stop: run_reviewer(department, stop))
