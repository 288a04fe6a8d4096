"""`make demo`: the local stack, the gateway and the services, then cases of the agency service, end to end."""

from __future__ import annotations

import asyncio
import time

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contracts.departments import BUREAU
from deploy.processes import AppProcesses
from deploy.settings import Settings
from deploy.stack import Stack
from gateway.topics import ensure_topics, planned_topics
from services.bureau.samples import applications
from services.departments import RULES

console = Console()


def prepare(settings: Settings) -> None:
    """The stack up and the topics there (both idempotent)."""
    with console.status("starting Kafka and PostgreSQL"):
        Stack(settings).up()
    asyncio.run(ensure_topics(settings.bootstrap, planned_topics(settings.topics)))


def run_demo(settings: Settings, count: int, timeout: float, seed: int) -> int:
    prepare(settings)
    base = f"http://{settings.bureau_host}:{settings.bureau_port}"
    with AppProcesses(settings) as apps, httpx.Client(base_url=base, timeout=10.0) as http:
        apps.start_exchange([BUREAU, *RULES])
        apps.wait_http(f"{base}/healthz")
        console.print(f"gateway and services up (logs in {apps.log_dir})")
        started = time.monotonic()
        case_ids: list[str] = []
        ended: dict[str, dict] = {}  # type: ignore[type-arg]
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            submitting = progress.add_task("submitting", total=count)
            for application in applications(count, seed):
                response = http.post("/v1/cases", content=application.model_dump_json(),
                                     headers={"content-type": "application/json"})
                response.raise_for_status()
                case_ids.append(response.json()["case_id"])
                progress.advance(submitting)
            finishing = progress.add_task("cases finished", total=count)
            deadline = time.monotonic() + timeout
            while len(ended) < count and time.monotonic() < deadline:
                pending = [c for c in case_ids if c not in ended]
                for view in http.get("/v1/cases", params={"ids": pending}).json():
                    if view["status"] != "in_progress":
                        ended[view["case_id"]] = view
                progress.update(finishing, completed=len(ended))
                time.sleep(0.3)
        wall = time.monotonic() - started
    print_cases(case_ids, ended)
    console.print(f"{len(ended)} of {count} cases finished in {wall:.1f} s of wall time")
    console.print(f"cases completed: {len(ended)}/{count}")
    return 0 if len(ended) == count else 1


def print_cases(case_ids: list[str], ended: dict[str, dict]) -> None:  # type: ignore[type-arg]
    from datetime import datetime

    table = Table("case", "project", "outcome", "opinions", "time to finish")
    for case_id in case_ids:
        view = ended.get(case_id)
        if view is None:
            table.add_row(case_id, "", "[red]unfinished[/red]", "", "")
            continue
        took = datetime.fromisoformat(view["completed_at"]) - datetime.fromisoformat(view["submitted_at"])
        opinions = ", ".join(f"{r['department']}:{r['decision']}" for r in view["requests"])
        table.add_row(case_id, view["project_name"], view["status"], opinions, f"{took.total_seconds() * 1000:.0f} ms")
    console.print(table)
