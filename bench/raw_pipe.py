"""The baselines: a plain aiokafka consume-and-produce pipe, one output record per input. What the router is
measured against. It reaches the broker as the settings say (``CONCORD_*``) for the principal given: on the
secured stack, the same TLS and SCRAM as the router.

Two modes: by default offsets are committed after each batch is acknowledged (at least once: the throughput
baseline); with ``--transactional`` each batch's copies and its offsets go in one Kafka transaction, read
read_committed (exactly once, as the router, with none of its work: the latency floor of transactions); it asks at
once for what reached the broker after the fetch it took, as the router does (``Router._fetched_meanwhile``). With
``--copies 3`` each input is written three times, as many records as the router writes for an event delivered to
one department (shared, deliver, audit): the most a router on this client could move, routing for free."""

from __future__ import annotations

import argparse
import asyncio
import signal

import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from base.kafka import TRANSACTION_RETRY_BACKOFF_MS, quick_transaction_retries
from base.settings import Settings


async def pipe(principal: str, source: str, target: str, group: str, batch: int, transactional: bool,
               copies: int = 1) -> None:
    settings = Settings.from_environment()
    access = settings.kafka(principal).aiokafka()
    consumer = AIOKafkaConsumer(**access, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_poll_records=batch,
                                isolation_level="read_committed" if transactional else "read_uncommitted",
                                fetch_max_bytes=16 * 1024 * 1024, max_partition_fetch_bytes=4 * 1024 * 1024)
    if transactional:  # the router's producer settings (gateway/router.py)
        quick_transaction_retries()
        producer = AIOKafkaProducer(**access, transactional_id=f"{group}.pipe", enable_idempotence=True,
                                    retry_backoff_ms=TRANSACTION_RETRY_BACKOFF_MS, linger_ms=0,
                                    max_batch_size=2 * 1024 * 1024)
    else:
        producer = AIOKafkaProducer(**access, enable_idempotence=True, linger_ms=5, max_batch_size=512 * 1024)
    await consumer.start()
    consumer.subscribe([source], listener=Ready())
    await producer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=200, max_records=batch)
            if not fetched:
                continue
            if transactional and (room := batch - sum(len(records) for records in fetched.values())) > 0:
                # aiokafka asks the broker again only once a fetch's answer is taken: what came after it is there
                more = await consumer.getmany(timeout_ms=settings.router_refetch_ms, max_records=room)
                for tp, records in more.items():
                    fetched.setdefault(tp, []).extend(records)
            if transactional:
                offsets = {tp: records[-1].offset + 1 for tp, records in fetched.items()}
                async with producer.transaction():  # offsets beside the records, as the router sends them
                    await asyncio.gather(copy(producer, target, fetched, copies),
                                         producer.send_offsets_to_transaction(offsets, group))
            else:
                await copy(producer, target, fetched, copies)
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


class Ready(ConsumerRebalanceListener):  # type: ignore[misc]
    """Says when the group has given the pipe its partitions (the benchmark waits for it)."""

    async def on_partitions_revoked(self, revoked: object) -> None:
        pass

    async def on_partitions_assigned(self, assigned: object) -> None:
        print("raw pipe assigned", sorted(assigned), flush=True)  # type: ignore[call-overload]


async def copy(producer: AIOKafkaProducer, target: str,
               fetched: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]], copies: int) -> None:
    sends = [await producer.send(target, r.value, key=r.key, headers=list(r.headers))
             for records in fetched.values() for r in records for _ in range(copies)]
    await asyncio.gather(*sends)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("principal", "source", "target", "group"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--transactional", action="store_true")
    parser.add_argument("--copies", type=int, default=1)
    args = parser.parse_args()
    uvloop.run(pipe(args.principal, args.source, args.target, args.group, args.batch, args.transactional,
                    args.copies))
