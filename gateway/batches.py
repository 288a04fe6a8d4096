"""Output records gathered straight into Kafka record batches, one per topic-partition, and sent as whole
batches: the router writes thousands of records per transaction, and a call per record would cost more
than the routing. Partitions are chosen as Kafka's default partitioner does (murmur2 of the key), so a
case's records land where every other producer puts them."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2

from contracts.envelope import RawHeaders


class Batches:
    def __init__(self, producer: AIOKafkaProducer, partitions: dict[str, list[int]]) -> None:
        self.producer = producer
        self.partitions = partitions  # topic -> its partitions, sorted (known before add is called)
        self.open: dict[TopicPartition, Any] = {}
        self.full: list[tuple[TopicPartition, Any]] = []
        self._hashes: dict[bytes, int] = {}

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
