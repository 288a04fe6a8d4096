"""Zombie fencing on the real broker: a transaction whose input offsets carry a group generation that has passed
(its member was paused while the group rebalanced) is refused by the group coordinator and aborts whole, outputs
included; the same transaction in the current generation commits, and while it is open, a stable fetch of the
committed offsets is told to wait for its outcome."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import IllegalGenerationError

from base.offsets import UnstableOffsetCommit, fetch_stable_offsets
from base.settings import Settings
from contracts.departments import GATEWAY
from gateway.fencing import GroupFence, Membership
from tests.tools import eventually, namespaced_exchange


async def _committed_values(stack: Settings, topic: str) -> list[bytes]:
    """Every committed record of a one-partition topic, read to its end."""
    reader = AIOKafkaConsumer(**stack.kafka(GATEWAY).aiokafka(), isolation_level="read_committed",
                              enable_auto_commit=False)
    await reader.start()
    try:
        tp = TopicPartition(topic, 0)
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        end = (await reader.end_offsets([tp]))[tp]
        values: list[bytes] = []
        while await reader.position(tp) < end:
            batch = await reader.getmany(tp, timeout_ms=500)
            values += [r.value for r in batch.get(tp, []) if r.value is not None]
        return values
    finally:
        await reader.stop()


async def test_a_commit_in_a_past_generation_aborts_its_transaction(stack: Settings) -> None:
    access = stack.kafka(GATEWAY).aiokafka()
    run = uuid.uuid4().hex[:8]
    group = f"{stack.router_group}.fence-{run}"
    async with namespaced_exchange(stack, "fence") as topics:
        source, target = topics.ingress("bureau"), topics.deliver("bureau")
        tp = TopicPartition(source, 0)
        first = AIOKafkaConsumer(source, **access, group_id=group, enable_auto_commit=False,
                                 auto_offset_reset="earliest")
        second = AIOKafkaConsumer(source, **access, group_id=group, enable_auto_commit=False,
                                  auto_offset_reset="earliest")
        producer = AIOKafkaProducer(**access, transactional_id=f"{group}.tx", enable_idempotence=True)
        await first.start()
        fetch_stable_offsets(first)  # as the router does: committed offsets are asked for with require_stable
        await producer.start()
        try:
            async def joined() -> bool:
                await first.getmany(timeout_ms=100)
                return Membership.of(first) is not None and bool(first.assignment())

            await eventually(joined)
            paused = Membership.of(first)
            assert paused is not None
            await second.start()  # the group rebalances into a new generation while `first` holds `paused`

            async def rebalanced() -> bool:
                await first.getmany(timeout_ms=100)
                await second.getmany(timeout_ms=100)
                now = Membership.of(first)
                return now is not None and now.generation > paused.generation

            await eventually(rebalanced)

            fence = GroupFence(producer)
            fence.membership = paused
            with pytest.raises(IllegalGenerationError):
                async with producer.transaction():
                    await producer.send_and_wait(target, b"from-the-past-" + run.encode(), partition=0)
                    await producer.send_offsets_to_transaction({tp: 1}, group)
            assert await first.committed(tp) is None
            assert not [v for v in await _committed_values(stack, target) if run.encode() in v]

            await producer.stop()
            producer = AIOKafkaProducer(**access, transactional_id=f"{group}.tx", enable_idempotence=True)
            await producer.start()
            fence = GroupFence(producer)
            fence.membership = Membership.of(first)
            async with producer.transaction():
                await producer.send_and_wait(target, b"current-" + run.encode(), partition=0)
                await producer.send_offsets_to_transaction({tp: 1}, group)
                with pytest.raises(UnstableOffsetCommit):  # an instance taking over now would wait for the outcome
                    await first._coordinator._do_fetch_commit_offsets([tp])

            async def committed() -> bool:  # visible once the broker has written the transaction's markers
                return await first.committed(tp) == 1

            await eventually(committed)
            assert [v for v in await _committed_values(stack, target) if run.encode() in v] == [
                b"current-" + run.encode()]
        finally:
            await producer.stop()
            await first.stop()
            await second.stop()
