"""The baseline: a plain aiokafka consume-and-produce pipe, one output record per input, offsets committed
after each batch is acknowledged. What the router is measured against."""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def pipe(bootstrap: str, source: str, target: str, group: str, batch: int) -> None:
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_poll_records=batch,
                                fetch_max_bytes=16 * 1024 * 1024, max_partition_fetch_bytes=4 * 1024 * 1024)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5,
                                max_batch_size=512 * 1024)
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
    for name in ("bootstrap", "source", "target", "group"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(pipe(args.bootstrap, args.source, args.target, args.group, args.batch))
