"""What every measurement of the benchmark shares: where it runs (``Target``), the events it sends, preloading
them, timing processes over a preload from their first commit to their last, and latency from an ingress
produce at a fixed rate to a read_committed consume of the output."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError
from rich.console import Console
from rich.progress import Progress

from base.kafka import KafkaAccess
from base.settings import ADMIN, Settings
from contracts.bureau import Decision, OpinionIssued
from contracts.envelope import encode
from contracts.topics import Topics
from deploy.stack import ensure_exchange, remove_exchange
from gateway.topics import TopicSpec, ensure_topics, planned_topics

console = Console()
LATENCY_WAIT_SECONDS = 60  # for the last events of a latency run to arrive
# Sent at the run's rate before the seconds measured, and not counted: a process's first seconds after its start are
# its start (a router's first metadata lookups, connections and transactions held its first events up to 0.65 s on
# this machine, p50 and p99 over its first ten seconds 17.5 / 650 ms against 15.6 / 37 over the next ten).
WARM_UP_SECONDS = 3


@dataclass(frozen=True)
class Run:
    name: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


@dataclass(frozen=True)
class Target:
    """Where a measurement runs: the settings its processes get, and who plays which part."""

    name: str
    settings: Settings
    env: dict[str, str]  # for the router and pipe processes

    @property
    def secured(self) -> bool:
        return self.settings.kafka_security != "PLAINTEXT"

    def kafka(self, principal: str) -> KafkaAccess:
        return self.settings.kafka(principal)


def opinion(i: int, run: str) -> OpinionIssued:
    return OpinionIssued(request_id=f"{run}-{i}/NRP-101/1", case_id=f"{run}-{i}", item_code="NRP-101",
                         decision=Decision.APPROVED, conditions=[], reasons=[], officer="规划科 赵敏",
                         decided_at=datetime.now(UTC))


def percentile(ordered: Sequence[float], share: float) -> float:
    """The value below which ``share`` of the (sorted) samples fall."""
    return round(ordered[max(0, min(len(ordered) - 1, int(len(ordered) * share) - 1))], 1)


async def preload(sender: KafkaAccess, topic: str, events: int, run: str) -> None:
    producer = AIOKafkaProducer(**sender.aiokafka(), enable_idempotence=True, linger_ms=10, max_batch_size=512 * 1024)
    await producer.start()
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"preloading {events} events", total=events)
            sends = []
            for i in range(events):
                record = encode(opinion(i, run), source="/concord/planning")
                sends.append(await producer.send(topic, record.value, key=record.key, headers=record.headers))
                if len(sends) >= 2000:
                    await asyncio.gather(*sends)
                    progress.advance(task, len(sends))
                    sends = []
            await asyncio.gather(*sends)
            progress.advance(task, len(sends))
    finally:
        await producer.stop()


class Consumption:
    """How far a group has committed through a topic, asked of the broker again and again over one admin client and
    one consumer kept for the whole measurement: a client made anew for each look would cost a TLS handshake and a
    SCRAM exchange every time (a quarter of a core at twenty looks a second), taken from the processes measured."""

    def __init__(self, admin_access: KafkaAccess, group: str, topic: str) -> None:
        self.group = group
        self.topic = topic
        self.admin = AIOKafkaAdminClient(**admin_access.aiokafka())
        self.consumer = AIOKafkaConsumer(**admin_access.aiokafka())
        self.partitions: list[TopicPartition] = []

    async def __aenter__(self) -> Consumption:
        await self.admin.start()
        try:
            await self.consumer.start()
        except BaseException:
            await self.admin.close()
            raise
        await self.consumer._client.set_topics([self.topic])
        self.partitions = [TopicPartition(self.topic, p) for p in self.consumer.partitions_for_topic(self.topic) or ()]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def consumed(self) -> tuple[int, int]:
        """(records the group has committed past, records in the topic)."""
        try:
            offsets = await self.admin.list_consumer_group_offsets(self.group)
        except GroupCoordinatorNotAvailableError:  # a fresh node makes its offsets topic on the first group
            offsets = {}
        ends = await self.consumer.end_offsets(self.partitions)
        done = sum(meta.offset for tp, meta in offsets.items() if tp.topic == self.topic and meta.offset > 0)
        return done, sum(ends.values())


class Processes:
    """Processes of one measurement, their output appended to a log of the stack's; stopped (SIGTERM, so that
    they leave their group) when the block ends."""

    def __init__(self, target: Target, name: str, commands: Sequence[list[str]], env: dict[str, str]) -> None:
        logs = target.settings.stack_path / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"bench-{target.name}-{name}.log"
        self.commands = commands
        self.env = {**os.environ, **target.env, **env}
        self.running: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Processes:
        self.log = self.log_path.open("ab")
        self.start = self.log.tell()
        self.running = [subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=self.env,
                                         stdin=subprocess.DEVNULL) for command in self.commands]
        return self

    def check(self) -> None:
        for command, process in zip(self.commands, self.running, strict=True):
            if process.poll() is not None:
                raise RuntimeError(f"{' '.join(command[:4])} exited ({process.returncode}); see {self.log_path}")

    def wait_for(self, marker: bytes, timeout: float = 120.0) -> None:
        """Return once every process has logged the marker (since they started)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as log:
                log.seek(self.start)
                if log.read().count(marker) >= len(self.running):
                    return
            self.check()
            time.sleep(0.1)
        raise RuntimeError(f"no {marker.decode()!r} within {timeout:.0f}s; see {self.log_path}")

    def __exit__(self, *exc: object) -> None:
        for process in self.running:
            process.terminate()
        for process in self.running:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.log.close()


def timed(name: str, target: Target, group: str, topic: str, commands: Sequence[list[str]],
          env: dict[str, str]) -> Run:
    """Run pipe processes (one group) over the preloaded topic; time them from the group's first commit to its
    last, so that process start-up is not counted."""
    with Processes(target, name.split()[0], commands, env) as processes:
        return asyncio.run(_timed(name, target, group, topic, processes))


async def _timed(name: str, target: Target, group: str, topic: str, processes: Processes) -> Run:
    first: tuple[float, int] | None = None
    async with Consumption(target.kafka(ADMIN), group, topic) as consumption:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{name} ({target.name})", total=None)
            while True:
                done, total = await consumption.consumed()
                now = time.monotonic()
                progress.update(task, completed=done, total=total)
                if done and first is None:
                    first = (now, done)
                if first and done >= total:
                    return Run(name, done - first[1], now - first[0])
                processes.check()
                await asyncio.sleep(0.05)


async def latency(target: Target, topics: Topics, rate: int, seconds: int, run: str, source: str | None = None,
                  destination: str | None = None, sender: str = "planning",
                  warm_up_seconds: int = WARM_UP_SECONDS) -> list[float]:
    """Produce at a fixed rate to the source (planning's ingress unless told) as the sender; measure until each
    event is consumed, read_committed, from the destination (the bureau's deliver topic unless told), as the
    admin. The events of the first ``warm_up_seconds`` go the same way and are not counted. Milliseconds, sorted."""
    source = source or topics.ingress("planning")
    destination = destination or topics.deliver("bureau")
    consumer = AIOKafkaConsumer(**target.kafka(ADMIN).aiokafka(), isolation_level="read_committed")
    producer = AIOKafkaProducer(**target.kafka(sender).aiokafka(), enable_idempotence=True, linger_ms=0)
    await consumer.start()
    await producer.start()
    await consumer._client.set_topics([destination])
    partitions = [TopicPartition(destination, p) for p in consumer.partitions_for_topic(destination) or ()]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    events = rate * (warm_up_seconds + seconds)
    counted_from = rate * warm_up_seconds
    sent: dict[bytes, tuple[float, bool]] = {}  # key -> when it was sent, whether it is counted
    arrived = 0
    seen: list[float] = []

    async def receive() -> None:
        nonlocal arrived
        while arrived < events:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                at = time.perf_counter()
                for record in records:
                    if (sending := sent.pop(record.key or b"", None)) is not None:
                        arrived += 1
                        if sending[1]:
                            seen.append((at - sending[0]) * 1000)

    receiving = asyncio.create_task(receive())
    start = time.perf_counter()
    try:
        for i in range(events):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            record = encode(opinion(i, f"{run}-lat"), source="/concord/planning")
            sent[record.key or b""] = (time.perf_counter(), i >= counted_from)
            await producer.send(source, record.value, key=record.key, headers=record.headers)
        await asyncio.wait_for(receiving, timeout=LATENCY_WAIT_SECONDS)
    finally:
        receiving.cancel()
        await producer.stop()
        await consumer.stop()
    return sorted(seen)


async def provision(target: Target, topics: Topics, extra: Sequence[TopicSpec] = ()) -> None:
    """A namespace's exchange of topics (with their ACLs on the secured stack), and topics of the bench's own."""
    if target.secured:
        await ensure_exchange(target.settings, topics)
    else:
        await ensure_topics(target.kafka(ADMIN), planned_topics(topics))
    await ensure_topics(target.kafka(ADMIN), list(extra))


async def remove(target: Target, topics: Topics) -> None:
    """A measurement's namespace gone again (thousands of leftover partitions slow a small broker down)."""
    await remove_exchange(target.settings, topics, reconcile=target.secured)
