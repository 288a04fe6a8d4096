"""A department's subscriber at a quiet department's pace: how long a record waits from its produce to the
subscriber's handler, with the kit's subscription as the services run it (``services.kit.subscription``: FastStream's
batch subscriber on a consumer whose fetch answers once records have come) and with the consumer FastStream builds
itself (whose subscriber sleeps its batch timeout after a fetch that found nothing). Records are produced one at a
time at random moments (``RATE`` a second on average), read_committed, in the benchmark's process."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage

from base.settings import ADMIN
from bench.measure import LATENCY_WAIT_SECONDS, Target
from services.kit.subscription import connect_waiting, subscribe

RATE = 25  # records a second, on average
WARM_UP_SECONDS = 1.0  # at least, and until the subscriber has handled a record: its group's assignment comes first
log = logging.getLogger("concord.bench.subscriber")
# FastStream warns at every start that it creates no topics (they are the benchmark's own, made beforehand): errors only
log.setLevel(logging.ERROR)


async def handler_waits(target: Target, topic: str, group: str, seconds: int, waiting: bool,
                        rate: int = RATE) -> list[float]:
    """Milliseconds from each record's produce to the handler that got it, over ``seconds`` after the warm-up,
    sorted; ``waiting``: the kit's consumer, else FastStream's own."""
    access = target.kafka(ADMIN)
    broker = KafkaBroker(access.bootstrap, security=access.faststream(), client_id=f"{group}.bench",
                         allow_auto_create_topics=False, apply_types=False, logger=log, log_level=logging.DEBUG)
    sent: dict[bytes, tuple[float, bool]] = {}  # key -> when it was sent, whether it is counted
    seen: list[float] = []
    handled = asyncio.Event()

    async def handle(message: Any) -> None:
        at = time.perf_counter()
        batch: KafkaMessage = message
        records = batch.raw_message if isinstance(batch.raw_message, tuple) else (batch.raw_message,)
        for record in records:
            if (sending := sent.pop(record.key or b"", None)) is not None and sending[1]:
                seen.append((at - sending[0]) * 1000)
        handled.set()

    subscribe(broker, topic, group, None, handle, "the benchmark's quiet department")
    if waiting:
        await connect_waiting(broker)
    await broker.start()
    producer = AIOKafkaProducer(**access.aiokafka(), enable_idempotence=True, linger_ms=0)
    await producer.start()
    moments = random.Random(group)
    try:
        warm_until = time.perf_counter() + WARM_UP_SECONDS
        end: float | None = None
        i = 0
        while end is None or time.perf_counter() < end:
            counted = end is not None
            if not counted and handled.is_set() and time.perf_counter() >= warm_until:
                end, counted = time.perf_counter() + seconds, True
            key = f"{group}-{i}".encode()
            sent[key] = (time.perf_counter(), counted)
            await producer.send(topic, b"{}", key=key)
            i += 1
            await asyncio.sleep(moments.expovariate(rate))
        async with asyncio.timeout(LATENCY_WAIT_SECONDS):
            while any(counted for _, counted in sent.values()):
                handled.clear()
                await handled.wait()
    finally:
        await producer.stop()
        await broker.stop()
    return sorted(seen)
