"""Work that falls due on the stack's clock (a desk's decisions, the bureau's deadlines): done when it is due, not
polled for. The worker says when its next piece of work is due; it is looked at again then, or as soon as its
department commits something that may change that (``DepartmentService.after_commit``), and after
``IDLE_SECONDS`` at the most (for a change it was not told of, or a clock set anew)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from base.clock import Clock
from services.kit.service import DepartmentService

log = logging.getLogger("concord.due")
IDLE_SECONDS = 0.5
RETRY_SECONDS = 0.1  # after a look that failed, or did none of the work due (a component it needs restarting, say)


def until_due(due: datetime | None, clock: Clock) -> float:
    """Real seconds until the next look, given when the next piece of work is due (None: nothing is): then, and
    ``IDLE_SECONDS`` at the most."""
    if due is None:
        return IDLE_SECONDS
    return min(max(clock.real_seconds(due - clock.now()), 0.0), IDLE_SECONDS)


class WhenDue:
    """Looks whenever work may be due: a look does what is due and says how many real seconds until the next (a
    look that fails is logged as the ``what`` of the department, and tried again after ``RETRY_SECONDS``)."""

    def __init__(self, service: DepartmentService, what: str) -> None:
        self.what = f"{service.department} {what}"
        self._look = asyncio.Event()  # something committed that may make work due sooner: look now
        service.after_commit(self._look.set)

    async def run(self, look: Callable[[], Awaitable[float]], stop: asyncio.Event) -> None:
        stopping = asyncio.create_task(self._look_when(stop))
        try:
            while not stop.is_set():
                self._look.clear()
                try:
                    wait = await look()
                except Exception:
                    log.exception("%s failed; trying again", self.what)
                    wait = RETRY_SECONDS
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._look.wait(), wait)
        finally:
            stopping.cancel()

    async def _look_when(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._look.set()
