"""`concord gateway` and `concord topics`: run the router, create the exchange's topics."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from deploy.runtime import run_until_signalled
from deploy.settings import settings
from gateway.registry import Registry
from gateway.router import Router
from gateway.routing import NoAgreements
from gateway.topics import ensure_topics, planned_topics
from services.kit.clock import clock_from

gateway = typer.Typer(help="The gateway: routes, checks and records every event.", no_args_is_help=True)
topics = typer.Typer(help="The exchange's Kafka topics.", no_args_is_help=True)
console = Console()


@gateway.command("run")
def run(instance: str = typer.Option(None, help="stable instance name (a transactional id per instance)")) -> None:
    """Run a router instance; several instances share the ingress partitions as one consumer group."""
    s = settings()

    async def main(stop: asyncio.Event) -> None:
        router = Router(s, Registry.from_catalogue(), NoAgreements(), clock_from(s), instance)
        await router.run(stop)

    run_until_signalled(main)


@topics.command("ensure")
def ensure() -> None:
    """Create missing topics with their partitions and retention; align the existing ones."""
    done = asyncio.run(ensure_topics(settings().bootstrap))
    table = Table("topic", "partitions", "retention", "state")
    for spec in planned_topics():
        retention = "kept" if spec.retention_ms < 0 else f"{spec.retention_ms // 86_400_000} days"
        table.add_row(spec.name, str(spec.partitions), retention, done.get(spec.name, ""))
    console.print(table)
