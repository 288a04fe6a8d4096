"""Credentials survive a broker restart, revoked ones included (they stay refused). On a secured node of the
test's own (its own folder and ports), so that the stack's broker is not restarted under the other tests.

Revocation never deletes a SCRAM user: Kafka 4.1 to 4.4 may drop every SCRAM credential of a restarted
broker once the metadata log holds a removal. This test is the guard against going back to deleting."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator

import pytest

from base.kafka import KafkaAccess
from base.settings import Settings
from deploy.stack import KafkaNode, answers
from gateway.provisioning import BrokerAdmin


@pytest.fixture
def node(stack: Settings) -> Iterator[KafkaNode]:
    node = KafkaNode(stack, home=stack.stack_path / f"restart-{uuid.uuid4().hex[:6]}",
                     port=stack.kafka_port + 200, controller_port=stack.kafka_controller_port + 200)
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(node.home, ignore_errors=True)


async def test_credentials_in_force_still_work_and_revoked_ones_still_fail_after_a_restart(node: KafkaNode) -> None:
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

    await asyncio.to_thread(node.stop)
    await asyncio.to_thread(node.start)
    await asyncio.to_thread(node.wait_ready)  # as the admin: its credential came through the restart too
    assert all([await answers(user(name, "pw"), 5000) for name in kept])
    assert not any([await answers(user(name, "pw"), 5000) for name in revoked])
