"""Test layers: tests/unit has no I/O; tests/integration and tests/e2e run on the real local stack (Apache
Kafka and PostgreSQL as processes), started here when it is not already up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from base.calendar import CHINA
from base.clock import AcceleratedClock
from base.settings import Settings
from contracts.departments import PRINCIPALS
from deploy.processes import AppProcesses
from deploy.stack import ready

STACK_LAYERS = ("integration", "e2e")
# Ten working days of a sharing request pass in about six real seconds. Twice the demo's speed: the tests wait on
# the clock for reminders, deadlines and notices, and at 100,000x the session took about 2 1/2 minutes longer.
CLOCK_SPEED = 200_000.0
RESPONSE_SCALE = 0.1  # departments answer in a tenth of their usual time, so a four-stage case takes seconds
CHROMIUM = "/usr/bin/chromium"  # Debian's package: Playwright's own browser downloads are not reachable here
CLOCK_START = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA)  # a Monday morning, whatever day the tests run on


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the stack are marked ``stack``; those marked ``disruptive`` (they restart the broker and the database
    under the session's exchange, and stop it) run after all the others."""
    for item in items:
        if any(part in STACK_LAYERS for part in Path(str(item.fspath)).parts):
            item.add_marker(pytest.mark.stack)
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


@pytest.fixture(scope="session")
def stack() -> Settings:
    """The real stack: Kafka and PostgreSQL up, migrations applied, topics there (all idempotent)."""
    s = Settings.from_environment()
    ready(s)
    return s


@pytest.fixture(scope="session")
def clock() -> AcceleratedClock:
    """The simulated clock the exchange's processes share in tests: one real second is SPEED seconds, from a
    fixed start (the run does not depend on today's date)."""
    return AcceleratedClock(CLOCK_START, CLOCK_SPEED)


@pytest.fixture(scope="session")
def exchange(stack: Settings, clock: AcceleratedClock) -> Iterator[AppProcesses]:
    """The gateway (router, API, audit keeper, agreement watch), the bureau (with its API) and the planning
    department, as real processes on the shared accelerated clock."""
    env = {"CONCORD_CLOCK_START": clock.start.isoformat(), "CONCORD_CLOCK_SPEED": str(clock.speed),
           "CONCORD_CLOCK_ANCHOR": repr(clock.anchor), "CONCORD_RESPONSE_SCALE": str(RESPONSE_SCALE)}
    with AppProcesses(stack, env) as apps:
        apps.start_exchange()
        apps.wait_ready()
        yield apps


@pytest.fixture(scope="session")
def tokens(stack: Settings) -> dict[str, str]:
    """The bearer token of every principal, from the credentials the local stack issued to its processes."""
    return {principal: stack.credentials(principal).http_token for principal in PRINCIPALS}


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """A real Chromium (Debian's), for the tests of pages."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        await chromium.close()
