"""Running a long-lived component in the foreground: logging, and a clean stop on SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    import httpx


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aiokafka", "kafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)`` until it returns; SIGTERM and SIGINT set ``stop``."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    configure_logging()
    asyncio.run(runner())


def terminal() -> Console:
    """Rich output: the terminal's width, or a wide page when the output goes to a file or a pipe (CI logs)."""
    return Console(width=None if sys.stdout.isatty() else 140)


def answer(response: httpx.Response) -> Any:
    """The JSON of an API's answer; an error answer is printed and the command exits 1."""
    if response.is_error:
        terminal().print(f"[red]{response.status_code}[/red] {response.text}")
        raise typer.Exit(1)
    return response.json()
