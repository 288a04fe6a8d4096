"""`concord case`: submit a case to the bureau and look one up, from the command line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from base.runtime import terminal

if TYPE_CHECKING:  # imported by the commands when they run: `concord --help` stays quick
    from services.bureau.api import CaseView, SubmittedCase
    from services.bureau.model import CaseApplication
    from services.bureau.service import Bureau

case = typer.Typer(help="Cases of the agency service.", no_args_is_help=True)
console = terminal()


def _bureau() -> Bureau:
    from base.clock import clock_from
    from base.settings import Settings
    from services.bureau.service import Bureau

    settings = Settings.from_environment()
    return Bureau(settings, clock_from(settings))


async def _submit(application: CaseApplication) -> SubmittedCase:
    from services.bureau.api import CaseView, SubmittedCase

    bureau = _bureau()
    await bureau.service.connect()
    try:
        case, token = await bureau.submit(application)
        return SubmittedCase(**CaseView.of(case).model_dump(), case_token=token)
    finally:
        await bureau.service.disconnect()


async def _show(case_id: str) -> CaseView | None:
    from services.bureau.api import CaseView

    bureau = _bureau()
    await bureau.service.connect()
    try:
        found = await bureau.case(case_id)
        return CaseView.of(found) if found else None
    finally:
        await bureau.service.disconnect()


@case.command("submit")
def submit(application: Path = typer.Argument(..., help="JSON file with the project and the applicant")) -> None:
    """Accept a case: stored, its first stage opened, the requests published through the outbox."""
    from services.bureau.model import CaseApplication

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


def print_report(report: dict[str, object]) -> None:
    """The report as tables on the terminal."""
    from rich.table import Table

    cases = report["cases"]
    assert isinstance(cases, dict)
    console.print(f"[bold]Cases[/bold] ({report['catalogue']}): " + ", ".join(f"{k} {v}" for k, v in cases.items()))
    departments = Table("department", "requests", "median wd", "p90 wd", "on time", "supplements", "rejections",
                        "reminders", "escalations", title="Departments: working days to respond")
    for d in report["departments"]:  # type: ignore[attr-defined]
        departments.add_row(f"{d['name_zh']} {d['code']}", str(d["requests"]), str(d["median_response_working_days"]),
                            str(d["p90_response_working_days"]), _share(d["on_time_rate"]),
                            _share(d["supplement_rate"]), _share(d["rejection_rate"]), str(d["reminders"]),
                            str(d["escalations"]))
    console.print(departments)
    stages = Table("stage", "target wd", "completed", "median wd", "p90 wd", "on target", title="Stages")
    for s in report["stages"]:  # type: ignore[attr-defined]
        stages.add_row(f"{s['stage']} {s['name_zh']}", str(s["target_days"]), str(s["completed"]),
                       str(s["median_working_days"]), str(s["p90_working_days"]), _share(s["on_target_rate"]))
    console.print(stages)
    conflicts, sharing = report["conflicts"], report["sharing"]
    assert isinstance(conflicts, dict) and isinstance(sharing, dict)
    console.print("[bold]Conflicts[/bold]: " + ", ".join(f"{k} {v}" for k, v in conflicts.items()))
    console.print("[bold]Sharing[/bold]: " + ", ".join(f"{k} {v}" for k, v in sharing.items() if k != "refusals"))
    for refusal in sharing["refusals"]:
        console.print(f"  refused: {refusal['consumer']} ← {refusal['provider']} {refusal['contract']}: "
                      f"{refusal['reasons']}")
    calendar = report["calendar"]
    assert isinstance(calendar, dict)
    if calendar["note"]:
        console.print(f"[yellow]calendar:[/yellow] {calendar['note']}")


def _share(rate: object) -> str:
    return "" if rate is None else f"{float(rate):.0%}"  # type: ignore[arg-type]


async def gather_report() -> dict[str, object]:
    from base.clock import clock_from
    from base.settings import REPORTER, Settings
    from services.bureau.catalogue import load_catalogue
    from services.bureau.efficacy import load_report

    s = Settings.from_environment()
    return await load_report(s.dsn(REPORTER), load_catalogue(), clock_from(s).now())


def report(
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    html: Path = typer.Option(None, "--html", help="write an HTML page with charts to this file"),
) -> None:
    """Collaboration efficacy of the agency service, per department, stage and case, and for data sharing."""
    from services.bureau.report_page import render

    figures = asyncio.run(gather_report())
    if html is not None:
        html.write_text(render(figures), encoding="utf-8")
        console.print(f"wrote {html}")
    if as_json:
        print(json.dumps(figures, ensure_ascii=False, indent=2, default=str))
    elif html is None:
        print_report(figures)
