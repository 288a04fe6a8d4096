"""A relay stops when it is cancelled, even when the cancellation comes as it is woken: Python 3.11's
``asyncio.wait_for`` returns the inner result and drops a cancellation that arrives once the inner wait is done,
and a relay that waited with it ran on, holding its service's stop for ever."""

from __future__ import annotations

import asyncio

import pytest

from base.outbox import Outbox


class QuietOutbox(Outbox):
    """The relay's loop alone: each pass finds nothing to send."""

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self.passed = asyncio.Event()

    async def relay_once(self, limit: int = 0) -> int:
        self.passed.set()
        return 0


@pytest.mark.parametrize("steps", [0, 1, 2, 3])
async def test_a_relay_cancelled_as_it_is_woken_stops(steps: int) -> None:
    outbox = QuietOutbox()
    relay = asyncio.create_task(outbox.run(poll_seconds=60))
    await outbox.passed.wait()
    # sleep(0) paces nothing and proves no absence: it hands the loop one step, to place the cancellation at each
    # step between the wake and the relay's next pass (the lost cancellation lies among them)
    await asyncio.sleep(0)
    outbox.wake()
    for _ in range(steps):
        await asyncio.sleep(0)
    relay.cancel()
    done, _ = await asyncio.wait([relay], timeout=5)  # a bound for the failure alone: a stopping relay ends at once
    assert relay in done and relay.cancelled()
