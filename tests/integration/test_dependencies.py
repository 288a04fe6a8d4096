"""A process waits for the broker and PostgreSQL at its start instead of exiting: it goes on as soon as both are
there, says which one it waits for, and ends quietly when it is stopped meanwhile; one that is there but refuses
the principal is not waited for (the start fails with the reason). The chaos run restarts both while components
are started again: `tests/e2e/test_chaos.py`."""

from __future__ import annotations

import asyncio
import logging
import socket

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError

from base.clock import SystemClock
from base.settings import Settings
from contracts.departments import GATEWAY
from deploy.bootstrap import database_answers, dependencies_answer
from services.kit.service import DepartmentService
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


async def test_a_database_that_refuses_the_principal_is_not_waited_for(stack: Settings) -> None:
    """A wrong password is a fault to report (the start goes on and fails with it), not an outage to wait out."""
    wrong = stack.dsn(GATEWAY).replace("@", "x@", 1)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)
    assert await asyncio.wait_for(database_answers(wrong), 30)
    nowhere = wrong.replace(f":{stack.postgres_port}/", f":{closed_port()}/")
    assert nowhere != wrong and not await asyncio.wait_for(database_answers(nowhere), 30)


async def test_a_service_whose_start_fails_lets_go_of_its_database(stack: Settings) -> None:
    """The broker went away between the wait and the start: the start fails, and the pool it had made is closed (a
    process's stop closes only what started)."""
    service = DepartmentService("planning", stack.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{closed_port()}"}),
                                SystemClock())
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(service.start(), 60)
    assert service.pool.is_closing()
