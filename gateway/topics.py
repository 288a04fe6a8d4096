"""The exchange's topics, with explicit partitions and retention; the broker never auto-creates one."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.base import CATALOGUE
from contracts.departments import (
    AUDIT_TOPIC,
    SERVICE_DEPARTMENTS,
    deadletter_topic,
    deliver_topic,
    ingress_topic,
    shared_topic,
)

DAY_MS = 24 * 3600 * 1000
KEEP = -1  # records of the exchange are kept: shared topics, dead letters and the audit stream


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int

    @property
    def config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": "delete"}


def planned_topics() -> list[TopicSpec]:
    specs: list[TopicSpec] = []
    for department in SERVICE_DEPARTMENTS:
        specs += [
            TopicSpec(ingress_topic(department), 3, 14 * DAY_MS),
            TopicSpec(deliver_topic(department), 3, 14 * DAY_MS),
            TopicSpec(deadletter_topic(department), 1, KEEP),
        ]
    specs += [TopicSpec(shared_topic(cid), 3, KEEP) for cid in sorted({cid for cid, _ in CATALOGUE})]
    specs.append(TopicSpec(AUDIT_TOPIC, 1, KEEP))
    return specs


async def ensure_topics(bootstrap: str, specs: list[TopicSpec] | None = None) -> dict[str, str]:
    """Create missing topics, grow partitions that fall short, and set retention. Returns what was done."""
    specs = specs or planned_topics()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    done: dict[str, str] = {}
    try:
        existing = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics()}
        missing = [s for s in specs if s.name not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(s.name, s.partitions, 1, topic_configs=s.config) for s in missing]
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
                [ConfigResource(ConfigResourceType.TOPIC, s.name, configs=s.config) for s in present]
            )
        for s in present:
            done.setdefault(s.name, "present")
    finally:
        await admin.close()
    return done
