"""A process waits for the broker and PostgreSQL at its start instead of exiting: it goes on as soon as both answer
its principal, says which one it waits for, and ends quietly when it is stopped meanwhile. (The chaos run restarts
both while components are started again: `tests/e2e/test_chaos.py`.)"""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from base.settings import Settings
from contracts.departments import GATEWAY
from deploy.bootstrap import dependencies_answer
from tests.tools import eventually


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ours(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the process said (not its Kafka client's complaints of each attempt)."""
    return [r.getMessage() for r in caplog.records if r.name == "concord.process"]


async def test_the_stack_answers_and_the_process_goes_on_at_once(
        stack: Settings, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "concord.process"):
        assert await asyncio.wait_for(dependencies_answer(stack, GATEWAY, asyncio.Event()), 30)
    assert ours(caplog) == []


async def test_a_broker_that_does_not_answer_is_waited_for_until_the_process_is_stopped(
        stack: Settings, caplog: pytest.LogCaptureFixture) -> None:
    nowhere = stack.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{closed_port()}"})
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO, "concord.process"):
        waiting = asyncio.create_task(dependencies_answer(nowhere, GATEWAY, stop))
        await eventually(lambda: ours(caplog), timeout=30)
        assert not waiting.done()
        stop.set()
        assert await asyncio.wait_for(waiting, 30) is False
    assert ours(caplog) == ["gateway: waiting for Kafka to answer"]
