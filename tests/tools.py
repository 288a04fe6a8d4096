"""Tools for tests on the real stack: reading and writing topics, waiting for a condition, HTTP auth."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from base.kafka import KafkaAccess
from base.settings import Settings
from contracts.envelope import KafkaRecord
from contracts.topics import Topics
from gateway.provisioning import provisioner
from gateway.topics import TopicSpec, ensure_topics, existing_topics

Record = ConsumerRecord[bytes, bytes]


def header(record: Record, name: str) -> str | None:
    value = dict(record.headers).get(name)
    return value.decode() if value is not None else None


class Tail:
    """Records appended to a topic after this tail was opened, or all of them (read_committed)."""

    def __init__(self, access: KafkaAccess, topic: str, from_start: bool = False) -> None:
        self.topic = topic
        self.from_start = from_start
        self.consumer = AIOKafkaConsumer(
            **access.aiokafka(), isolation_level="read_committed", enable_auto_commit=False
        )
        self.records: list[Record] = []

    async def __aenter__(self) -> Tail:
        await self.consumer.start()
        await self.consumer._client.set_topics([self.topic])  # fetch this topic's metadata
        partitions = [TopicPartition(self.topic, p) for p in self.consumer.partitions_for_topic(self.topic) or ()]
        if not partitions:
            await self.consumer.stop()
            raise AssertionError(f"topic {self.topic} does not exist")
        self.consumer.assign(partitions)
        ends = await (self.consumer.beginning_offsets if self.from_start else self.consumer.end_offsets)(partitions)
        for tp, offset in ends.items():
            self.consumer.seek(tp, offset)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.consumer.stop()

    async def wait_for(self, match: Callable[[Record], bool], count: int = 1, timeout: float = 30.0) -> list[Record]:
        """Wait until ``count`` records match; returns the matches (fails the test on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await self.consumer.getmany(timeout_ms=200)
            for records in batch.values():
                self.records.extend(records)
            matches = [r for r in self.records if match(r)]
            if len(matches) >= count:
                return matches
        raise AssertionError(f"{self.topic}: {len([r for r in self.records if match(r)])} of {count} "
                             f"expected records after {timeout}s")

    async def collect(self, seconds: float) -> list[Record]:
        """Everything that arrives in the next ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            batch = await self.consumer.getmany(timeout_ms=200)
            for records in batch.values():
                self.records.extend(records)
        return self.records


async def produce(access: KafkaAccess, topic: str, *records: KafkaRecord) -> None:
    producer = AIOKafkaProducer(**access.aiokafka(), enable_idempotence=True, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(topic, record.value, key=record.key, headers=record.headers)
    finally:
        await producer.stop()


async def eventually(check: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll an async check until it returns truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout}s")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def isolated_topics(stack: Settings, specs: list[TopicSpec]) -> None:
    """Topics of a test's own namespace, made by the admin, with the ACLs that follow for that namespace."""
    async with provisioner(stack) as admin:
        await ensure_topics(admin.access, specs)
        await admin.reconcile()


@asynccontextmanager
async def namespaced_exchange(stack: Settings, prefix: str) -> AsyncIterator[Topics]:
    """A whole exchange's topics under a namespace of the test's own, with their ACLs; removed afterwards."""
    topics = Topics(f"{prefix}-{uuid.uuid4().hex[:8]}")
    async with provisioner(stack) as admin:
        await admin.ensure_topics(topics)
    try:
        yield topics
    finally:
        async with provisioner(stack) as admin:
            mine = [t for t in await existing_topics(admin.access) if t.startswith(f"{topics.namespace}.")]
            client = AIOKafkaAdminClient(**admin.access.aiokafka())
            await client.start()
            try:
                await client.delete_topics(mine)
            finally:
                await client.close()
            await admin.reconcile()
