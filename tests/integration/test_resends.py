"""Resends on the real gateway: an outbox sends at least once, and a copy of an event its sender already sent with
the same content is a resend (audited as `resent`, counted, neither dead-lettered nor notified nor delivered
again), whether it comes in the batch of its first copy or long after; another event under a used id is still
refused as `duplicate_id`."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiokafka import AIOKafkaProducer

from base.clock import SystemClock
from base.settings import ADMIN, Settings
from contracts.departments import OPERATOR
from contracts.envelope import KafkaRecord, encode
from deploy.processes import AppProcesses
from services.kit.service import DepartmentService
from tests.factories import opinion_issued
from tests.integration.test_observability import scrape, value
from tests.tools import Record, Tail, eventually, header


def event_id_of(record: KafkaRecord) -> str:
    return dict(record.headers)["ce_id"].decode()


def audited(record: Record) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(record.value)
    return entry


def notice_on(record: Record, event_id: str) -> bool:
    return header(record, "ce_type") == "exchange.event-rejected" and json.loads(record.value)["event_id"] == event_id


async def test_an_outbox_resending_an_event_is_audited_as_a_resend_and_nothing_else(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    """Planning's running service relays its outbox; the test writes an event into it, as planning, and once the
    event is delivered marks it unsent again (as a crash between sending and marking leaves it): the relay sends it
    again, a batch later."""
    case_id = f"G-RESEND-{uuid.uuid4().hex[:8]}"
    planning = DepartmentService("planning", stack, SystemClock())  # its store and outbox, not consuming
    await planning.connect()

    async def publish(request: str) -> str:
        async with planning.pool.acquire() as connection, connection.transaction():
            return await planning.outbox.add(connection, opinion_issued(case_id, f"{case_id}/NRP-101/{request}"))

    before = await scrape(stack.gateway_address, tokens[OPERATOR])
    try:
        async with Tail(stack.kafka(ADMIN), "deliver.bureau") as bureau, \
                Tail(stack.kafka(ADMIN), "deliver.planning") as notices, \
                Tail(stack.kafka(ADMIN), "deadletter.planning") as dead, \
                Tail(stack.kafka(ADMIN), "audit.exchange") as audit:
            event_id = await publish("1")
            await bureau.wait_for(lambda r: header(r, "ce_id") == event_id)
            [first] = await audit.wait_for(lambda r: audited(r).get("event_id") == event_id)
            assert audited(first)["action"] == "routed"

            marked = await planning.pool.execute("UPDATE planning.outbox SET published_at = NULL WHERE event_id = $1",
                                                 event_id)
            assert marked == "UPDATE 1"
            [entry] = await audit.wait_for(lambda r: audited(r).get("event_id") == event_id
                                           and audited(r)["action"] == "resent")
            assert audited(entry)["first"] == audited(first)["ingress"] != audited(entry)["ingress"]
            assert (audited(entry)["sender"], audited(entry)["case_id"]) == ("planning", case_id)

            # A later event of the case (its key: the same ingress partition) is routed after the resend: once it
            # is delivered, whatever the resend caused is committed.
            later = await publish("2")
            await bureau.wait_for(lambda r: header(r, "ce_id") == later)
            assert [header(r, "ce_id") for r in await bureau.drain() if r.key == case_id.encode()] == [event_id, later]
            await audit.wait_for(lambda r: audited(r).get("event_id") == later)
            assert [audited(r)["action"] for r in await audit.drain() if audited(r).get("event_id") == event_id] == \
                ["routed", "resent"]
            assert not [r for r in await dead.drain() if header(r, "ce_id") == event_id]
            assert not [r for r in await notices.drain() if notice_on(r, event_id)]
    finally:
        await planning.disconnect()

    after: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}

    async def counted() -> bool:
        after.update(await scrape(stack.gateway_address, tokens[OPERATOR]))
        return value(after, "concord_resent_total", sender="planning") > \
            value(before, "concord_resent_total", sender="planning")

    await eventually(counted)


async def produce_together(stack: Settings, topic: str, *records: KafkaRecord) -> None:
    """Records in one request to the broker, in order (one key, one partition): one record batch, which the router
    takes up in one go."""
    producer = AIOKafkaProducer(**stack.kafka("planning").aiokafka(), enable_idempotence=True, linger_ms=50)
    await producer.start()
    try:
        sent = [await producer.send(topic, r.value, key=r.key, headers=r.headers) for r in records]
        await producer.flush()
        offsets = [(await future).offset for future in sent]
        assert offsets == list(range(offsets[0], offsets[0] + len(records)))
    finally:
        await producer.stop()


async def test_a_copy_sent_with_its_first_is_a_resend_and_another_event_under_the_id_a_duplicate(
    stack: Settings, exchange: AppProcesses
) -> None:
    case_id = f"G-RESEND-{uuid.uuid4().hex[:8]}"
    record = encode(opinion_issued(case_id), source="/concord/planning")
    event_id = event_id_of(record)
    traced = KafkaRecord(record.key, record.value, [*((n, v) for n, v in record.headers if n != "traceparent"),
                                                   ("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01")])
    other = KafkaRecord(record.key, record.value.replace(b'"approved"', b'"rejected"'), record.headers)
    async with Tail(stack.kafka(ADMIN), "shared.bureau.opinion-issued") as shared, \
            Tail(stack.kafka(ADMIN), "deliver.planning") as notices, \
            Tail(stack.kafka(ADMIN), "deadletter.planning") as dead, \
            Tail(stack.kafka(ADMIN), "audit.exchange") as audit:
        await produce_together(stack, "ingress.planning", record, traced, other)
        [refused] = await dead.wait_for(lambda r: header(r, "ce_id") == event_id)
        assert header(refused, "concord_reason") == "duplicate_id" and refused.value == other.value
        await notices.wait_for(lambda r: notice_on(r, event_id))
        # the duplicate came last: the copy before it is committed by now
        assert [audited(r)["action"] for r in await audit.wait_for(lambda r: audited(r).get("event_id") == event_id,
                                                                     count=3)] == ["routed", "resent", "rejected"]
        assert len([r for r in await shared.drain() if header(r, "ce_id") == event_id]) == 1
        assert len([r for r in await dead.drain() if header(r, "ce_id") == event_id]) == 1
        assert len([r for r in await notices.drain() if notice_on(r, event_id)]) == 1
