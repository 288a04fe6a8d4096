"""Work on the way out that may hang (a client letting go of its connections, a pool waiting for one in use),
given a bound: past it, whoever asked is told where the work waits, and the work is cancelled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any


async def within(work: Awaitable[object], seconds: float, what: str, log: logging.Logger) -> None:
    """Await ``work`` for ``seconds`` at most. Past them ``log`` warns that ``what`` overran, naming where the work
    waits, and the work is cancelled (given up: left to the process's exit); the cancellation is not raised,
    whatever else the work raises is."""
    task = asyncio.ensure_future(work)
    await asyncio.wait([task], timeout=seconds)
    overran = not task.done()
    if overran:
        log.warning("%s took more than %g s: given up; it was waiting in %s", what, seconds, waiting_in(task))
        task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if not overran:
            raise


def waiting_in(task: asyncio.Future[Any]) -> str:
    """Where a suspended task waits: each coroutine of its chain of awaits, outermost first (file:line name)."""
    frames: list[str] = []
    awaited: Any = task.get_coro() if isinstance(task, asyncio.Task) else None
    while awaited is not None and len(frames) < 40:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None) \
            or getattr(awaited, "ag_frame", None)
        if frame is None:
            break
        where = "/".join(frame.f_code.co_filename.split("/")[-2:])  # the package and the module
        frames.append(f"{where}:{frame.f_lineno} {frame.f_code.co_name}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None) \
            or getattr(awaited, "ag_await", None)
        if isinstance(awaited, asyncio.Task):
            awaited = awaited.get_coro()
    return " > ".join(frames) or "(no frame)"
