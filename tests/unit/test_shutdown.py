"""A process stops in bounded time whatever its parts do: a part that ignores the stop is cancelled after the
grace, a close that hangs is left to the exit, a Kafka client's stop is bounded, and the log names each; the
well-behaved ones stop or close as usual. (Its supervisor kills a process that takes longer than 20 s, which loses
the clean stop.)"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import cast

import asyncpg
import pytest
from aiokafka import TopicPartition

from base.clock import SystemClock
from base.kafka import stop_client
from base.settings import Settings
from deploy.bootstrap import ComponentFailed, close_all, run_parts
from services.kit import service as kit_service
from services.kit.service import DepartmentService


async def test_a_part_that_ignores_the_stop_is_cancelled_after_the_grace_and_named(
        caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    ended: list[str] = []

    async def polite() -> None:
        await stop.wait()
        ended.append("polite")

    async def deaf() -> None:
        try:
            await asyncio.Event().wait()  # never set: it does not listen to the stop
        except asyncio.CancelledError:
            ended.append("deaf cancelled")
            raise

    asyncio.get_running_loop().call_soon(stop.set)
    with caplog.at_level(logging.WARNING, "concord.process"):
        await asyncio.wait_for(run_parts("test", {"polite": polite(), "deaf": deaf()}, stop, grace=0.2), 10)
    assert sorted(ended) == ["deaf cancelled", "polite"]
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("test part deaf had not stopped 0.2 s after the stop: cancelled; it was waiting in ")
    assert re.search(r"unit/test_shutdown\.py:\d+ deaf > asyncio/locks\.py:\d+ wait$", warning)  # each await


async def test_a_part_that_fails_stops_the_others_and_the_process_fails() -> None:
    stop = asyncio.Event()

    async def broken() -> None:
        raise RuntimeError("the database went away")

    with pytest.raises(ComponentFailed, match="parts failed: broken"):
        await asyncio.wait_for(run_parts("test", {"broken": broken(), "waiting": stop.wait()}, stop), 10)
    assert stop.is_set()


async def test_a_close_that_hangs_is_left_to_the_exit_and_the_others_are_still_closed(
        caplog: pytest.LogCaptureFixture) -> None:
    closed: list[str] = []

    async def hangs() -> None:
        await asyncio.Event().wait()

    async def fails() -> None:
        raise OSError("connection reset")

    async def closes(what: str) -> None:
        closed.append(what)

    with caplog.at_level(logging.WARNING, "concord.process"):
        await asyncio.wait_for(close_all("test", {"producer": hangs, "client": fails, "pool": lambda: closes("pool")},
                                         budget=0.2), 10)
    assert closed == ["pool"]
    hung, failed = [r.getMessage() for r in caplog.records]  # each close has half a second at least
    assert hung.startswith("test: closing its producer took more than 0.5 s: given up; it was waiting in ")
    assert re.search(r"unit/test_shutdown\.py:\d+ hangs > asyncio/locks\.py:\d+ wait$", hung)
    assert failed == "test: closing its client failed"


async def test_a_kafka_client_whose_stop_hangs_is_let_go_of_after_a_bound(caplog: pytest.LogCaptureFixture) -> None:
    """A client's stop waits for its connections to close, which was seen taking longer than a whole process may."""
    stops: list[str] = []

    async def hangs() -> None:
        stops.append("begun")
        await asyncio.Event().wait()

    async def stops_at_once() -> None:
        stops.append("stopped")

    with caplog.at_level(logging.WARNING, "concord.kafka"):
        await asyncio.wait_for(stop_client(hangs, "the test's consumer", seconds=0.2), 10)
        await asyncio.wait_for(stop_client(stops_at_once, "the test's producer", seconds=0.2), 10)
    assert stops == ["begun", "stopped"]
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("stopping the test's consumer took more than 0.2 s: given up; it was waiting in ")
    assert re.search(r"unit/test_shutdown\.py:\d+ hangs > asyncio/locks\.py:\d+ wait$", warning)


async def test_a_department_whose_last_offset_commit_hangs_still_lets_go_of_the_broker_and_its_database(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kit's stop commits how far its lanes got; a coordinator that never answers that commit does not hold the
    stop (what it leaves uncommitted is delivered again after a restart, and the inbox finds it handled)."""
    monkeypatch.setattr(kit_service, "STOP_SECONDS", 0.2)
    service = DepartmentService("water", Settings(kafka_security="PLAINTEXT"), SystemClock())
    let_go: list[str] = []

    class Unanswered:
        def assignment(self) -> set[TopicPartition]:
            return {TopicPartition("deliver.water", 0)}

        def pause(self, *partitions: TopicPartition) -> None:
            pass

        async def commit(self, offsets: dict[TopicPartition, int]) -> None:
            await asyncio.Event().wait()  # the group coordinator never answers

    class Pool:
        async def close(self) -> None:
            let_go.append("pool")

    async def broker_stop() -> None:
        let_go.append("broker")

    service.commits._consumer = Unanswered()
    service.commits.pending = {TopicPartition("deliver.water", 0): 7}
    service._pool = cast(asyncpg.Pool, Pool())
    monkeypatch.setattr(service.broker, "stop", broker_stop)
    service._relay = asyncio.create_task(asyncio.Event().wait())
    service._committing = asyncio.create_task(service.commits.run())
    with caplog.at_level(logging.WARNING, "concord.kit"):
        await asyncio.wait_for(service.stop(), 10)
    assert let_go == ["broker", "pool"]
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("water: its last commit of its offsets took more than 0.2 s: given up; it was "
                              "waiting in ")
    assert re.search(r"unit/test_shutdown\.py:\d+ commit > asyncio/locks\.py:\d+ wait$", warning)
