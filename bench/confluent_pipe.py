"""The transactional copy pipe on confluent-kafka (librdkafka) instead of aiokafka: each batch's copies and its
offsets in one Kafka transaction, fenced by the group's metadata, read read_committed. Measured beside the aiokafka
pipe (``bench.raw_pipe --transactional``) to answer whether the router's Kafka client is what bounds it; with
``--copies 3`` each input is written three times, the router's output volume (as ``bench.raw_pipe``).

librdkafka retries a transaction's first AddPartitionsToTxn, answered CONCURRENT_TRANSACTIONS while the previous
one's markers are written, after ``retry.backoff.ms`` (100 ms by default): set to the router's 2 ms here, as
``base.kafka.TRANSACTION_RETRY_BACKOFF_MS`` does for aiokafka."""

from __future__ import annotations

import argparse
import signal
from types import FrameType

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from base.kafka import TRANSACTION_RETRY_BACKOFF_MS
from base.settings import Settings

POLL_SECONDS = 0.2


def pipe(principal: str, source: str, target: str, group: str, batch: int, copies: int = 1) -> None:
    access = Settings.from_environment().kafka(principal).confluent()
    consumer = Consumer(access | {"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                  "isolation.level": "read_committed"})
    producer = Producer(access | {"transactional.id": f"{group}.confluent-pipe", "enable.idempotence": True,
                                  "linger.ms": 0, "retry.backoff.ms": TRANSACTION_RETRY_BACKOFF_MS})
    producer.init_transactions()
    stopping: list[bool] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(True)

    signal.signal(signal.SIGTERM, stop)
    consumer.subscribe([source], on_assign=assigned)
    try:
        while not stopping:
            records = take(consumer, batch)
            if not records:
                continue
            producer.begin_transaction()
            for record in records:
                for _ in range(copies):
                    producer.produce(target, record.value(), record.key(), headers=record.headers())
            producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                                 consumer.consumer_group_metadata())
            producer.commit_transaction()
    finally:
        consumer.close()


def take(consumer: Consumer, batch: int) -> list[Message]:
    """What is fetched, up to ``batch`` records, without waiting for a batch to fill (``consume`` waits for all
    ``batch`` or its timeout): one record waited for, then whatever else is there."""
    records: list[Message] = consumer.consume(batch, 0) or consumer.consume(1, POLL_SECONDS)
    if records and len(records) < batch:
        records += consumer.consume(batch - len(records), 0)
    failed = [record for record in records if record.error() is not None]
    if failed:
        raise RuntimeError(f"the consumer failed: {failed[0].error()}")
    return records


def assigned(consumer: Consumer, partitions: list[TopicPartition]) -> None:
    print("confluent pipe assigned", sorted(p.partition for p in partitions), flush=True)  # the bench waits for it


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("principal", "source", "target", "group"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--copies", type=int, default=1)
    args = parser.parse_args()
    pipe(args.principal, args.source, args.target, args.group, args.batch, args.copies)
