"""The baseline: a plain aiokafka consume-and-produce pipe, one output record per input, offsets committed
after each batch is acknowledged. What the router is measured against. It reaches the broker as the settings
say (``CONCORD_*``) for the principal given: on the secured stack, the same TLS and SCRAM as the router."""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from base.settings import Settings


async def pipe(principal: str, source: str, target: str, group: str, batch: int) -> None:
    access = Settings.from_environment().kafka(principal).aiokafka()
    consumer = AIOKafkaConsumer(source, **access, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_poll_records=batch,
                                fetch_max_bytes=16 * 1024 * 1024, max_partition_fetch_bytes=4 * 1024 * 1024)
    producer = AIOKafkaProducer(**access, enable_idempotence=True, linger_ms=5, max_batch_size=512 * 1024)
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=200, max_records=batch)
            sends = [await producer.send(target, r.value, key=r.key, headers=list(r.headers))
                     for records in fetched.values() for r in records]
            await asyncio.gather(*sends)
            if fetched:
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("principal", "source", "target", "group"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(pipe(args.principal, args.source, args.target, args.group, args.batch))
