"""Running a long-lived component in the foreground: logging (text, or one JSON object a line), tracing when the
environment asks for it, and a clean stop on SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer
import uvloop
from rich.console import Console

if TYPE_CHECKING:
    import httpx

    from base.settings import LogFormat, Settings

TokenOption = typer.Option(None, "--token", envvar="CONCORD_TOKEN",
                           help="a bearer token (default: the local stack's credentials of the principal acting)")


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]], service: str,
                        log_format: LogFormat = "text") -> None:
    """Run ``main(stop)`` until it returns; SIGTERM and SIGINT set ``stop``. ``service`` is the process's name in
    its traces (``concord-gateway``, say), unless ``OTEL_SERVICE_NAME`` gives another."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    from base.logs import configure_logging  # here, not at the top: the commands that import this stay quick
    from base.tracing import start_tracing, stop_tracing

    configure_logging(log_format)
    start_tracing(service)
    try:
        # uvloop: the router moves about a quarter more events per second on it than on asyncio's own loop (bench/)
        uvloop.run(runner())
    finally:
        stop_tracing()


def terminal(stderr: bool = False) -> Console:
    """Rich output: the terminal's width, or a wide page when the output goes to a file or a pipe (CI logs)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(width=None if stream.isatty() else 140, stderr=stderr)


def local_time(moment: str | datetime | None) -> str:
    """A time as the district reads it: Beijing time, with its zone (blank for none)."""
    from base.calendar import CHINA

    if moment is None or moment == "":
        return ""
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return when.astimezone(CHINA).strftime("%Y-%m-%d %H:%M %z")


def api_client(settings: Settings, base_url: str, token: str | None, acting: str | None,
               timeout: float = 60.0) -> httpx.Client:
    """An API's client with a bearer token: the one given, else the local stack's credentials of the principal
    acting (when this host keeps them)."""
    import httpx

    if token is None and acting is not None and settings.secrets.credentials_file(acting).exists():
        token = settings.credentials(acting).http_token
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=timeout)


def answer(response: httpx.Response) -> Any:
    """The JSON of an API's answer; an error answer is printed as one line and the command exits 1."""
    if response.is_error:
        terminal(stderr=True).print(f"[red]error:[/red] {response.request.method} {response.request.url.path} answered "
                         f"{response.status_code}: {problem(response)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    return response.json()


def problem(response: httpx.Response) -> str:
    """What an error answer says: its ``detail`` (FastAPI's error body), else its text."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text[:500]
    if isinstance(detail, list):  # validation errors: where, and what
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail[:5])
    return str(detail) if detail is not None else response.text[:500]
