"""The console's verification of the whole audit chain runs apart from the request that began it (a long chain
takes longer than a browser waits): one at a time, shown under way, and whatever stops it is its outcome."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from deploy.console.views import Sources, start_verification

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class UnreachablePool:
    """A pool whose connection is refused once ``refuse`` is set."""

    def __init__(self) -> None:
        self.refuse = asyncio.Event()

    def acquire(self) -> UnreachablePool:
        return self

    async def __aenter__(self) -> Any:
        await self.refuse.wait()
        raise ConnectionRefusedError("the database is down")

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_one_verification_at_a_time_and_a_failure_is_its_outcome() -> None:
    pool = UnreachablePool()
    src = cast(Sources, SimpleNamespace(pool=pool, anchors=None, clock=SimpleNamespace(now=lambda: NOW),
                                        last_verification=None, verifying=None, _verification=None))
    assert start_verification(src, "operator")
    assert src.verifying == {"at": NOW, "by": "operator"} and src.last_verification is None
    assert not start_verification(src, "operator")  # a second press joins the one under way
    first = src._verification
    pool.refuse.set()
    assert first is not None
    await first
    assert src.verifying is None
    outcome = src.last_verification
    assert outcome is not None and not outcome["ok"] and outcome["by"] == "operator"
    assert outcome["failed"].startswith("ConnectionRefusedError")
    assert start_verification(src, "operator") and src._verification is not first  # the next press begins anew
    await src._verification
