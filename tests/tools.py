"""Tools for tests on the real stack: reading and writing topics, waiting for a condition, HTTP auth and the
answers an API's OpenAPI document promises."""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, KafkaError
from confluent_kafka import TopicPartition as ConfluentPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from jsonschema import Draft202012Validator

from base.clock import AcceleratedClock
from base.kafka import KafkaAccess
from base.settings import Settings
from contracts.envelope import KafkaRecord
from contracts.topics import Topics
from deploy.stack import remove_exchange
from gateway.provisioning import provisioner
from gateway.topics import TopicSpec, ensure_topics

Record = ConsumerRecord[bytes, bytes]
# One TLS context for every HTTP client of the tests: httpx otherwise loads the CA bundle for each client it makes
# (about 50 ms of CPU), and the tests make a client for most of their calls to an API.
TLS = ssl.create_default_context()
# For the JVMs a test starts of its own (a cluster's brokers, a broker to restart, the Kafka Streams peer): with C1
# alone they start in about half the time on two cores; the little data such a test moves does not need the
# optimising compiler (the stack's broker keeps it: without it the router fuzz test's records moved four times slower).
QUICK_START = "-XX:TieredStopAtLevel=1"


def http_client(**options: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` with these options, on the tests' one TLS context."""
    return httpx.AsyncClient(verify=TLS, **options)


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

    async def drain(self, timeout: float = 30.0) -> list[Record]:
        """Read everything committed to the topic up to now: once a marker written after some records has
        arrived, draining shows whether anything else came with them (no waiting to see that nothing does)."""
        partitions = list(self.consumer.assignment())
        ends = await self.consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        while any([await self.consumer.position(tp) < end for tp, end in ends.items()]):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.topic}: not read to its end within {timeout}s")
            for records in (await self.consumer.getmany(timeout_ms=200)).values():
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


async def clock_reaches(clock: AcceleratedClock, instant: datetime) -> None:
    """Wait until the simulated clock reaches ``instant`` (it runs ``speed`` times faster than real time)."""
    await asyncio.sleep(max((instant - clock.now()).total_seconds(), 0) / clock.speed + 0.01)
    assert clock.now() >= instant


@dataclass(frozen=True)
class Ran:
    """A `concord` command's exit code and what it wrote."""

    code: int
    out: str
    err: str


async def run_concord(*args: str, env: dict[str, str] | None = None, timeout: float = 120.0) -> Ran:
    """Run `concord ARGS` as a user would, in a process of its own (with the test session's settings)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deploy.cli", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200", **(env or {})})
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return Ran(process.returncode or 0, out.decode(), err.decode())


async def concord(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """The exit code and output (stdout, then stderr) of `concord ARGS`."""
    ran = await run_concord(*args, env=env)
    return ran.code, ran.out + ran.err


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def undocumented(document: dict[str, Any], method: str, path: str, response: httpx.Response) -> str | None:
    """How an answer differs from what the API's OpenAPI document promises for the operation (its status listed,
    its JSON body valid against the schema given there), or None when it does not."""
    answers = document["paths"][path][method.lower()]["responses"]
    where = f"{method} {path} answered {response.status_code}"
    answer = answers.get(str(response.status_code))
    if answer is None:
        return f"{where}, which its document does not list (only {', '.join(sorted(answers))})"
    schema = answer.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return f"{where}, for which its document gives no body"
    validator = Draft202012Validator({**schema, "components": document["components"]})
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(response.json())]
    return f"{where} with a body not as documented: {'; '.join(errors)[:300]}" if errors else None


async def isolated_topics(stack: Settings, specs: list[TopicSpec]) -> None:
    """Topics of a test's own namespace, made by the admin, with the ACLs that follow for that namespace."""
    async with provisioner(stack) as admin:
        await ensure_topics(admin.access, specs, admin.replication)
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
        await remove_exchange(stack, topics)


class Inspector:
    """What the broker knows of a consumer group and of open transactions (confluent-kafka's admin client)."""

    def __init__(self, access: KafkaAccess) -> None:
        self.client = AdminClient(access.confluent())

    @staticmethod
    async def _result(future: Any) -> Any:
        return await asyncio.to_thread(future.result, 30)

    async def members(self, group: str) -> list[tuple[str, set[tuple[str, int]]]]:
        """Each member's client id and the partitions it holds (members of one client id each on its own)."""
        [(_, described)] = self.client.describe_consumer_groups([group]).items()
        members = (await self._result(described)).members
        return [(m.client_id, {(tp.topic, tp.partition) for tp in m.assignment.topic_partitions}) for m in members]

    async def assignment(self, group: str) -> dict[str, set[tuple[str, int]]]:
        """Each member's client id and the partitions it holds (members of distinct client ids)."""
        return dict(await self.members(group))

    async def coordinator(self, group: str) -> int:
        """The node id of the broker that coordinates the group."""
        [(_, described)] = self.client.describe_consumer_groups([group]).items()
        return int((await self._result(described)).coordinator.id)

    async def replication(self) -> tuple[set[int], dict[tuple[str, int], set[int]]]:
        """From one metadata request: the node ids of the brokers the cluster counts as alive, and for every
        partition (internal topics' included) its replicas that are not in sync."""
        metadata = await asyncio.to_thread(self.client.list_topics, timeout=10)
        lagging = {(t, p): set(m.replicas) - set(m.isrs)
                   for t, topic in metadata.topics.items() for p, m in topic.partitions.items()}
        return set(metadata.brokers), lagging

    async def _ends(self, partitions: list[tuple[str, int]], isolation: IsolationLevel) -> dict[tuple[str, int], int]:
        request = {ConfluentPartition(t, p): OffsetSpec.latest() for t, p in partitions}
        futures = self.client.list_offsets(request, isolation_level=isolation)
        return {(tp.topic, tp.partition): (await self._result(f)).offset for tp, f in futures.items()}

    async def partitions(self, topics: list[str]) -> list[tuple[str, int]]:
        metadata = await asyncio.to_thread(self.client.list_topics, timeout=30)
        return [(t, p) for t in topics for p in metadata.topics[t].partitions]

    async def open_transactions(self, topics: list[str]) -> set[tuple[str, int]]:
        """Partitions whose last stable offset lags their end: a transaction is open on them."""
        partitions = await self.partitions(topics)
        stable = await self._ends(partitions, IsolationLevel.READ_COMMITTED)
        end = await self._ends(partitions, IsolationLevel.READ_UNCOMMITTED)
        return {tp for tp in partitions if stable[tp] < end[tp]}

    async def caught_up(self, group: str, partitions: set[tuple[str, int]]) -> bool:
        """The group has committed every record of these partitions (so nothing of theirs is in flight)."""
        if not partitions:
            return True
        request = [ConsumerGroupTopicPartitions(group, [ConfluentPartition(t, p) for t, p in sorted(partitions)])]
        [(_, future)] = self.client.list_consumer_group_offsets(request).items()
        committed = {(tp.topic, tp.partition): tp.offset for tp in (await self._result(future)).topic_partitions}
        end = await self._ends(sorted(partitions), IsolationLevel.READ_UNCOMMITTED)
        return all(committed[tp] == end[tp] for tp in partitions)


    async def committed(self, group: str, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The group's committed offsets, asked for stable: while a transaction that commits offsets of theirs is
        still being completed (its markers not yet written), the coordinator answers UNSTABLE_OFFSET_COMMIT, and
        they are asked for again."""
        request = [ConsumerGroupTopicPartitions(group, [ConfluentPartition(t, p) for t, p in sorted(partitions)])]
        async with asyncio.timeout(30):
            while True:
                [(_, future)] = self.client.list_consumer_group_offsets(request, require_stable=True).items()
                answer = (await self._result(future)).topic_partitions
                if not any(tp.error is not None and tp.error.code() == KafkaError.UNSTABLE_OFFSET_COMMIT
                           for tp in answer):
                    return {(tp.topic, tp.partition): tp.offset for tp in answer}
                await asyncio.sleep(0.05)

    async def set_committed(self, group: str, offsets: dict[tuple[str, int], int]) -> None:
        """Overwrite a group's committed offsets (the group must have no members)."""
        request = [ConsumerGroupTopicPartitions(group, [ConfluentPartition(t, p, o) for (t, p), o in offsets.items()])]
        [(_, future)] = self.client.alter_consumer_group_offsets(request).items()
        await self._result(future)
