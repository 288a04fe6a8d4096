"""`concord inbox …`: a department's parked events, and running one again once its cause is fixed. Both act as the
department itself (its PostgreSQL role); a replay runs the department's own handler, so the service that runs it is
composed where the processes are (``deploy``) and handed in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from base.runtime import local_time, terminal
from contracts.departments import SERVICE_DEPARTMENTS

if TYPE_CHECKING:  # imported by the commands when they run: `concord --help` stays quick
    from base.clock import Clock
    from base.settings import Settings
    from services.kit.inbox import ParkedEvent
    from services.kit.service import DepartmentService

# The service of a department as its process composes it (every handler declared), not consuming.
ServiceOf = Callable[[str, "Settings", "Clock"], "DepartmentService"]
console = terminal()
errors = terminal(stderr=True)


def department_code(value: str) -> str:
    if value not in SERVICE_DEPARTMENTS:
        raise typer.BadParameter(f"no department {value!r}; one of: {', '.join(SERVICE_DEPARTMENTS)}")
    return value


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def inbox_commands(service_of: ServiceOf) -> typer.Typer:
    inbox = typer.Typer(help="A department's inbox: events parked after their handler kept failing, and running "
                             "one again.", no_args_is_help=True)

    @inbox.command("parked")
    def parked(department: str = typer.Argument(..., parser=department_code),
               as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
        """The events a department parked (its handler kept failing), the oldest first.

        Each with its id, contract, sender, when it was parked, how often its handler ran, and the last error."""
        import asyncpg

        from base.settings import Settings
        from services.kit.inbox import PgInbox

        async def listed() -> list[ParkedEvent]:
            connection = await asyncpg.connect(Settings.from_environment().dsn(department))
            try:
                return await PgInbox(connection, department).parked_events()
            finally:
                await connection.close()

        found = asyncio.run(listed())
        if as_json:
            _print_json([{"event_id": p.event_id, "contract": p.contract, "sender": p.sender,
                          "parked_at": p.parked_at.isoformat(), "attempts": p.attempts, "error": p.error}
                         for p in found])
            return
        from rich.table import Table

        table = Table(title=f"{department}: {len(found)} parked")
        table.add_column("event", no_wrap=True)  # an id to copy into `concord inbox replay`
        for column in ("contract", "sender", "parked at", "attempts", "error"):
            table.add_column(column)
        for p in found:
            table.add_row(p.event_id, p.contract, p.sender, local_time(p.parked_at),
                          "" if p.attempts is None else str(p.attempts), p.error[:300])
        console.print(table)

    @inbox.command("replay")
    def replay(department: str = typer.Argument(..., parser=department_code), event_id: str = typer.Argument(...),
               as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
        """Run a parked event's handler again, as the department's service would.

        Handled, the event is marked so (and when it was replayed), and what its handler published goes out through
        the department's outbox; failed again, it stays parked with the new error and the command exits 1. An event
        that is not parked (handled, replayed already, unknown) is refused, and the command exits 1."""
        from base.clock import clock_from
        from base.settings import Settings
        from services.kit.inbox import NotReplayable, Outcome
        from services.kit.service import Replayed

        settings = Settings.from_environment()
        service = service_of(department, settings, clock_from(settings))

        async def run() -> Replayed:
            await service.connect()
            try:
                return await service.replay(event_id)
            finally:
                await service.disconnect()

        try:
            replayed = asyncio.run(run())
        except NotReplayable as refused:
            if as_json:
                _print_json({"department": department, "event_id": event_id, "outcome": "not_replayable",
                             "why": refused.why.value, "at": refused.at.isoformat() if refused.at else None})
            errors.print(f"[red]not replayed:[/red] {refused}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        if as_json:
            _print_json({"department": department, "event_id": event_id, "outcome": replayed.outcome.value,
                         "error": replayed.error})
        if replayed.outcome is not Outcome.HANDLED:
            errors.print(f"[red]failed again:[/red] {department}: event {event_id} stays parked: {replayed.error}",
                         highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        if not as_json:
            console.print(f"{department}: event {event_id} handled by a replay; what its handler published goes out "
                          "through the department's outbox", highlight=False)

    return inbox
