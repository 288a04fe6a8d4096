"""`concord case`: submit a case to the bureau and look one up, from the command line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer
from rich.console import Console

from services.bureau.api import CaseView
from services.bureau.model import CaseApplication
from services.bureau.service import Bureau

case = typer.Typer(help="Cases of the agency service.", no_args_is_help=True)
console = Console()


async def _submit(application: CaseApplication) -> CaseView:
    bureau = Bureau()
    await bureau.service.connect()
    try:
        return CaseView.of(await bureau.submit(application))
    finally:
        await bureau.service.disconnect()


async def _show(case_id: str) -> CaseView | None:
    bureau = Bureau()
    await bureau.service.connect()
    try:
        found = await bureau.case(case_id)
        return CaseView.of(found) if found else None
    finally:
        await bureau.service.disconnect()


@case.command("submit")
def submit(application: Path = typer.Argument(..., help="JSON file with the project and the applicant")) -> None:
    """Accept a case: stored, its first stage opened, the requests published through the outbox."""
    parsed = CaseApplication.model_validate_json(application.read_text(encoding="utf-8"))
    console.print_json(asyncio.run(_submit(parsed)).model_dump_json())


@case.command("show")
def show(case_id: str) -> None:
    """A case with its requests and opinions."""
    view = asyncio.run(_show(case_id))
    if view is None:
        console.print(f"no case {case_id}")
        raise typer.Exit(1)
    console.print_json(json.dumps(view.model_dump(mode="json"), ensure_ascii=False))
