"""Router throughput against a raw aiokafka pipe of the same records on the same broker, and end-to-end
latency from an ingress produce to a deliver consume at a fixed rate. `make bench`; prints figures and writes
them to ``<stack>/bench/bench.json``.

Everything is measured twice: on the secured stack (SASL/SCRAM-SHA-512 over TLS, ACLs; the router as the
gateway's principal, events sent as planning's), and on a throwaway plaintext node started for the purpose
(no authentication, no TLS), so that what the trust boundary costs is measured, not guessed.

The router does everything it does in production: envelope, sender and schema checks, duplicate ids in
PostgreSQL, projection per consumer, the shared record, the delivery, the audit entry, all in Kafka
transactions with the input offsets. The raw pipe copies each record once and commits offsets."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from base.kafka import KafkaAccess
from base.settings import ADMIN, Settings
from contracts.bureau import Decision, OpinionIssued
from contracts.departments import GATEWAY
from contracts.envelope import encode
from contracts.topics import Topics
from deploy.stack import KafkaNode, Stack, ensure_exchange
from gateway.topics import DAY_MS, TopicSpec, ensure_topics, planned_topics

console = Console()
PLAINTEXT_PORT_OFFSET = 100  # the throwaway node's ports: the stack's (CONCORD_KAFKA_PORT, …) + 100


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

    def kafka(self, principal: str) -> KafkaAccess:
        return self.settings.kafka(principal)


@dataclass(frozen=True)
class Figures:
    raw_events_per_s: float
    router_events_per_s: float
    router_ratio: float
    latency_rate_per_s: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_samples: int
    peer_events_per_s: float  # the Kafka Streams peer (bench/peer.py): the same route, exactly_once_v2
    peer_latency_p50_ms: float
    peer_latency_p99_ms: float


def opinion(i: int, run: str) -> OpinionIssued:
    return OpinionIssued(request_id=f"{run}-{i}/NRP-101/1", case_id=f"{run}-{i}", item_code="NRP-101",
                         decision=Decision.APPROVED, conditions=[], reasons=[], officer="规划科 赵敏",
                         decided_at=datetime.now(UTC))


async def preload(sender: KafkaAccess, topic: str, events: int, run: str) -> None:
    producer = AIOKafkaProducer(**sender.aiokafka(), enable_idempotence=True, linger_ms=10, max_batch_size=512 * 1024)
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


async def consumed(admin_access: KafkaAccess, group: str, topic: str) -> tuple[int, int]:
    """(records the group has committed past, records in the topic)."""
    admin = AIOKafkaAdminClient(**admin_access.aiokafka())
    consumer = AIOKafkaConsumer(**admin_access.aiokafka())
    await admin.start()
    await consumer.start()
    try:
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        except GroupCoordinatorNotAvailableError:  # a fresh node makes its offsets topic on the first group
            offsets = {}
        await consumer._client.set_topics([topic])
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions)
        done = sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)
        return done, sum(ends.values())
    finally:
        await consumer.stop()
        await admin.close()


def timed(name: str, target: Target, group: str, topic: str, command: list[str], env: dict[str, str]) -> Run:
    """Run a pipe process over the preloaded topic; time it from its first commit to its last, so that
    process start-up is not counted."""
    logs = target.settings.stack_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / f"bench-{target.name}-{name.split()[0]}.log", "ab")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, **target.env, **env})
    try:
        first: tuple[float, int] | None = None
        with Progress(console=console) as progress:
            task = progress.add_task(f"{name} ({target.name})", total=None)
            while True:
                done, total = asyncio.run(consumed(target.kafka(ADMIN), group, topic))
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


async def latency(target: Target, topics: Topics, rate: int, seconds: int, run: str) -> list[float]:
    """Produce at a fixed rate to ingress (as planning); measure until each event is consumed from the
    deliver topic of its consumer (as the admin)."""
    destination = topics.deliver("bureau")
    consumer = AIOKafkaConsumer(**target.kafka(ADMIN).aiokafka(), isolation_level="read_committed")
    producer = AIOKafkaProducer(**target.kafka("planning").aiokafka(), enable_idempotence=True, linger_ms=0)
    await consumer.start()
    await producer.start()
    await consumer._client.set_topics([destination])
    partitions = [TopicPartition(destination, p) for p in consumer.partitions_for_topic(destination) or ()]
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


async def provision(target: Target, topics: Topics, extra: list[TopicSpec]) -> None:
    """The bench's own exchange of topics (with their ACLs on the secured stack), and the raw pipe's output."""
    if target.settings.kafka_security == "PLAINTEXT":
        await ensure_topics(target.kafka(ADMIN), [*planned_topics(topics), *extra])
    else:
        await ensure_exchange(target.settings, topics)
        await ensure_topics(target.kafka(ADMIN), extra)


def measure(target: Target, events: int, rate: int, seconds: int) -> Figures:
    s = target.settings
    run = f"bench{int(time.time())}{target.name[0]}"
    topics = Topics(run)
    raw_out = TopicSpec(f"{run}.raw.out", 3, DAY_MS)
    asyncio.run(provision(target, topics, [raw_out]))
    source = topics.ingress("planning")
    asyncio.run(preload(target.kafka("planning"), source, events, run))

    # the baseline copies with the admin's access: the same TLS and SCRAM cost, no ACL set of its own
    raw = timed("raw-pipe", target, f"{run}-raw", source,
                [sys.executable, "-m", "bench.raw_pipe", "--principal", ADMIN, "--source", source,
                 "--target", raw_out.name, "--group", f"{run}-raw", "--batch", str(s.router_batch_records)], {})
    router_env = {"CONCORD_TOPIC_NAMESPACE": run, "CONCORD_ROUTER_GROUP": f"{GATEWAY}.{run}-router"}
    router_command = [sys.executable, "-m", "deploy.cli", "gateway", "run", "--no-serve", "--instance", run]
    routed = timed("router", target, f"{GATEWAY}.{run}-router", source, router_command, router_env)

    log = open(s.stack_path / "logs" / f"bench-{target.name}-latency.log", "ab")  # noqa: SIM115 (closed below)
    router = subprocess.Popen(router_command, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, **target.env, **router_env})
    try:
        time.sleep(5)  # join the group
        latencies = sorted(asyncio.run(latency(target, topics, rate, seconds, run)))
    finally:
        router.terminate()
        router.wait(30)
        log.close()
    from bench.peer import measure_peer  # it imports this module's pieces

    peer = measure_peer(target, run, events, rate, seconds)
    return Figures(round(raw.rate), round(routed.rate), round(routed.rate / raw.rate, 3), rate,
                   round(statistics.median(latencies), 1), round(latencies[int(len(latencies) * 0.99) - 1], 1),
                   len(latencies), peer.events_per_s, peer.latency_p50_ms, peer.latency_p99_ms)


def plaintext_target(s: Settings) -> tuple[Target, KafkaNode]:
    port = s.kafka_port + PLAINTEXT_PORT_OFFSET
    node = KafkaNode(s, secured=False, home=s.stack_path / "bench-plaintext", port=port,
                     controller_port=s.kafka_controller_port + PLAINTEXT_PORT_OFFSET)
    bootstrap = f"127.0.0.1:{port}"
    plain = s.model_copy(update={"kafka_security": "PLAINTEXT", "kafka_bootstrap": bootstrap})
    env = {"CONCORD_KAFKA_SECURITY": "PLAINTEXT", "CONCORD_KAFKA_BOOTSTRAP": bootstrap}
    return Target("plaintext", plain, env), node


def main(
    events: int = typer.Option(20_000, help="records preloaded for the throughput runs"),
    rate: int = typer.Option(500, help="events per second for the latency run"),
    seconds: int = typer.Option(10, help="length of the latency run"),
    plaintext: bool = typer.Option(True, help="also measure on a throwaway plaintext node"),
) -> None:
    s = Settings.from_environment()
    Stack(s).up()
    results = {"secured": measure(Target("secured", s, {}), events, rate, seconds)}
    console.print(f"secured: {results['secured']}")
    if plaintext:
        target, node = plaintext_target(s)
        shutil.rmtree(node.home, ignore_errors=True)
        node.start()
        try:
            node.wait_ready()
            results["plaintext"] = measure(target, events, rate, seconds)
        finally:
            node.stop()
        shutil.rmtree(node.home, ignore_errors=True)  # kept when the measurement failed: its log says why

    table = Table("measure", *results, title=f"Router benchmark ({events} events, batches of {s.router_batch_records},"
                                             f" {os.cpu_count()} cores)")
    rows = [("raw aiokafka pipe (1 output per input), events/s", "raw_events_per_s"),
            ("gateway router (shared + deliver + audit, transactions), events/s", "router_events_per_s"),
            ("router / raw", "router_ratio"), (f"latency at {rate} events/s, p50 ms", "latency_p50_ms"),
            (f"latency at {rate} events/s, p99 ms", "latency_p99_ms"), ("latency samples", "latency_samples"),
            ("Kafka Streams peer (same route, exactly_once_v2), events/s", "peer_events_per_s"),
            (f"peer latency at {rate} events/s, p50 ms", "peer_latency_p50_ms"),
            (f"peer latency at {rate} events/s, p99 ms", "peer_latency_p99_ms")]
    for label, key in rows:
        table.add_row(label, *(f"{getattr(f, key):,}" for f in results.values()))
    console.print(table)
    out = s.stack_path / "bench"
    out.mkdir(parents=True, exist_ok=True)
    secured = results["secured"]
    report = {**asdict(secured), "secured": True, "cores": os.cpu_count(),
              "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "runs": {name: asdict(f) for name, f in results.items()}}
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    console.print(f"figures written to {out / 'bench.json'}")


if __name__ == "__main__":
    typer.run(main)
