"""Credentials survive a broker restart, revoked ones included (they stay refused), and a consumer group starts from
its committed offset right after one (one restart shows both). On a secured node of the test's own (its own folder
and ports), so that the stack's broker is not restarted under the other tests.

Revocation never deletes a SCRAM user: Kafka 4.1 to 4.4 may drop every SCRAM credential of a restarted
broker once the metadata log holds a removal. This test is the guard against going back to deleting."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.consumer.group_coordinator import GroupCoordinator

from base.kafka import KafkaAccess
from base.offsets import stable_offsets_in_every_group
from base.settings import Settings
from deploy.stack import KafkaNode, answers, port_open
from gateway.provisioning import BrokerAdmin
from tests.tools import QUICK_START, eventually


@pytest.fixture
def node(stack: Settings) -> Iterator[KafkaNode]:
    quick = stack.model_copy(update={"kafka_jvm_options": QUICK_START})  # it starts twice and moves 20 records
    node = KafkaNode(quick, home=stack.stack_path / f"restart-{uuid.uuid4().hex[:6]}",
                     port=stack.kafka_port + 200, controller_port=stack.kafka_controller_port + 200)
    try:
        yield node
    finally:
        node.kill()  # its folder goes with it: nothing to shut down cleanly for
        shutil.rmtree(node.home, ignore_errors=True)


async def test_after_a_restart_credentials_hold_and_a_group_starts_from_its_committed_offset(node: KafkaNode) -> None:
    """One restart for both: before it, users are given passwords (some revoked) and a group commits an offset.
    Right after it, a consumer subscribed before it starts, as FastStream's are, with the stable fetch of
    ``base.offsets`` (the departments' services use it), asked for its group's offsets as soon as the restarted
    broker listens, starts from the committed offset, not from its reset policy (the coordinator's answers while it
    loads are in tests/unit/test_offsets.py); then the credentials in force work and the revoked ones still fail."""
    await asyncio.to_thread(node.start)
    await asyncio.to_thread(node.wait_ready)
    broker = BrokerAdmin(node.admin)

    def user(name: str, password: str) -> KafkaAccess:
        return KafkaAccess(node.bootstrap, "SASL_SSL", name, password, node.admin.cafile)

    kept = [f"planning.kept{i}" for i in range(6)]
    revoked = [f"water.revoked{i}" for i in range(6)]
    for name in kept + revoked:
        await asyncio.to_thread(broker.set_password, name, "pw")
    await asyncio.to_thread(broker.disable_users, revoked)
    assert await answers(user(kept[0], "pw"), 5000) and not await answers(user(revoked[0], "pw"), 5000)

    access = node.admin.aiokafka()
    topic, group, committed = f"restart-{uuid.uuid4().hex[:6]}", f"group-{uuid.uuid4().hex[:6]}", 7
    admin = AIOKafkaAdminClient(**access)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**access)
    await producer.start()
    try:
        for i in range(20):
            await producer.send_and_wait(topic, str(i).encode(), partition=0)
    finally:
        await producer.stop()
    first = AIOKafkaConsumer(**access, group_id=group, enable_auto_commit=False)
    await first.start()
    try:
        first.assign([TopicPartition(topic, 0)])
        await first.commit({TopicPartition(topic, 0): committed})
    finally:
        await first.stop()

    await asyncio.to_thread(node.stop)
    await asyncio.to_thread(node.start)
    await eventually(lambda: port_open(node.port))  # no more: the consumer asks while the coordinator may still load
    original = GroupCoordinator._do_fetch_commit_offsets
    stable_offsets_in_every_group()
    try:
        consumer = AIOKafkaConsumer(topic, **access, group_id=group, enable_auto_commit=False,
                                    auto_offset_reset="earliest")  # subscribed before it starts, as FastStream does
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 60)
        finally:
            await consumer.stop()
    finally:
        GroupCoordinator._do_fetch_commit_offsets = original
    assert record.offset == committed

    await asyncio.to_thread(node.wait_ready)  # as the admin: its credential came through the restart too
    assert all([await answers(user(name, "pw"), 5000) for name in kept])
    assert not any([await answers(user(name, "pw"), 5000) for name in revoked])
