"""A three-node Kafka cluster (`concord stack up --brokers 3`) loses a broker while the router works: every event
whose write the producer saw acknowledged is routed (delivered or dead-lettered) exactly once, routing goes on
without it, and the broker, started again, rejoins (every partition back to three replicas in sync).

The cluster is a stack of the test's own (its folder, its ports after the session stack's, its PostgreSQL and its
secrets): the session's single-node stack is neither restarted nor given other credentials."""

from __future__ import annotations

import asyncio
import collections
import shutil
import signal
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import KafkaError, KafkaException

from base.settings import ADMIN, Settings
from contracts.bureau import StageCompleted
from contracts.envelope import KafkaRecord, encode, encode_payload
from deploy.processes import AppProcesses
from deploy.stack import Stack, kafka_nodes, ready, stop_nodes
from tests.tools import QUICK_START, Inspector, Record, Tail, eventually, header

BROKERS = 3
PORT_OFFSET = 8  # the cluster's ports follow the session stack's: Kafka +8 to +13, PostgreSQL +8
EVENTS = 1200
MALFORMED_EVERY = 10  # one event in ten cannot be parsed: the router dead-letters it
INGRESS = "ingress.bureau"
SHARED = "shared.bureau.stage-completed"
DEADLETTER = "deadletter.bureau"
# What the admin client may be told while a node goes or comes back.
CHANGING = {KafkaError._TIMED_OUT, KafkaError._TRANSPORT}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Settings]:
    """A stack of three Kafka nodes and a PostgreSQL of its own, provisioned, wiped afterwards."""
    session = Settings.from_environment()
    settings = Settings(
        stack_dir=tmp_path / "stack", kafka_brokers=BROKERS, kafka_port=session.kafka_port + PORT_OFFSET,
        kafka_controller_port=session.kafka_port + PORT_OFFSET + 1, postgres_port=session.postgres_port + PORT_OFFSET,
        kafka_bootstrap="", database_url="", secrets_dir=None, credentials_dir=None, topic_namespace="",
        kafka_jvm_options=QUICK_START)
    shared_cache = session.stack_path / "cache"  # the Kafka runtime Maven fetched once
    shared_cache.mkdir(parents=True, exist_ok=True)
    settings.stack_path.mkdir(parents=True)
    (settings.stack_path / "cache").symlink_to(shared_cache)
    stack = Stack(settings)
    try:
        ready(settings)
        yield settings
    finally:
        stop_nodes(stack.nodes, signal.SIGKILL)  # a throwaway cluster: no clean shutdown to wait for
        for node in stack.nodes:  # kept with the test's folder, for a failure to be looked into
            if node.log_file.exists():
                shutil.copy(node.log_file, tmp_path / f"kafka-{node.node_id}.log")
        stack.reset()


def environment(settings: Settings) -> dict[str, str]:
    """The cluster's settings for a process of the exchange (whatever the session's environment says)."""
    return {"CONCORD_STACK_DIR": str(settings.stack_path), "CONCORD_KAFKA_PORT": str(settings.kafka_port),
            "CONCORD_KAFKA_CONTROLLER_PORT": str(settings.kafka_controller_port),
            "CONCORD_KAFKA_BROKERS": str(BROKERS), "CONCORD_KAFKA_BOOTSTRAP": settings.bootstrap,
            "CONCORD_KAFKA_JVM_OPTIONS": settings.kafka_jvm_options,
            "CONCORD_POSTGRES_PORT": str(settings.postgres_port), "CONCORD_DATABASE_URL": "",
            "CONCORD_SECRETS_DIR": str(settings.secrets.root),
            "CONCORD_CREDENTIALS_DIR": str(settings.secrets.root / "credentials"), "CONCORD_TOPIC_NAMESPACE": ""}


def unless_changing(check: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
    """A check for `eventually` that takes the errors of a cluster losing or regaining a node for "not yet"."""

    async def checked() -> bool:
        try:
            return await check()
        except KafkaException as error:
            if error.args[0].code() in CHANGING:
                return False
            raise

    return checked


def event(run: str, i: int) -> KafkaRecord:
    case_id = f"G-CL-{run}-{i}"
    if i % MALFORMED_EVERY == 0:
        return encode_payload(b'{"case_id": "' + case_id.encode() + b'", "stage": ', version=1, subject=case_id,
                              contract_id="bureau.stage-completed", source="/concord/bureau")
    return encode(StageCompleted(case_id=case_id, stage=1, completed_at=datetime.now(UTC)), source="/concord/bureau")


def event_id(record: KafkaRecord) -> str:
    return dict(record.headers)["ce_id"].decode()


class Feed:
    """Events sent to the bureau's ingress in small batches, each awaited, noting which writes the cluster
    acknowledged (``acks=all``: on the leader and another replica in sync; a write that failed may or may not have
    been kept)."""

    def __init__(self, producer: AIOKafkaProducer, records: list[KafkaRecord]) -> None:
        self.producer = producer
        self.pending = list(records)
        self.acknowledged: list[str] = []
        self.task = asyncio.create_task(self._send())

    async def _send(self) -> None:
        while self.pending:
            chunk, self.pending = self.pending[:20], self.pending[20:]
            sent = [await self.producer.send(INGRESS, r.value, key=r.key, headers=r.headers) for r in chunk]
            for record, result in zip(chunk, await asyncio.gather(*sent, return_exceptions=True), strict=True):
                if not isinstance(result, BaseException):
                    self.acknowledged.append(event_id(record))
            await asyncio.sleep(0.02)


async def test_a_broker_killed_mid_stream_loses_nothing_acknowledged_duplicates_nothing_and_rejoins(
    cluster: Settings
) -> None:
    run = uuid.uuid4().hex[:8]
    inspector = Inspector(cluster.kafka(ADMIN))
    group = cluster.router_group
    records = [event(run, i) for i in range(EVENTS)]
    sent = {event_id(r) for r in records}
    malformed = {event_id(r) for i, r in enumerate(records) if i % MALFORMED_EVERY == 0}

    def mine(record: Record) -> bool:
        return header(record, "ce_id") in sent

    with AppProcesses(cluster, environment(cluster)) as apps:
        router = apps.start("router", "gateway", "run", "--no-serve", "--instance", "cluster")
        async with Tail(cluster.kafka(ADMIN), SHARED) as shared, Tail(cluster.kafka(ADMIN), DEADLETTER) as dead:
            producer = AIOKafkaProducer(**cluster.kafka("bureau").aiokafka(), enable_idempotence=True)
            await producer.start()
            try:
                first = event(f"{run}-first", 1)  # the router is at work once this one is routed
                await producer.send_and_wait(INGRESS, first.value, key=first.key, headers=first.headers)
                await shared.wait_for(lambda r: header(r, "ce_id") == event_id(first), timeout=60)
                feed = Feed(producer, records)
                await shared.wait_for(mine, count=EVENTS // 4, timeout=60)
                # The victim: the broker coordinating the router's group (it also leads partitions of every topic).
                coordinator = await inspector.coordinator(group)
                [victim] = [node for node in kafka_nodes(cluster) if node.node_id == coordinator]
                await asyncio.to_thread(victim.kill)
                after_kill = {event_id(r) for r in feed.pending}

                async def fenced() -> bool:  # the controllers have noticed: gone, and out of every partition's ISR
                    alive, lagging = await inspector.replication()
                    return victim.node_id not in alive and all(out == {victim.node_id} for out in lagging.values())

                await eventually(unless_changing(fenced), timeout=60)
                await feed.task
                # one marker per ingress partition, after everything: a duplicate would be routed before it
                markers = [event(f"{run}-marker", p + 1) for p in range(3)]
                for partition, marker in enumerate(markers):
                    await producer.send_and_wait(INGRESS, marker.value, key=marker.key, headers=marker.headers,
                                                 partition=partition)
            finally:
                await producer.stop()
            acknowledged = set(feed.acknowledged)
            assert acknowledged & after_kill, "nothing sent after the kill was acknowledged"
            marker_ids = {event_id(m) for m in markers}
            await shared.wait_for(lambda r: header(r, "ce_id") in marker_ids, count=3, timeout=60)
            routed = collections.Counter(header(r, "ce_id") for r in await shared.drain() if mine(r))
            lettered = collections.Counter(header(r, "ce_id") for r in await dead.drain() if mine(r))
        assert router.alive(), f"the router exited; see {apps.log_dir}"
        assert acknowledged - malformed <= set(routed), sorted(acknowledged - malformed - set(routed))[:5]
        assert acknowledged & malformed <= set(lettered), sorted(acknowledged & malformed - set(lettered))[:5]
        assert not set(routed) & malformed and not set(lettered) - malformed
        duplicated = (routed + lettered).most_common(1)
        assert not duplicated or duplicated[0][1] == 1, duplicated

    await asyncio.to_thread(victim.start)
    await asyncio.to_thread(victim.wait_ready)

    async def rejoined() -> bool:  # every partition, internal topics' too, has all three replicas in sync again
        alive, lagging = await inspector.replication()
        return alive == {node.node_id for node in kafka_nodes(cluster)} and not any(lagging.values())

    await eventually(unless_changing(rejoined), timeout=120)

