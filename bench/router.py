"""Router throughput against a raw aiokafka pipe of the same records on the same broker, and end-to-end
latency from an ingress produce to a deliver consume at a fixed rate. `make bench`; prints figures.

The router does everything it does in production: envelope, sender and schema checks, duplicate ids in
PostgreSQL, projection per consumer, the shared record, the delivery, the audit entry, all in Kafka
transactions with the input offsets. The raw pipe copies each record once and commits offsets."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from base.settings import Settings, settings
from contracts.bureau import Decision, OpinionIssued
from contracts.envelope import encode
from contracts.topics import Topics
from deploy.stack import Stack
from gateway.topics import DAY_MS, TopicSpec, ensure_topics, planned_topics

console = Console()


@dataclass(frozen=True)
class Run:
    name: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def opinion(i: int, run: str) -> OpinionIssued:
    return OpinionIssued(request_id=f"{run}-{i}/NRP-101/1", case_id=f"{run}-{i}", item_code="NRP-101",
                         decision=Decision.APPROVED, conditions=[], reasons=[], officer="规划科 赵敏",
                         decided_at=datetime.now(UTC))


async def preload(s: Settings, topic: str, events: int, run: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap, enable_idempotence=True, linger_ms=10,
                                max_batch_size=512 * 1024)
    await producer.start()
    try:
        with Progress(console=console) as progress:
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


async def consumed(bootstrap: str, group: str, topic: str) -> tuple[int, int]:
    """(records the group has committed past, records in the topic)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        await consumer._client.set_topics([topic])
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions)
        done = sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)
        return done, sum(ends.values())
    finally:
        await consumer.stop()
        await admin.close()


def timed(name: str, s: Settings, group: str, topic: str, command: list[str], env: dict[str, str]) -> Run:
    """Run a pipe process over the preloaded topic; time it from its first commit to its last, so that
    process start-up is not counted."""
    log = open(s.stack_path / "logs" / f"bench-{name.split()[0]}.log", "ab")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
    try:
        first: tuple[float, int] | None = None
        with Progress(console=console) as progress:
            task = progress.add_task(name, total=None)
            while True:
                done, total = asyncio.run(consumed(s.bootstrap, group, topic))
                now = time.monotonic()
                progress.update(task, completed=done, total=total)
                if done and first is None:
                    first = (now, done)
                if first and done >= total:
                    return Run(name, done - first[1], now - first[0])
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited; see {log.name}")
                time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(30)
        log.close()


async def latency(s: Settings, topics: Topics, rate: int, seconds: int, run: str) -> list[float]:
    """Produce at a fixed rate to ingress; measure until each event is consumed from the deliver topic."""
    target = topics.deliver("bureau")
    consumer = AIOKafkaConsumer(bootstrap_servers=s.bootstrap, isolation_level="read_committed")
    producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap, enable_idempotence=True, linger_ms=0)
    await consumer.start()
    await producer.start()
    await consumer._client.set_topics([target])
    partitions = [TopicPartition(target, p) for p in consumer.partitions_for_topic(target) or ()]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    sent: dict[bytes, float] = {}
    seen: list[float] = []

    async def receive() -> None:
        while len(seen) < rate * seconds:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                arrived = time.perf_counter()
                seen.extend((arrived - sent[r.key]) * 1000 for r in records if r.key in sent)

    receiving = asyncio.create_task(receive())
    start = time.perf_counter()
    for i in range(rate * seconds):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        record = encode(opinion(i, f"{run}-lat"), source="/concord/planning")
        sent[record.key or b""] = time.perf_counter()
        await producer.send(topics.ingress("planning"), record.value, key=record.key, headers=record.headers)
    try:
        await asyncio.wait_for(receiving, timeout=60)
    finally:
        await producer.stop()
        await consumer.stop()
    return seen


def main(
    events: int = typer.Option(20_000, help="records preloaded for the throughput runs"),
    rate: int = typer.Option(500, help="events per second for the latency run"),
    seconds: int = typer.Option(10, help="length of the latency run"),
) -> None:
    s = settings()
    Stack(s).up()
    run = f"bench{int(time.time())}"
    topics = Topics(run)
    raw_out = TopicSpec(f"{run}.raw.out", 3, DAY_MS)
    asyncio.run(ensure_topics(s.bootstrap, [*planned_topics(topics), raw_out]))
    source = topics.ingress("planning")
    asyncio.run(preload(s, source, events, run))
    (s.stack_path / "logs").mkdir(parents=True, exist_ok=True)

    raw = timed("raw-pipe", s, f"{run}-raw", source,
                [sys.executable, "-m", "bench.raw_pipe", "--bootstrap", s.bootstrap, "--source", source,
                 "--target", raw_out.name, "--group", f"{run}-raw", "--batch", str(s.router_batch_records)], {})
    router_env = {"CONCORD_TOPIC_NAMESPACE": run, "CONCORD_ROUTER_GROUP": f"{run}-router"}
    router_command = [sys.executable, "-m", "deploy.cli", "gateway", "run", "--no-serve", "--instance", run]
    routed = timed("router", s, f"{run}-router", source, router_command, router_env)

    log = open(s.stack_path / "logs" / "bench-latency-router.log", "ab")  # noqa: SIM115 (closed below)
    router = subprocess.Popen(router_command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **router_env})
    try:
        time.sleep(5)  # join the group
        latencies = sorted(asyncio.run(latency(s, topics, rate, seconds, run)))
    finally:
        router.terminate()
        router.wait(30)
        log.close()

    table = Table("measure", "figure", title=f"Router benchmark ({events} events, batches of {s.router_batch_records})")
    table.add_row("raw aiokafka pipe (1 output per input)", f"{raw.rate:,.0f} events/s")
    table.add_row("gateway router (shared + deliver + audit, transactions)", f"{routed.rate:,.0f} events/s")
    table.add_row("router / raw", f"{routed.rate / raw.rate:.2f}")
    table.add_row(f"latency at {rate} events/s, p50", f"{statistics.median(latencies):.1f} ms")
    table.add_row(f"latency at {rate} events/s, p99", f"{latencies[int(len(latencies) * 0.99) - 1]:.1f} ms")
    table.add_row("latency samples", f"{len(latencies)} of {rate * seconds}")
    console.print(table)
    print(f"router/raw ratio: {routed.rate / raw.rate:.2f}")


if __name__ == "__main__":
    typer.run(main)
