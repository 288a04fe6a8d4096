"""Test layers: tests/unit has no I/O; tests/integration and tests/e2e run on the real local stack (Apache
Kafka and PostgreSQL as processes), started here when it is not already up."""

from __future__ import annotations

import os
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

CLOCK_SPEED = 100_000.0  # ten working days of a sharing request pass in about twelve real seconds
RESPONSE_SCALE = 0.1  # departments answer in a tenth of their usual time, so a four-stage case takes seconds
CHROMIUM = "/usr/bin/chromium"  # Debian's package: Playwright's own browser downloads are not reachable here
CLOCK_START = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA)  # a Monday morning, whatever day the tests run on
FIRST_TEST_STARTED = "CONCORD_TESTS_FIRST_STARTED"  # a file to make when the first test starts (tests.run)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the session's stack (the ``stack`` fixture) are marked ``stack``: ``make test`` runs them in
    one pytest and all the others beside it in a second (``tests.run``). Those marked ``disruptive`` (they restart
    the broker and the database under the session's exchange, and stop it) run after all the others."""
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


def pytest_runtest_call(item: pytest.Item) -> None:
    """Tells ``tests.run`` that the first test is past its setup (the stack up, the exchange started): the tests
    beside these may start now without slowing the stack's start down."""
    if (started := os.environ.get(FIRST_TEST_STARTED)) and not Path(started).exists():
        Path(started).touch()


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
