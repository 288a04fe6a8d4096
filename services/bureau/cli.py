"""`concord case`: the front desk's commands for cases of the agency service, through the bureau's API (the
front desk's token by default, or an applicant's case token with ``--token``); ``template`` and ``requirements``
read the service catalogue, with no I/O."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from base.runtime import TokenOption, answer, api_client, terminal

if TYPE_CHECKING:  # imported by the commands when they run: `concord --help` stays quick
    import httpx

case = typer.Typer(help="Cases of the agency service.", no_args_is_help=True)
console = terminal()


def _bureau(token: str | None) -> httpx.Client:
    from base.settings import Settings
    from contracts.departments import BUREAU

    s = Settings.from_environment()
    return api_client(s, f"http://{s.bureau_host}:{s.bureau_port}", token, BUREAU)


def _print(view: Any) -> None:
    console.print_json(json.dumps(view, ensure_ascii=False))


@case.command("template")
def template(project_type: str = typer.Option(None, "--type", help="industrial, warehouse, commercial, residential, "
                                                                    "public or infrastructure (default: any)"),
             seed: int = typer.Option(1, help="another seed, another project")) -> None:
    """Print an application that passes intake: a plausible project with every document it needs. Edit it, then
    `concord case requirements FILE` and `concord case submit FILE`."""
    from services.bureau.samples import template as sample

    print(sample(project_type, seed).model_dump_json(indent=2))


@case.command("requirements")
def requirements(application: Path = typer.Argument(..., help="a JSON application (or just its project, "
                                                               "documents and promised_documents)"),
                 stage: int = typer.Option(None, min=1, max=4, help="one stage only"),
                 as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """The approval items and documents a project needs, and whether the application would pass intake."""
    from rich.table import Table

    from services.bureau.api import ProjectDocuments
    from services.bureau.catalogue import load_catalogue
    from services.bureau.model import requirements as needs

    given = json.loads(application.read_text(encoding="utf-8"))
    if not isinstance(given, dict):
        raise typer.BadParameter(f"{application} holds JSON that is not an object")
    body = ProjectDocuments.model_validate({k: v for k, v in given.items() if k in ProjectDocuments.model_fields})
    found = needs(body.project, body.documents, body.promised_documents, load_catalogue(), stage)
    if as_json:
        print(found.model_dump_json(indent=2))
        return
    items = Table("stage", "item", "name", "department", "working days", title=f"{body.project.name}: approval items")
    for i in found.items:
        items.add_row(str(i.stage), i.code, i.name_zh, i.department, str(i.committed_days))
    console.print(items)
    documents = Table("document", "key", "state", "for", title="documents")
    for d in found.documents:
        documents.add_row(d.name, "key" if d.key else "", d.state.value, ", ".join(d.items))
    console.print(documents)
    survey = "a joint site survey is arranged" if found.joint_site_survey else "no joint site survey"
    console.print(f"{survey}; the whole case: {found.case_target_days} working days at the most")
    console.print("intake: [green]passes[/green]" if found.intake is None else f"intake: [red]refused[/red]: "
                  f"{found.intake}")


@case.command("submit")
def submit(application: Path = typer.Argument(..., help="JSON file with the project and the applicant"),
           token: str = TokenOption) -> None:
    """Accept a case: stored, its first stage opened, the requests published. Prints the case and the applicant's
    case token (shown once)."""
    with _bureau(token) as api:
        _print(answer(api.post("/v1/cases", content=application.read_bytes(),
                               headers={"content-type": "application/json"})))


@case.command("show")
def show(case_id: str, token: str = TokenOption) -> None:
    """A case with its requests, opinions and what holds it up."""
    with _bureau(token) as api:
        _print(answer(api.get(f"/v1/cases/{case_id}")))


@case.command("list")
def list_cases(status: list[str] = typer.Option([], help="in_progress, held, suspended, completed, rejected, "
                                                          "closed (repeat for several)"),
               stuck: bool = typer.Option(False, "--stuck", help="only cases something holds up now, and what"),
               applicant: bool = typer.Option(False, "--applicant", help="only cases waiting for their applicant: a "
                                              "supplement asked for, documents promised, a refusal or a suspension"),
               agent: str = typer.Option(None, help="one agent's cases"),
               cases: list[str] = typer.Option([], "--case", help="only this case (repeat for several)"),
               limit: int = typer.Option(50, min=1, max=200), offset: int = typer.Option(0, min=0),
               as_json: bool = typer.Option(False, "--json", help="print the page as JSON"),
               token: str = TokenOption) -> None:
    """Cases, newest first, a page at a time."""
    from rich.table import Table

    params: dict[str, Any] = {"status": status, "stuck": stuck, "applicant": applicant, "limit": limit,
                              "offset": offset, "ids": cases}
    if agent:
        params["agent"] = agent
    with _bureau(token) as api:
        page = answer(api.get("/v1/cases", params=params))
    if as_json:
        _print(page)
        return
    table = Table("case", "status", "stage", "agent", "project", "held up by")
    for c in page["cases"]:
        table.add_row(c["case_id"], c["status"], str(c["stage"]), c["agent"], c["project"]["name"],
                      "\n".join(f"{h['hold']}: {h['detail']}" for h in c["stuck"]))
    console.print(table)
    more = f"; next page: --offset {page['next_offset']}" if page["next_offset"] is not None else ""
    console.print(f"{len(page['cases'])} of {page['total']}{more}")


@case.command("supplement")
def supplement(case_id: str, documents: list[str] = typer.Argument(..., help="the documents handed in"),
               token: str = TokenOption) -> None:
    """The enterprise answers the supplement requests open on its case (补正)."""
    with _bureau(token) as api:
        _print(answer(api.post(f"/v1/cases/{case_id}/supplements", json={"documents": documents})))


@case.command("documents")
def documents(case_id: str, names: list[str] = typer.Argument(..., help="the promised documents handed in"),
              token: str = TokenOption) -> None:
    """The enterprise hands in documents it promised at intake (容缺受理)."""
    with _bureau(token) as api:
        _print(answer(api.post(f"/v1/cases/{case_id}/documents", json={"documents": names})))


@case.command("resubmit")
def resubmit(case_id: str, project: Path = typer.Argument(..., help="JSON file with the revised project (or an "
                                                                      "application holding it)"),
             token: str = TokenOption) -> None:
    """After a refusal, resubmit a revised project."""
    given = json.loads(project.read_text(encoding="utf-8"))
    revised = given.get("project", given) if isinstance(given, dict) else given
    with _bureau(token) as api:
        _print(answer(api.post(f"/v1/cases/{case_id}/resubmissions", json={"project": revised})))


def print_report(report: dict[str, object]) -> None:
    """The report as tables on the terminal."""
    from rich.table import Table

    cases = report["cases"]
    assert isinstance(cases, dict)
    console.print(f"[bold]Cases[/bold] ({report['catalogue']}): " + ", ".join(
        f"{k} {_share(v) if k.endswith('_rate') else _figure(v)}" for k, v in cases.items()))
    departments = Table("department", "requests", "median wd", "p90 wd", "on time", "supplements", "rejections",
                        "reminders", "escalations", title="Departments: working days to respond")
    for d in report["departments"]:  # type: ignore[attr-defined]
        departments.add_row(f"{d['name_zh']} {d['code']}", str(d["requests"]),
                            _figure(d["median_response_working_days"]), _figure(d["p90_response_working_days"]),
                            _share(d["on_time_rate"]),
                            _share(d["supplement_rate"]), _share(d["rejection_rate"]), str(d["reminders"]),
                            str(d["escalations"]))
    console.print(departments)
    stages = Table("stage", "target wd", "completed", "median wd", "p90 wd", "on target", title="Stages")
    for s in report["stages"]:  # type: ignore[attr-defined]
        stages.add_row(f"{s['stage']} {s['name_zh']}", str(s["target_days"]), str(s["completed"]),
                       _figure(s["median_working_days"]), _figure(s["p90_working_days"]), _share(s["on_target_rate"]))
    console.print(stages)
    conflicts, sharing = report["conflicts"], report["sharing"]
    assert isinstance(conflicts, dict) and isinstance(sharing, dict)
    console.print("[bold]Conflicts[/bold]: " + ", ".join(f"{k} {v}" for k, v in conflicts.items()))
    console.print("[bold]Sharing[/bold]: " + ", ".join(f"{k} {_figure(v)}" for k, v in sharing.items()
                                                       if k != "refusals"))
    barriers = report["barriers"]
    assert isinstance(barriers, dict)
    providers = Table("provider", "received", "approved", "counter-offered", "refused", "of which binding",
                      "refused by reason", "median wd to decide", "escalations",
                      title="Barriers to sharing: providers")
    for p in barriers["providers"]:
        providers.add_row(p["provider"], str(p["requests_received"]), str(p["approved"]), str(p["counter_offered"]),
                          str(p["refused"]), str(p["refused_binding"]),
                          ", ".join(f"{k} {v}" for k, v in p["refused_by_reason"].items()),
                          _figure(p["median_working_days_to_decide"]), str(p["escalations"]))
    console.print(providers)
    console.print("[bold]Refusals escalated to the coordination office[/bold]: "
                  + ", ".join(f"{k} {v}" for k, v in barriers["office"].items()))
    consumers = Table("consumer", "waits", "shared", "withheld", "still waiting", "wd waited", "median wd",
                      title="Barriers to sharing: working days consumers' cases waited for data")
    for c in barriers["consumers"]:
        consumers.add_row(c["consumer"], str(c["waits"]), str(c["shared"]), str(c["withheld"]),
                          str(c["still_waiting"]), str(c["waited_working_days"]),
                          _figure(c["median_wait_working_days"]))
    console.print(consumers)
    lost = [c for c in barriers["cases"] if c["lost_working_days"]]
    console.print(f"[bold]Withheld data[/bold]: {barriers['cases_that_waited']} cases waited for data; "
                  f"{len(lost)} lost {barriers['working_days_lost']} working days to data withheld in the end" + (
                      f" (most: {lost[0]['case_id']}, {lost[0]['lost_working_days']})" if lost else ""))
    exchange = report["exchange"]
    assert isinstance(exchange, dict)
    console.print(f"[bold]Exchange[/bold]: {exchange['hops']} hops, transit p50 {_figure(exchange['transit_p50_ms'])}"
                  f" ms, p99 {_figure(exchange['transit_p99_ms'])} ms ({exchange['note']})")
    hops = Table("sender", "consumer", "events", "p50 ms", "p99 ms", title="Exchange: transit per hop")
    for h in exchange["by_hop"][:12]:
        hops.add_row(h["sender"], h["consumer"], str(h["events"]), str(h["transit_p50_ms"]), str(h["transit_p99_ms"]))
    console.print(hops)
    calendar = report["calendar"]
    assert isinstance(calendar, dict)
    if calendar["note"]:
        console.print(f"[yellow]calendar:[/yellow] {calendar['note']}")


def _share(rate: object) -> str:
    return "–" if rate is None else f"{float(rate):.0%}"  # type: ignore[arg-type]


def _figure(value: object) -> str:
    """A figure, or a dash where there is none yet (no case completed, say)."""
    return "–" if value is None else str(value)


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
