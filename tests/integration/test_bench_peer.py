"""The benchmark's Kafka Streams peer (bench/peer.py, bench/peer/) on the real secured stack, in an exchange of the
test's own: built by Maven (once, then cached), run as the gateway's principal, fed valid events, a
schema-violating one and one its sender may not publish. What it writes to every shared, deliver, dead-letter
and audit topic is what the router's route (gateway/routing.py, a pure function) makes of the same records, but for
the times and how a validator words a violation; deliveries hold exactly the unconditional fields and the masks
of conditional ones, and not-shared fields appear nowhere."""

from __future__ import annotations

import asyncio
import json
import shlex
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio
from aiokafka import AIOKafkaProducer

from base.settings import ADMIN, Settings
from bench.measure import Processes, Target
from bench.peer import RUNNING, START_SECONDS, build, command, write_config, write_contracts
from contracts.base import Sharing, field_sharing
from contracts.bureau import OpinionIssued
from contracts.departments import GATEWAY
from contracts.envelope import KafkaRecord, encode, encode_payload
from contracts.market import BusinessRegistration
from contracts.topics import Topics
from gateway.registry import Registry
from gateway.routing import IngressRecord, NoAgreements, Outgoing, route
from tests.factories import business_registration, case_submitted, opinion_issued
from tests.tools import QUICK_START, Record, Tail, namespaced_exchange

WORDED = {"schema_violation", "malformed_payload"}  # refusals whose detail is the validator's or parser's words


@pytest_asyncio.fixture(scope="module")
async def peer(stack: Settings) -> AsyncIterator[Topics]:
    """An exchange's topics under a namespace of the test's own, and the peer routing them."""
    async with namespaced_exchange(stack, "peer") as topics:
        jar = await asyncio.to_thread(build, stack)
        folder = stack.stack_path / "tests" / f"peer-{topics.namespace}"
        contracts = await asyncio.to_thread(write_contracts, folder / "contracts")
        config = write_config(folder / "peer.properties", stack.kafka(GATEWAY), f"{GATEWAY}.{topics.namespace}",
                              topics, contracts, commit_interval_ms=50)
        peer = command(jar, config, shlex.split(QUICK_START))  # it moves a handful of records: C1 alone starts faster
        with Processes(Target("test", stack, {}), f"peer-{topics.namespace}", [peer], {}) as p:
            await asyncio.to_thread(p.wait_for, RUNNING, START_SECONDS)
            yield topics


async def send(stack: Settings, sender: str, topic: str, record: KafkaRecord) -> IngressRecord:
    """Produce a record as its sender; returns it as the router would read it."""
    producer = AIOKafkaProducer(**stack.kafka(sender).aiokafka(), enable_idempotence=True)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, record.value, key=record.key, headers=record.headers)
    finally:
        await producer.stop()
    return IngressRecord(topic, sent.partition, sent.offset, record.key, record.value, record.headers, sender)


def comparable(topic: str, key: bytes | None, value: bytes | None, headers: Any) -> str:
    """A record as text, without what may differ between two correct routings: the time and trace the exchange's
    own records (rejection notices, audit entries) were made with, and a detail in a validator's words."""
    names = dict(headers)
    own = names.get("ce_type") == b"exchange.event-rejected" or not headers
    try:
        body: Any = json.loads(value or b"")
    except ValueError:
        body = (value or b"").decode("utf-8", "replace")
    reason = names.get("concord_reason", b"").decode() or (body.get("reason") if isinstance(body, dict) else None)
    worded = reason in WORDED
    kept = [(k, v.decode() if v is not None else None) for k, v in headers
            if not (own and k in ("ce_time", "traceparent")) and not (worded and k == "concord_detail")]
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "at" and not (worded and k == "detail")}
    return json.dumps({"topic": topic, "key": (key or b"").decode(), "headers": kept, "value": body},
                      ensure_ascii=False, sort_keys=True)


def expected(out: Outgoing) -> str:
    return comparable(out.topic, out.key, out.value, out.headers)


def found(record: Record) -> str:
    return comparable(record.topic, record.key, record.value, list(record.headers))


async def test_the_peer_routes_as_the_router_does(stack: Settings, peer: Topics) -> None:
    case = f"G-PEER-{uuid.uuid4().hex[:8]}"
    registration = business_registration(f"{case}-m")
    opinion = opinion_issued(f"{case}-o")
    violating = json.loads(opinion_issued(f"{case}-v").model_dump_json())
    violating["decision"] = "perhaps"
    sent = [
        await send(stack, "planning", peer.ingress("planning"), encode(opinion, source="/concord/planning")),
        await send(stack, "market", peer.ingress("market"), encode(registration, source="/concord/market")),
        await send(stack, "planning", peer.ingress("planning"), encode_payload(
            json.dumps(violating).encode(), contract_id="bureau.opinion-issued", version=2, subject=f"{case}-v",
            source="/concord/planning")),
        await send(stack, "planning", peer.ingress("planning"),  # planning may not publish it
                   encode(case_submitted(f"{case}-f"), source="/concord/planning")),
    ]
    registry = Registry.from_catalogue()
    routings = [route(r, registry, NoAgreements(), datetime.now(UTC), stack.max_payload_bytes, peer) for r in sent]
    assert [r.rejection.reason.value if r.rejection else "routed" for r in routings] == \
        ["routed", "routed", "schema_violation", "producer_not_authorised"]
    wanted: dict[str, list[str]] = {}
    for routed in routings:
        for out in routed.records:
            wanted.setdefault(out.topic, []).append(expected(out))

    ours = {r.key for r in sent} | {f"{case}-{s}".encode() for s in "ovf"}
    got: dict[str, list[Record]] = {}
    for topic, outputs in wanted.items():
        async with Tail(stack.kafka(ADMIN), topic, from_start=True) as tail:
            await tail.wait_for(lambda r: r.key in ours, count=len(outputs))
            got[topic] = [r for r in await tail.drain() if r.key in ours]
        assert sorted(found(r) for r in got[topic]) == sorted(outputs), topic

    opinions = classes(OpinionIssued.CONTRACT.json_schema)
    [delivered] = [r for r in got[peer.deliver("bureau")] if r.key == opinion.case_id.encode()]
    assert set(json.loads(delivered.value or b"")) == opinions[Sharing.UNCONDITIONAL]
    registrations = classes(BusinessRegistration.CONTRACT.json_schema)
    assert registrations[Sharing.CONDITIONAL] and registrations[Sharing.NOT_SHARED]
    masked = {name for name, field in BusinessRegistration.CONTRACT.json_schema["properties"].items()
              if field.get("x-sharing") == Sharing.CONDITIONAL and "x-mask" in field}
    assert masked
    for consumer in sorted(BusinessRegistration.CONTRACT.consumers - {"market"}):
        [view] = [r for r in got[peer.deliver(consumer)] if r.key == registration.case_id.encode()]
        seen = json.loads(view.value or b"")
        assert set(seen) == registrations[Sharing.UNCONDITIONAL] | masked  # no agreement: the masks, no more
        assert all(seen[name] == "****" for name in masked)  # keyed hashes withheld: neither side holds the key
    [shared] = got[peer.shared("market.business-registration")]
    assert set(json.loads(shared.value or b"")) == registrations[Sharing.UNCONDITIONAL] | registrations[
        Sharing.CONDITIONAL]  # the exchange's record keeps conditional fields, never the not-shared
    never = opinions[Sharing.NOT_SHARED] | registrations[Sharing.NOT_SHARED]
    for topic, written in got.items():
        if not topic.startswith((peer.deadletter(""), peer.audit)):  # the dead letter keeps the original bytes
            assert not [r for r in written if never & set(json.loads(r.value or b""))], topic
    reasons = sorted(dict(r.headers)["concord_reason"] for r in got[peer.deadletter("planning")])
    assert reasons == [b"producer_not_authorised", b"schema_violation"]


def classes(schema: dict[str, Any]) -> dict[Sharing, set[str]]:
    """The fields of a contract by sharing class."""
    fields: dict[Sharing, set[str]] = {sharing: set() for sharing in Sharing}
    for name, sharing in field_sharing(schema).items():
        fields[sharing].add(name)
    return fields
