"""What reached the router while a transaction committed joins the batch that waited for that transaction, in one
transaction with it, whether the consumer had fetched it or it still waited at the broker behind a fetch not yet
taken; if it cannot be routed then, it comes again in the next batch. Either way each event is routed once and the
group's offsets end past it.

The router is driven step by step in the test, its first transaction held back until the test lets it go, so that
the order of fetches is the test's: A is taken and committing; B is fetched by the next step, which then waits for
A's transaction; C arrives only after that fetch (and D after C's fetch, where the consumer asks for nothing more
until C is taken)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer, TopicPartition

from base.clock import AcceleratedClock
from base.settings import ADMIN, Settings
from contracts.departments import BUREAU, GATEWAY
from contracts.envelope import KafkaRecord, encode
from contracts.topics import Topics
from gateway.enforcement import Enforcement
from gateway.router import Router
from tests.factories import case_submitted
from tests.tools import Inspector, Tail, eventually, namespaced_exchange

CONTRACT = "bureau.case-submitted"


@dataclass
class Driven:
    router: Router
    topics: Topics
    settings: Settings
    release: asyncio.Event  # lets the router's first transaction go on
    producer: AIOKafkaProducer
    offsets: list[int]  # of what was sent, in order

    async def send(self, record: KafkaRecord) -> TopicPartition:
        """Sent as the bureau; where it landed (each test's records share one key: one partition, in order)."""
        sent = await self.producer.send_and_wait(self.topics.ingress(BUREAU), record.value, key=record.key,
                                                 headers=record.headers)
        self.offsets.append(sent.offset)
        return TopicPartition(sent.topic, sent.partition)

    async def step_until_routed(self) -> int:
        async with asyncio.timeout(30):
            while not (routed := await self.router.step(timeout_ms=100)):
                pass
            return routed


@asynccontextmanager
async def driven_router(stack: Settings, clock: AcceleratedClock, refetch_ms: int | None = None
                        ) -> AsyncIterator[Driven]:
    """A router of its own on a namespace of the test's own, started but not running: the test calls its steps."""
    run = uuid.uuid4().hex[:8]
    async with namespaced_exchange(stack, "topup") as topics:
        settings = stack.model_copy(update={"topic_namespace": topics.namespace,
                                            "router_group": f"{stack.router_group}.topup-{run}",
                                            "router_refetch_ms": refetch_ms or stack.router_refetch_ms})
        pool = await asyncpg.create_pool(settings.dsn(GATEWAY), min_size=1, max_size=2)
        enforcement = await Enforcement.connect(pool, settings.dsn(GATEWAY))
        router = Router(settings, enforcement, clock, f"topup-{run}")
        release = asyncio.Event()
        commit = router._commit

        async def held(*args: Any) -> None:
            await release.wait()
            await commit(*args)

        router._commit = held  # type: ignore[method-assign]
        producer = AIOKafkaProducer(**settings.kafka(BUREAU).aiokafka(), enable_idempotence=True)
        await producer.start()
        await router.start()
        try:
            yield Driven(router, topics, settings, release, producer, [])
        finally:
            release.set()
            await router.stop()
            await producer.stop()
            await enforcement.close()
            await pool.close()


async def _fetched_past(router: Router, tp: TopicPartition, offset: int) -> None:
    """Wait until the router's consumer has taken the record at ``offset`` out of its fetched records."""
    async def past() -> bool:
        return await router.consumer.position(tp) > offset

    await eventually(past, timeout=30)


async def _buffered(router: Router, tp: TopicPartition, offset: int) -> None:
    """Wait until a fetch response with the record at ``offset`` has reached the router's consumer (its last known
    high watermark is past it: the response that said so held the record, fetched from the position before it)."""
    async def arrived() -> bool:
        highwater = router.consumer.highwater(tp)
        return highwater is not None and highwater > offset

    await eventually(arrived, timeout=30)


async def _events(driven: Driven, count: int = 3) -> tuple[int, TopicPartition]:
    """A is taken and committing (held); B is fetched by the next step, which waits for A; C arrives after that
    fetch and before A's transaction goes on; D (of four) after C's fetch has come. Returns what the step that took
    B routed, and their partition."""
    case_id = f"TOPUP-{uuid.uuid4().hex[:8]}"
    a, b, c, *d = (encode(case_submitted(case_id), source="/concord/bureau") for _ in range(count))
    tp = await driven.send(a)
    assert await driven.step_until_routed() == 1
    await driven.send(b)
    second = asyncio.create_task(driven.router.step(timeout_ms=5_000))
    await _fetched_past(driven.router, tp, driven.offsets[1])
    await driven.send(c)
    await _buffered(driven.router, tp, driven.offsets[2])
    for record in d:
        await driven.send(record)
        assert (driven.router.consumer.highwater(tp) or 0) <= driven.offsets[-1]  # at the broker, not fetched
    assert not second.done()  # it waits for A's transaction
    driven.release.set()
    return await second, tp


async def _committed(driven: Driven, tp: TopicPartition) -> int:
    """The group's committed offset of the partition, once the transaction in flight has settled."""
    await driven.router.settle()
    partition = (tp.topic, tp.partition)
    committed = await Inspector(driven.settings.kafka(ADMIN)).committed(driven.settings.router_group, [partition])
    return committed[partition]


async def test_what_arrives_while_a_transaction_commits_joins_the_batch_that_waited_for_it(
        stack: Settings, clock: AcceleratedClock) -> None:
    async with driven_router(stack, clock) as driven:
        async with Tail(stack.kafka(ADMIN), driven.topics.shared(CONTRACT)) as shared:
            routed, tp = await _events(driven)
            assert routed == 2  # B, and C with it: one transaction
            assert await _committed(driven, tp) == driven.offsets[2] + 1
            await shared.wait_for(lambda r: True, count=3)
            events = await shared.drain()
        assert len(events) == 3 and len({dict(r.headers)["ce_id"] for r in events}) == 3  # each once


async def test_what_waits_at_the_broker_behind_a_fetch_not_yet_taken_joins_too(
        stack: Settings, clock: AcceleratedClock) -> None:
    """The consumer asks for D only once C's fetch is taken; the router then asks at once (given all the time the
    test needs here: a fetch's round trip in service), and D joins B and C."""
    async with driven_router(stack, clock, refetch_ms=10_000) as driven:
        async with Tail(stack.kafka(ADMIN), driven.topics.shared(CONTRACT)) as shared:
            routed, tp = await _events(driven, count=4)
            assert routed == 3  # B, C and D: one transaction
            assert await _committed(driven, tp) == driven.offsets[3] + 1
            await shared.wait_for(lambda r: True, count=4)
            events = await shared.drain()
        assert len(events) == 4 and len({dict(r.headers)["ce_id"] for r in events}) == 4


async def test_what_cannot_be_routed_to_join_a_batch_comes_again_in_the_next(
        stack: Settings, clock: AcceleratedClock) -> None:
    async with driven_router(stack, clock) as driven:
        route_batch = driven.router._route_batch
        calls = 0

        async def third_fails(batch: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 3:  # A, B, then C on its own: the batch C was to join
                raise ConnectionError("the database does not answer")
            return await route_batch(batch)

        driven.router._route_batch = third_fails  # type: ignore[method-assign]
        async with Tail(stack.kafka(ADMIN), driven.topics.shared(CONTRACT)) as shared:
            routed, tp = await _events(driven)
            assert (routed, calls) == (1, 3)  # B alone: C was to join it, and was sent back to where it was
            assert await _committed(driven, tp) == driven.offsets[1] + 1
            assert await driven.step_until_routed() == 1  # C, in the next batch
            assert await _committed(driven, tp) == driven.offsets[2] + 1
            await shared.wait_for(lambda r: True, count=3)
            events = await shared.drain()
        assert len(events) == 3 and len({dict(r.headers)["ce_id"] for r in events}) == 3
