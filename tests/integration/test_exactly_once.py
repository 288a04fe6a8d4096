"""Exactly-once routing across a rebalance: two more router processes join the gateway's consumer group, one is
frozen while it holds ingress partitions and has a transaction open, then killed (SIGKILL), and no routed record
is lost or duplicated."""

from __future__ import annotations

import asyncio
import collections
import json
import random
import signal
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from base.settings import ADMIN, Settings
from contracts.bureau import StageCompleted
from contracts.envelope import KafkaRecord, encode
from deploy.processes import AppProcesses
from tests.tools import Inspector, Tail, eventually, header

EVENTS = 4000
INGRESS = "ingress.bureau"
SHARED = "shared.bureau.stage-completed"
FEED_PERIOD_SECONDS = 0.005  # between the feed's bursts of 20 records
ATTEMPTS = 60  # times the victim is frozen until it is caught with a transaction open (2 to 8 in four runs)


async def test_killing_a_router_inside_a_transaction_loses_and_duplicates_nothing(
    stack: Settings, exchange: AppProcesses
) -> None:
    run = uuid.uuid4().hex[:8]
    r1 = exchange.start(f"router-{run}-1", "gateway", "run", "--no-serve", "--instance", f"{run}-1")
    r2 = exchange.start(f"router-{run}-2", "gateway", "run", "--no-serve", "--instance", f"{run}-2")
    try:
        await _stream_through_a_killed_router(stack, exchange, run, r1.name, f"{stack.router_group}.{run}-1")
    finally:
        r2.stop()
        r1.stop()  # killed by then, unless the test failed before: it must not stay in the group for the next test


class Feed:
    """Records sent to the bureau's ingress at a steady pace, paused and resumed on demand."""

    def __init__(self, producer: AIOKafkaProducer, records: list[KafkaRecord]) -> None:
        self.producer = producer
        self.pending = list(records)
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.task = asyncio.create_task(self._send())

    async def _send(self) -> None:
        while self.pending:
            await self.flowing.wait()
            for record in self.pending[:20]:
                await self.producer.send(INGRESS, record.value, key=record.key, headers=record.headers)
            del self.pending[:20]
            await self.producer.flush()
            await asyncio.sleep(FEED_PERIOD_SECONDS)

    async def pause(self) -> None:
        self.flowing.clear()
        await self.producer.flush()


async def _stream_through_a_killed_router(stack: Settings, exchange: AppProcesses, run: str, victim: str,
                                          victim_client: str) -> None:
    inspector = Inspector(stack.kafka(ADMIN))
    group = stack.router_group

    async def spread() -> bool:  # all three routers in the group, each holding a partition of the ingress
        members = await inspector.assignment(group)
        return len(members) == 3 and all(any(t == INGRESS for t, _ in held) for held in members.values())

    await eventually(spread, timeout=90)
    held = await inspector.assignment(group)
    others = {tp for client, tps in held.items() if client != victim_client for tp in tps if tp[0] == INGRESS}

    records = [encode(StageCompleted(case_id=f"G-EO-{run}-{i}", stage=1, completed_at=datetime.now(UTC)),
                      source="/concord/bureau") for i in range(EVENTS)]
    ids = {dict(r.headers)["ce_id"].decode() for r in records}
    mine = lambda r: header(r, "ce_id") in ids  # noqa: E731
    async with Tail(stack.kafka(ADMIN), SHARED) as shared, \
            Tail(stack.kafka(ADMIN), "deliver.coordination") as coordination, \
            Tail(stack.kafka(ADMIN), "audit.exchange") as audit:
        producer = AIOKafkaProducer(**stack.kafka("bureau").aiokafka(), enable_idempotence=True)
        await producer.start()
        try:
            feed = Feed(producer, records)
            await shared.wait_for(mine, count=EVENTS // 5, timeout=60)
            open_in = await _freeze_inside_a_transaction(exchange, victim, feed, inspector, group, others, shared)
            assert open_in, f"the victim never had a transaction open in {ATTEMPTS} tries"
            exchange.send_signal(victim, signal.SIGKILL)
            feed.flowing.set()
            await feed.task
            # one marker per ingress partition, after everything: a duplicate would be routed before it
            markers = [encode(StageCompleted(case_id=f"G-EO-{run}-marker-{p}", stage=1,
                                             completed_at=datetime.now(UTC)), source="/concord/bureau")
                       for p in range(3)]
            for partition, marker in enumerate(markers):
                await producer.send_and_wait(INGRESS, marker.value, key=marker.key, headers=marker.headers,
                                             partition=partition)
        finally:
            await producer.stop()
        assert not exchange.processes[victim].alive()
        marker_ids = {dict(m.headers)["ce_id"].decode() for m in markers}
        await shared.wait_for(mine, count=EVENTS, timeout=120)
        await shared.wait_for(lambda r: header(r, "ce_id") in marker_ids, count=3, timeout=60)
        await coordination.wait_for(lambda r: header(r, "ce_id") in marker_ids, count=3, timeout=60)
        await audit.wait_for(lambda r: json.loads(r.value).get("event_id") in marker_ids, count=3, timeout=60)
        for tail in (shared, coordination):
            counts = collections.Counter(header(r, "ce_id") for r in await tail.drain() if mine(r))
            assert set(counts) == ids, tail.topic
            assert max(counts.values()) == 1, (tail.topic, counts.most_common(3))
        audited = collections.Counter(json.loads(r.value)["event_id"] for r in await audit.drain()
                                      if json.loads(r.value).get("event_id") in ids)
        assert set(audited) == ids and max(audited.values()) == 1


async def _freeze_inside_a_transaction(exchange: AppProcesses, victim: str, feed: Feed, inspector: Inspector,
                                       group: str, others: set[tuple[str, int]], shared: Tail) -> set[tuple[str, int]]:
    """Freeze the victim (SIGSTOP) mid-stream until it is caught with a transaction open: once the other routers
    have committed all of their partitions, a partition of the shared topic whose stable offset lags its end
    holds the victim's open transaction. Returns those partitions (the victim stays frozen)."""
    for _ in range(ATTEMPTS):
        if not feed.pending:
            break
        # at a random moment of the feed's period: right after the shared records came, the victim has just committed
        await asyncio.sleep(random.uniform(0, 2 * FEED_PERIOD_SECONDS))
        exchange.send_signal(victim, signal.SIGSTOP)
        await feed.pause()
        await eventually(lambda: inspector.caught_up(group, others), timeout=30)
        if open_in := await inspector.open_transactions([SHARED]):
            return open_in
        exchange.send_signal(victim, signal.SIGCONT)
        feed.flowing.set()
        seen = len(shared.records)
        await shared.wait_for(lambda r: True, count=seen + 20, timeout=60)
    return set()
