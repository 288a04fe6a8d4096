"""Exactly-once routing across a rebalance: two more router processes join the gateway's consumer group,
one is killed (SIGKILL) in the middle of the stream, and no routed record is lost or duplicated."""

from __future__ import annotations

import asyncio
import collections
import json
import signal
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from base.settings import ADMIN, Settings
from contracts.bureau import StageCompleted
from contracts.envelope import encode
from deploy.processes import AppProcesses
from tests.tools import Tail, header

EVENTS = 1500


async def test_killing_a_router_mid_stream_loses_and_duplicates_nothing(
    stack: Settings, exchange: AppProcesses
) -> None:
    run = uuid.uuid4().hex[:8]
    r1 = exchange.start(f"router-{run}-1", "gateway", "run", "--no-serve", "--instance", f"{run}-1")
    r2 = exchange.start(f"router-{run}-2", "gateway", "run", "--no-serve", "--instance", f"{run}-2")
    try:
        await _stream_through_a_killed_router(stack, exchange, run, r1.name)
    finally:
        r2.stop()


async def _stream_through_a_killed_router(stack: Settings, exchange: AppProcesses, run: str, victim: str) -> None:
    await asyncio.sleep(6)  # both join the group: the ingress partitions are spread over three routers
    records = [encode(StageCompleted(case_id=f"G-EO-{run}-{i}", stage=1, completed_at=datetime.now(UTC)),
                      source="/concord/bureau") for i in range(EVENTS)]
    ids = {dict(r.headers)["ce_id"].decode() for r in records}
    async with Tail(stack.kafka(ADMIN), "shared.bureau.stage-completed") as shared, \
            Tail(stack.kafka(ADMIN), "deliver.coordination") as coordination, \
            Tail(stack.kafka(ADMIN), "audit.exchange") as audit:
        producer = AIOKafkaProducer(**stack.kafka("bureau").aiokafka(), enable_idempotence=True)
        await producer.start()
        try:
            for i, record in enumerate(records):
                await producer.send("ingress.bureau", record.value, key=record.key, headers=record.headers)
                if i == EVENTS // 3:
                    await producer.flush()
                    await shared.wait_for(lambda r: header(r, "ce_id") in ids, count=50)
                    exchange.send_signal(victim, signal.SIGKILL)  # mid-stream, likely inside a transaction
                if i % 100 == 0:
                    await asyncio.sleep(0.05)
            await producer.flush()
        finally:
            await producer.stop()
        assert not exchange.processes[victim].alive()
        mine = lambda r: header(r, "ce_id") in ids  # noqa: E731
        await shared.wait_for(mine, count=EVENTS, timeout=120)
        await coordination.wait_for(mine, count=EVENTS, timeout=60)
        entries = await audit.wait_for(lambda r: json.loads(r.value).get("event_id") in ids, count=EVENTS, timeout=60)
        await asyncio.sleep(2)  # anything duplicated late would land now
        for tail, found in ((shared, shared.records), (coordination, coordination.records)):
            counts = collections.Counter(header(r, "ce_id") for r in found if mine(r))
            assert set(counts) == ids, tail.topic
            assert max(counts.values()) == 1, (tail.topic, counts.most_common(3))
        audited = collections.Counter(json.loads(r.value)["event_id"] for r in audit.records
                                      if json.loads(r.value).get("event_id") in ids)
        assert len(entries) >= EVENTS and set(audited) == ids and max(audited.values()) == 1
