"""Test layers: tests/unit has no I/O; tests/integration and tests/e2e run on the real local stack (Apache
Kafka and PostgreSQL as processes), started here when it is not already up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.departments import BUREAU, PLANNING
from deploy.migrate import migrate
from deploy.processes import AppProcesses
from deploy.settings import Settings, settings
from deploy.stack import Stack
from gateway.topics import ensure_topics

STACK_LAYERS = ("integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(part in STACK_LAYERS for part in Path(str(item.fspath)).parts):
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def stack() -> Settings:
    """The real stack: Kafka and PostgreSQL up, migrations applied, topics there."""
    s = settings()
    local = Stack(s)
    if local.is_up():
        migrate(s.dsn)
    else:
        local.up()
    asyncio.run(ensure_topics(s.bootstrap))
    return s


@pytest.fixture(scope="session")
def exchange(stack: Settings) -> Iterator[AppProcesses]:
    """The gateway router, the bureau (with its API) and the planning department, as real processes."""
    with AppProcesses(stack) as apps:
        apps.start_exchange([BUREAU, PLANNING])
        apps.wait_http(f"http://{stack.bureau_host}:{stack.bureau_port}/healthz")
        yield apps
