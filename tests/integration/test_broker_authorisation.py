"""The broker's authorisation on the real Kafka: every principal against every topic family, consumer groups,
transactional ids and topic administration, allowed exactly where the trust model says and refused with the
broker's own authorisation error everywhere else; and nobody connects without valid credentials.

The expectations are written out here from the model (a department writes its ingress, reads its deliveries
and its dead letters, uses groups and transactional ids of its own prefix; the gateway routes and alone writes
the audit anchors; the operator reads the audit anchors and no other topic), not derived from ``gateway.acls``,
so that the test checks the derivation."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from base.kafka import KafkaAccess
from base.settings import Settings
from contracts.departments import DEPARTMENTS, GATEWAY, OPERATOR
from contracts.topics import Topics
from tests.tools import namespaced_exchange

AUTHORISATION_FAILED = 29  # TOPIC_AUTHORIZATION_FAILED, as the broker answers a CreateTopics or DeleteTopics


@dataclass(frozen=True)
class Check:
    what: str
    allowed: bool


async def can_write(producer: AIOKafkaProducer, topic: str) -> bool:
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, b"authorisation matrix", key=b"matrix"), 30)
        return True
    except TopicAuthorizationFailedError:
        return False


async def can_produce_idempotently(access: KafkaAccess) -> bool:
    """An idempotent producer needs WRITE on some topic (the broker refuses its producer id otherwise)."""
    producer = AIOKafkaProducer(**access.aiokafka(), enable_idempotence=True)
    try:
        await asyncio.wait_for(producer.start(), 30)
        return True
    except ClusterAuthorizationFailedError:
        return False
    finally:
        await producer.stop()


async def can_read(access: KafkaAccess, topic: str) -> bool:
    """Fetching from the topic's start: refused by the broker either in the metadata (no DESCRIBE) or the fetch."""
    consumer = AIOKafkaConsumer(**access.aiokafka(), enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.set_topics([topic])
        if topic in consumer._client.cluster.unauthorized_topics:
            return False
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        await consumer.getmany(timeout_ms=300)
        return True
    except TopicAuthorizationFailedError:
        return False
    finally:
        await consumer.stop()


async def can_join(access: KafkaAccess, group: str, topic: str) -> bool:
    """Joining a group to consume a topic the principal may read (the operator may read none of those, and is refused
    at the topic already)."""
    consumer = AIOKafkaConsumer(topic, **access.aiokafka(), group_id=group, enable_auto_commit=False)
    try:
        await asyncio.wait_for(consumer.start(), 30)
        await consumer.getmany(timeout_ms=300)
        return True
    except (GroupAuthorizationFailedError, TopicAuthorizationFailedError):
        return False
    finally:
        await consumer.stop()


async def can_describe_group(access: KafkaAccess, group: str) -> bool:
    """Reading a group's committed offsets (its consumer lag) without joining it."""
    admin = AIOKafkaAdminClient(**access.aiokafka())
    await admin.start()
    try:
        await admin.list_consumer_group_offsets(group)
        return True
    except GroupAuthorizationFailedError:
        return False
    finally:
        await admin.close()


async def can_transact(access: KafkaAccess, transactional_id: str) -> bool:
    producer = AIOKafkaProducer(**access.aiokafka(), transactional_id=transactional_id)
    try:
        await asyncio.wait_for(producer.start(), 30)
        return True
    except TransactionalIdAuthorizationFailed:
        return False
    finally:
        await producer.stop()


async def can_administer_topics(access: KafkaAccess, topics: Topics) -> tuple[bool, bool]:
    admin = AIOKafkaAdminClient(**access.aiokafka())
    await admin.start()
    try:
        created = await admin.create_topics([NewTopic(topics.ingress(f"made-up-{uuid.uuid4().hex[:6]}"), 1, 1)])
        deleted = await admin.delete_topics([topics.audit])
    finally:
        await admin.close()
    return (created.topic_errors[0][1] != AUTHORISATION_FAILED,
            deleted.topic_error_codes[0][1] != AUTHORISATION_FAILED)


def own_name(principal: str) -> str:
    """The department whose topics, groups and transactional ids a principal is tried on as its own."""
    return principal if principal in DEPARTMENTS else "planning"


async def matrix_of(stack: Settings, principal: str, topics: Topics) -> list[Check]:
    """Every check at once, each on a client of its own (the writes share a producer): the broker answers each
    alone, and the matrix takes the time of its slowest check rather than of all of them."""
    access = stack.kafka(principal)
    own = own_name(principal)
    other = "water" if own != "water" else "market"

    async def check(what: str, allowed: Awaitable[bool]) -> Check:
        return Check(what, await allowed)

    writable = [*(topics.ingress(department) for department in DEPARTMENTS), topics.deliver(own),
                topics.deadletter(own), topics.shared("bureau.case-submitted"), topics.audit, topics.audit_anchor]
    readable = [topics.deliver(own), topics.deadletter(own), topics.deliver(other),
                topics.deadletter(other), topics.ingress(own), topics.ingress(other),
                topics.shared("bureau.case-submitted"), topics.audit, topics.audit_anchor]
    readable_by_it = topics.ingress(own) if principal == GATEWAY else topics.deliver(own)  # the group's subscription
    producer = AIOKafkaProducer(**access.aiokafka(), acks="all")
    await producer.start()
    try:
        checks = asyncio.gather(
            check("idempotent producer", can_produce_idempotently(access)),
            *(check(f"write {topic}", can_write(producer, topic)) for topic in writable),
            *(check(f"read {topic}", can_read(access, topic)) for topic in readable),
            *(check(f"group {group}", can_join(access, group, readable_by_it))
              for group in (own, f"{own}.matrix", other, f"{other}.matrix", "gateway.router")),
            check(f"describe group {other}", can_describe_group(access, other)),
            *(check(f"transactional id {transactional_id}", can_transact(access, transactional_id))
              for transactional_id in (f"{own}.matrix", f"{other}.matrix", "gateway.router.matrix")))
        matrix, (create, delete) = await asyncio.gather(checks, can_administer_topics(access, topics))
    finally:
        await producer.stop()
    return [*matrix, Check("create a topic", create), Check("delete a topic", delete)]


def expected(principal: str, check: str, topics: Topics) -> bool:
    """What the trust model allows, written out."""
    verb, _, target = check.partition(" ")
    if verb == "idempotent":
        return principal != OPERATOR
    if principal in DEPARTMENTS:
        return {
            "write": target == topics.ingress(principal),
            "read": target in (topics.deliver(principal), topics.deadletter(principal)),
            "group": target in (principal, f"{principal}.matrix"),
            "transactional": target == f"id {principal}.matrix",
        }.get(verb, False)
    if principal == GATEWAY:
        family = target.removeprefix(f"{topics.namespace}.").split(".")[0]
        return {
            "write": family in ("ingress", "deliver", "deadletter", "shared", "audit"),
            "read": True,  # every family: it routes ingress and keeps the record; operators tail the rest
            "group": target == "gateway.router",
            "describe": True,  # every group's offsets: the consumer lag operators watch
            "transactional": target == "id gateway.router.matrix",
        }.get(verb, False)
    return check == f"read {topics.audit_anchor}"  # the operator: the audit anchors, to check the chain's head


@pytest_asyncio.fixture(scope="module")
async def topics(stack: Settings) -> AsyncIterator[Topics]:
    async with namespaced_exchange(stack, "authz") as namespace:
        yield namespace


@pytest.mark.parametrize("principal", [*DEPARTMENTS, GATEWAY, OPERATOR])
async def test_each_principal_is_allowed_exactly_what_the_model_says(
    stack: Settings, topics: Topics, principal: str
) -> None:
    checks = await matrix_of(stack, principal, topics)
    wrong = [f"{c.what}: {'allowed' if c.allowed else 'refused'}" for c in checks
             if c.allowed != expected(principal, c.what, topics)]
    assert not wrong, wrong
    assert any(c.allowed for c in checks)


async def test_without_valid_credentials_nobody_connects(stack: Settings, caplog: pytest.LogCaptureFixture) -> None:
    good = stack.kafka("planning")
    assert good.security_protocol == "SASL_SSL" and good.sasl_mechanism == "SCRAM-SHA-512"
    attempts = {
        "no credentials, no TLS": KafkaAccess(stack.bootstrap),
        "TLS but no credentials": KafkaAccess(stack.bootstrap, "SSL", cafile=good.cafile),
        "credentials without TLS": KafkaAccess(stack.bootstrap, "SASL_PLAINTEXT", good.username, good.password),
        "a wrong password": KafkaAccess(stack.bootstrap, "SASL_SSL", good.username, "wrong", good.cafile),
        "an unknown user": KafkaAccess(stack.bootstrap, "SASL_SSL", "nobody", good.password, good.cafile),
    }
    caplog.set_level(logging.ERROR, logger="aiokafka")
    for name, access in attempts.items():
        producer = AIOKafkaProducer(**access.aiokafka(), request_timeout_ms=5000)
        with pytest.raises(KafkaConnectionError):
            await asyncio.wait_for(producer.start(), 60)
        await producer.stop()
        if "password" in name or "user" in name:
            assert "SaslAuthenticationFailed" in caplog.text, name
        caplog.clear()
