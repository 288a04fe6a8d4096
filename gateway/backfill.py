"""Backfill: once an agreement is approved, the consumer may ask for the history it now may see, replayed
from ``shared.<contract>`` into its deliver topic, cut to its fields, for events within the agreement's
period (by event time)."""

from __future__ import annotations

import json
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from base.kafka import KafkaAccess
from contracts.base import parse_dataschema
from contracts.envelope import SENDER_HEADER
from contracts.topics import Topics
from gateway.agreements import Agreement, AgreementPolicy
from gateway.registry import Registry
from gateway.routing import addressees, project, purpose_headers, purposes, visible_fields

BACKFILL_HEADER = "concord_backfill"
ORIGINAL_ID_HEADER = "concord_original_id"


async def backfill(kafka: KafkaAccess, topics: Topics, registry: Registry, agreement: Agreement, now: datetime,
                   producer: AIOKafkaProducer, mask_key: bytes | None) -> int:
    """Replay the agreement's contract history to the consumer (with ``mask_key`` for the keyed-hash masks of what
    it still may not see). Returns the number of events delivered."""
    policy = AgreementPolicy([agreement])
    until = min(agreement.valid_until, now)
    source = topics.shared(agreement.contract_id)
    consumer = AIOKafkaConsumer(**kafka.aiokafka(), isolation_level="read_committed",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    delivered = 0
    try:
        await consumer._client.set_topics([source])  # this topic's metadata, without joining a group
        partitions = [TopicPartition(source, p) for p in consumer.partitions_for_topic(source) or ()]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = {tp for tp, end in ends.items() if end > 0}
        sends = []
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= ends[tp]:
                        break
                    headers = dict(r.headers)
                    at = datetime.fromisoformat(headers["ce_time"].decode())
                    version = parse_dataschema(headers["ce_dataschema"].decode())
                    contract = registry.get(*version) if version else None
                    if contract is None or not agreement.valid_from <= at < until \
                            or headers.get(SENDER_HEADER) == agreement.consumer.encode():
                        continue  # outside the period, or the consumer's own event
                    if agreement.case_id is not None and r.key != agreement.case_id.encode():
                        continue  # a case-scoped agreement opens its case's records only
                    payload = json.loads(r.value)
                    if contract.recipient_field and agreement.consumer not in addressees(contract, payload):
                        continue  # addressed to other departments: an agreement does not open their mail
                    grant = policy.grant(agreement.consumer, contract, r.key.decode() if r.key else "", at)
                    value = project(payload, contract, visible_fields(contract, grant), r.value, mask_key)
                    # A replay is a new delivery (it may carry more fields than the first): its own id, the
                    # original kept beside it, so that the consumer's inbox does not drop it as seen.
                    replay_id = f"{headers['ce_id'].decode()}/backfill/{agreement.id}".encode()
                    replay_headers = [(k, replay_id if k == "ce_id" else v) for k, v in r.headers]
                    sends.append(await producer.send(
                        topics.deliver(agreement.consumer), value, key=r.key,
                        headers=[*replay_headers, *purpose_headers(purposes(grant, payload)),
                                 (BACKFILL_HEADER, agreement.id.encode()), (ORIGINAL_ID_HEADER, headers["ce_id"])]))
                    delivered += 1
            # transaction markers take offsets too: done when the position, not the last record, reaches the end
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        for send in sends:
            await send
    finally:
        await consumer.stop()
    return delivered
