"""`concord tasks …`: an officer's desk from the shell (`concord service run …` is the composition's, in deploy)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from base.runtime import TokenOption, answer, api_client, local_time, terminal

if TYPE_CHECKING:
    import httpx

tasks = typer.Typer(help="A department's desk: its tasks, decided by officers (human-in-the-loop).",
                    no_args_is_help=True)
console = terminal()


def _desks(token: str | None, acting: str) -> httpx.Client:
    """The desks' API with the token given, else the local stack's credentials of the department acting."""
    from base.settings import Settings

    s = Settings.from_environment()
    return api_client(s, f"http://{s.departments_host}:{s.departments_port}", token, acting)


@tasks.command("list")
def list_tasks(department: str, status: str = typer.Option("open", help="open, on_hold, awaiting_supplement, "
                                                                         "awaiting_data, parked, decided, noted, "
                                                                         "or all"),
               case: str = typer.Option(None, help="only this case's tasks"),
               limit: int = typer.Option(50, min=1, max=200, help="tasks on the page"),
               offset: int = typer.Option(0, min=0, help="where the page begins (oldest first)"),
               token: str = TokenOption) -> None:
    """A department's tasks, oldest first, a page at a time (times in Beijing time)."""
    params: dict[str, str | int] = {"limit": limit, "offset": offset}
    params |= {} if status == "all" else {"status": status}
    params |= {"case": case} if case else {}
    with _desks(token, department) as api:
        found = answer(api.get(f"/v1/departments/{department}/tasks", params=params))
        human = answer(api.get(f"/v1/departments/{department}/mode"))["mode"] == "human"
    # In human mode the officers decide; the department's pace only says when its rules would have.
    more = "" if found["next_offset"] is None else f"; the next page: --offset {found['next_offset']}"
    table = Table("task", "case", "item", "status", "rules would decide" if human else "rules decide at", "due",
                  "why parked", title=f"{department}: {'officers decide' if human else 'its rules decide'}",
                  caption=f"{len(found['tasks'])} of {found['total']} from {offset}{more}")
    for t in found["tasks"]:
        table.add_row(t["task_id"], t["case_id"], t["item_code"], t["status"], local_time(t["decide_at"]),
                      local_time(t["due_at"]), t["error"] or "")
    console.print(table)


@tasks.command("decide")
def decide(
    department: str, task_id: str,
    decision: str = typer.Option(..., help="approved, approved_with_conditions, supplement_requested, rejected; "
                                           "on a sharing request approved or rejected (with --ground); on an "
                                           "approval on commitment passed or failed; at the coordination office "
                                           "proceed_with_conditions or uphold_refusal"),
    condition: list[str] = typer.Option([], help="a condition (repeat for several)"),
    reason: list[str] = typer.Option([], help="a reason (repeat for several)"),
    ground: str = typer.Option(None, help="the ground of a refusal to share data: no_legal_basis, "
                                          "personal_information, not_necessary, no_case_named, vertical_system, "
                                          "unverified"),
    officer: str = typer.Option(os.environ.get("USER", "officer"), help="who decides"),
    token: str = TokenOption,
) -> None:
    """Decide a task as an officer."""
    body = {"decision": decision, "conditions": condition, "reasons": reason, "officer": officer,
            **({"sharing_ground": ground} if ground else {})}
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
