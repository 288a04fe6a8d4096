"""Output records gathered straight into Kafka record batches, one per topic-partition, and sent as whole
batches: the router writes thousands of records per transaction, and a call per record would cost more
than the routing. Partitions are chosen as Kafka's default partitioner does (murmur2 of the key), so a
case's records land where every other producer puts them."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from contracts.envelope import RawHeaders

KNOWN_KEYS = 65_536  # the keys whose hashes are kept from one batch to the next (a case's events share a key)
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), as aiokafka's ``murmur2`` computes it,
    with the key's words unpacked at once and fewer steps a word (1.1 µs for a case id against 1.8)."""
    length = len(data)
    h = 0x9747B28C ^ length
    for k in struct.unpack_from(f"<{length // 4}I", data):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail, end = length & 3, length & ~3
    if tail >= 3:
        h ^= data[end + 2] << 16
    if tail >= 2:
        h ^= data[end + 1] << 8
    if tail >= 1:
        h = ((h ^ data[end]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


class Batches:
    def __init__(self, producer: AIOKafkaProducer, partitions: dict[str, list[int]], hashes: dict[bytes, int]
                 ) -> None:
        self.producer = producer
        self.partitions = partitions  # topic -> its partitions, sorted (known before add is called)
        self.open: dict[TopicPartition, Any] = {}
        self.full: list[tuple[TopicPartition, Any]] = []
        if len(hashes) > KNOWN_KEYS:
            hashes.clear()
        self._hashes = hashes  # key -> its murmur2, kept by the caller across batches

    def partition(self, topic: str, key: bytes | None) -> int:
        partitions = self.partitions[topic]
        if key is None or len(partitions) == 1:
            return partitions[0]
        hashed = self._hashes.get(key)
        if hashed is None:
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return partitions[hashed % len(partitions)]

    def add(self, topic: str, key: bytes | None, value: bytes, headers: RawHeaders) -> None:
        tp = TopicPartition(topic, self.partition(topic, key))
        builder = self.open.get(tp)
        if builder is None:
            builder = self.open[tp] = self.producer.create_batch()
        if builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            self.full.append((tp, builder))
            builder = self.open[tp] = self.producer.create_batch()
            if builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
                raise ValueError(f"a record of {len(value)} bytes does not fit in a batch for {topic}")

    async def send(self) -> None:
        """Hand every batch to the producer and wait until the broker has them all."""
        sent = []
        for tp, builder in [*self.full, *self.open.items()]:
            builder.close()
            sent.append(await self.producer.send_batch(builder, tp.topic, partition=tp.partition))
        await asyncio.gather(*sent)
