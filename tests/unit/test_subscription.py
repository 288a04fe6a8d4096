"""The department's consumer answers its subscriber's fetch only with records (``services.kit.subscription``):
FastStream's batch subscriber sleeps its batch timeout after an empty answer, and a record that came meanwhile
would wait for the sleep to end."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.kit.subscription import WAIT_MS, WaitingConsumer

TP = TopicPartition("deliver.coordination", 0)
RECORD = ConsumerRecord("deliver.coordination", 0, 7, 0, 0, b"G-1", b"{}", None, 3, 2, [])


async def test_a_fetch_asks_again_until_records_come_and_returns_them_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[dict[TopicPartition, list[Any]]] = [{}, {}, {TP: [RECORD]}, {}]
    asked: list[tuple[tuple[TopicPartition, ...], int, int | None]] = []

    async def fetch(self: AIOKafkaConsumer, *partitions: TopicPartition, timeout_ms: int = 0,
                    max_records: int | None = None) -> dict[TopicPartition, list[Any]]:
        asked.append((partitions, timeout_ms, max_records))
        return answers.pop(0)

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", fetch)
    consumer = WaitingConsumer(bootstrap_servers="127.0.0.1:9")  # never started: nothing is sent anywhere
    # the subscriber's own timeout is not how long the consumer waits: it asks again, WAIT_MS each time
    assert await consumer.getmany(TP, timeout_ms=20, max_records=200) == {TP: [RECORD]}
    assert asked == [((TP,), WAIT_MS, 200)] * 3
    assert answers == [{}]  # it did not ask past the answer with records
