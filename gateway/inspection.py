"""Looking at records on the exchange's topics as an operator may: the envelope and the payload masked by the
sharing classes of the contract the record names (``gateway.masking``). The console's dead-letter detail and
``concord tail`` (through ``GET /v1/topics/{topic}/records``) read records only through here."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel

from base.kafka import KafkaAccess, stop_client
from contracts.envelope import (
    CONTENT_TYPE,
    EXCHANGE_HEADER_PREFIX,
    STANDARD_HEADERS,
    TRACEPARENT,
    EnvelopeError,
    RawHeaders,
    decode,
    parse_payload,
)
from gateway.masking import MASKS, masked
from gateway.registry import Registry

SHOWN_HEADERS = STANDARD_HEADERS | {CONTENT_TYPE, TRACEPARENT, "ce_sentat"}
HEADER_MASK = "‹masked: sender's own header›"


class RecordView(BaseModel):
    """A record of a topic as an operator sees it: where it is, its headers (a sender's own headers masked), the
    contract its envelope names (None when it names none the registry knows) and its payload masked by that
    contract's sharing classes (every value masked without one)."""

    topic: str
    partition: int
    offset: int
    timestamp: str | None
    key: str | None
    headers: dict[str, str]
    contract: str | None
    version: int | None
    payload: Any
    envelope_problem: str | None = None


def _text(raw: bytes | None) -> str:
    return "" if raw is None else raw.decode("utf-8", "replace")


def view_of(topic: str, partition: int, offset: int, timestamp_ms: int | None, key: bytes | None, value: bytes | None,
            headers: RawHeaders, registry: Registry) -> RecordView:
    shown = {name: _text(raw) if name in SHOWN_HEADERS or name.startswith(EXCHANGE_HEADER_PREFIX) else HEADER_MASK
             for name, raw in headers}
    contract, version, schema, problem = None, None, None, None
    try:
        envelope = decode(headers, key)
        found = registry.get(*envelope.contract)
        if found is not None:
            contract, version, schema = found.id, found.version, found.schema
        else:
            problem = f"no contract {envelope.contract[0]} version {envelope.contract[1]}: every value masked"
    except EnvelopeError as exc:
        problem = f"{exc}: every value masked"
    try:
        payload = masked(parse_payload(value or b""), schema)
    except (ValueError, UnicodeDecodeError):
        payload = MASKS[None]  # not JSON: nothing of it is shown
    when = datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat() if timestamp_ms is not None else None
    return RecordView(topic=topic, partition=partition, offset=offset, timestamp=when,
                      key=_text(key) if key is not None else None, headers=shown, contract=contract, version=version,
                      payload=payload, envelope_problem=problem)


class Inspector:
    """Reads records at given positions with one consumer kept open (no group, read_committed), one request at a
    time: a consumer per request would cost a TLS handshake each, and closing one can wait for the TLS shutdown."""

    def __init__(self, access: KafkaAccess) -> None:
        self.access = access
        self.consumer: AIOKafkaConsumer | None = None
        self.lock = asyncio.Lock()

    async def _consumer(self) -> AIOKafkaConsumer:
        if self.consumer is None:
            consumer = AIOKafkaConsumer(**self.access.aiokafka(), enable_auto_commit=False,
                                        isolation_level="read_committed", fetch_max_wait_ms=100)
            await consumer.start()
            self.consumer = consumer
        return self.consumer

    async def close(self) -> None:
        if self.consumer is not None:
            await stop_client(self.consumer.stop, "the inspector's consumer")
            self.consumer = None

    async def read_at(self, topic: str, partition: int, offset: int, registry: Registry,
                      timeout: float = 5.0) -> RecordView | None:
        """The record at one position, or None when the topic no longer holds it."""
        async with self.lock:
            consumer = await self._consumer()
            tp = TopicPartition(topic, partition)
            end = (await consumer.end_offsets([tp]))[tp]
            found = await self._read(consumer, topic, {partition: offset}, 1, registry, timeout, {partition: end})
        return next((r for r in found if r.offset == offset), None)

    async def tail(self, topic: str, last: int, registry: Registry, after: dict[int, int] | None = None,
                   timeout: float = 5.0) -> list[RecordView]:
        """The last ``last`` records of each partition (or up to ``last`` after the offsets given), oldest first
        per partition. LookupError when there is no such topic."""
        async with self.lock:
            consumer = await self._consumer()
            await consumer._client.set_topics([topic])
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            if not partitions:
                raise LookupError(f"no topic {topic}")
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            origin = {tp.partition: max(starts[tp], ends[tp] - last) for tp in partitions}
            if after is not None:
                origin = {tp.partition: max(after.get(tp.partition, origin[tp.partition]), starts[tp])
                          for tp in partitions}
            limits = {tp.partition: ends[tp] for tp in partitions if origin[tp.partition] < ends[tp]}
            wanted = {p: o for p, o in origin.items() if p in limits}
            return await self._read(consumer, topic, wanted, last, registry, timeout, limits)

    @staticmethod
    async def _read(consumer: AIOKafkaConsumer, topic: str, origin: dict[int, int], per_partition: int,
                    registry: Registry, timeout: float, limits: dict[int, int]) -> list[RecordView]:
        """Up to ``per_partition`` records from each partition's origin, below its limit (the end offset)."""
        if not origin:
            return []
        assigned = [TopicPartition(topic, p) for p in origin]
        consumer.assign(assigned)
        for tp in assigned:
            consumer.seek(tp, origin[tp.partition])
        wanted = dict.fromkeys(origin, per_partition)
        views: list[RecordView] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while any(wanted.values()) and loop.time() < deadline:
                for tp, records in (await consumer.getmany(timeout_ms=100, max_records=500)).items():
                    for record in records:
                        if wanted[tp.partition] > 0 and record.offset < limits[tp.partition]:
                            views.append(view_of(topic, tp.partition, record.offset, record.timestamp, record.key,
                                                 record.value, list(record.headers), registry))
                            wanted[tp.partition] -= 1
                for tp in assigned:  # read to its limit (transaction markers take offsets too)
                    if await consumer.position(tp) >= limits[tp.partition]:
                        wanted[tp.partition] = 0
        finally:
            consumer.assign([])
        return sorted(views, key=lambda v: (v.partition, v.offset))
