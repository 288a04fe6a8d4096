"""The exchange's topics, with explicit partitions, retention and replication; the broker never auto-creates one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from base.kafka import KafkaAccess, Replication
from contracts.catalogue import CATALOGUE
from contracts.departments import EXCHANGE, SERVICE_DEPARTMENTS
from contracts.topics import Topics

DAY_MS = 24 * 3600 * 1000
KEEP = -1  # records of the exchange are kept: shared topics, dead letters and the audit stream


DEADLETTER_MAX_BYTES = 8 * 1024 * 1024  # twice the broker's limit: an ingress record plus the reasons always fits


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    max_message_bytes: int | None = None
    compacted: bool = False  # keeps the latest record of each key (and what the cleaner has not reached yet)

    @property
    def config(self) -> dict[str, str]:
        config = {"retention.ms": str(self.retention_ms), "cleanup.policy": "compact" if self.compacted else "delete"}
        if self.max_message_bytes:
            config["max.message.bytes"] = str(self.max_message_bytes)
        return config


def planned_topics(topics: Topics, registered: Iterable[str] = ()) -> list[TopicSpec]:
    """Every department's ingress, deliver and dead-letter topics; a shared topic per contract (in code, and
    registered through the API); the audit, and the audit chain's anchors."""
    specs: list[TopicSpec] = []
    for department in SERVICE_DEPARTMENTS:
        specs += [
            TopicSpec(topics.ingress(department), 3, 14 * DAY_MS),
            TopicSpec(topics.deliver(department), 3, 14 * DAY_MS),
            TopicSpec(topics.deadletter(department), 1, KEEP, DEADLETTER_MAX_BYTES),
        ]
    ids = {cid for cid, _ in CATALOGUE} | set(registered)
    specs += [TopicSpec(topics.shared(cid), 3, KEEP) for cid in sorted(ids) if not cid.startswith(f"{EXCHANGE}.")]
    specs.append(TopicSpec(topics.audit, 1, KEEP))
    specs.append(TopicSpec(topics.audit_anchor, 1, KEEP, compacted=True))
    return specs


async def existing_topics(access: KafkaAccess) -> set[str]:
    admin = AIOKafkaAdminClient(**access.aiokafka())
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def partitions_of(access: KafkaAccess, topic: str) -> list[TopicPartition]:
    """A topic's partitions, in order (none when the topic does not exist)."""
    admin = AIOKafkaAdminClient(**access.aiokafka())
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(TopicPartition(topic, p["partition"]) for p in described["partitions"])


SINGLE = Replication(1, 1)


async def ensure_topics(access: KafkaAccess, specs: list[TopicSpec], replication: Replication = SINGLE
                        ) -> dict[str, str]:
    """Create missing topics (with ``replication``'s factor), grow partitions that fall short, and set retention
    and the in-sync replicas a write needs (as the admin: nobody else may create topics). Returns what was done."""
    admin = AIOKafkaAdminClient(**access.aiokafka())
    await admin.start()
    done: dict[str, str] = {}
    configs = {s.name: s.config | {"min.insync.replicas": str(replication.min_insync)} for s in specs}
    try:
        existing = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics()}
        missing = [s for s in specs if s.name not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(s.name, s.partitions, replication.factor, topic_configs=configs[s.name]) for s in missing]
            )
            done.update({s.name: f"created ({s.partitions} partitions)" for s in missing})
        short = {s.name: NewPartitions(s.partitions) for s in specs
                 if s.name in existing and existing[s.name] < s.partitions}
        if short:
            await admin.create_partitions(short)
            done.update({name: f"grown to {p.total_count} partitions" for name, p in short.items()})
        present = [s for s in specs if s.name in existing]
        if present:
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, s.name, configs=configs[s.name]) for s in present]
            )
        for s in present:
            done.setdefault(s.name, "present")
    finally:
        await admin.close()
    return done
