"""The gateway router on the real Kafka: what reaches which topic, in transactions, and what is refused."""

from __future__ import annotations

import json
import uuid

import asyncpg

from base.settings import ADMIN, Settings
from contracts.bureau import CaseCompleted, CaseOutcome
from contracts.envelope import encode, encode_payload
from deploy.processes import AppProcesses
from tests.factories import T0, case_submitted, opinion_issued
from tests.tools import Tail, eventually, header, produce


async def test_a_valid_event_is_recorded_delivered_to_each_consumer_and_audited(
    stack: Settings, exchange: AppProcesses
) -> None:
    case_id = f"G-IT-{uuid.uuid4().hex[:8]}"
    record = encode(CaseCompleted(case_id=case_id, outcome=CaseOutcome.CLOSED, completed_at=T0),
                    source="/concord/bureau")
    async with Tail(stack.kafka(ADMIN), "shared.bureau.case-completed") as shared, \
            Tail(stack.kafka(ADMIN), "deliver.housing") as housing, \
            Tail(stack.kafka(ADMIN), "deliver.coordination") as coordination, \
            Tail(stack.kafka(ADMIN), "audit.exchange") as audit:
        await produce(stack.kafka("bureau"), "ingress.bureau", record)
        for tail in (shared, housing, coordination):
            [got] = await tail.wait_for(lambda r: r.key == case_id.encode())
            assert got.value == record.value
            assert header(got, "concord_sender") == "bureau"
            assert header(got, "ce_type") == "bureau.case-completed"
        [entry] = await audit.wait_for(lambda r: r.key == case_id.encode())
        audited = json.loads(entry.value)
        assert audited["action"] == "routed" and audited["sender"] == "bureau"
        assert {"housing", "coordination", "planning"} <= set(audited["delivered"])


async def test_a_malformed_payload_is_dead_lettered_the_sender_told_and_the_next_event_flows(
    stack: Settings, exchange: AppProcesses
) -> None:
    case_id = f"G-IT-{uuid.uuid4().hex[:8]}"
    bad_id = f"bad-{uuid.uuid4().hex[:8]}"
    bad = encode_payload(b'{"case_id": "' + case_id.encode() + b'", "decision": ', contract_id="bureau.opinion-issued",
                         version=1, subject=case_id, source="/concord/planning", id=bad_id)
    good = encode(opinion_issued(case_id), source="/concord/planning")
    async with Tail(stack.kafka(ADMIN), "deadletter.planning") as dead, \
            Tail(stack.kafka(ADMIN), "deliver.bureau") as bureau:
        await produce(stack.kafka("planning"), "ingress.planning", bad, good)
        [lost] = await dead.wait_for(lambda r: header(r, "ce_id") == bad_id)
        assert lost.value == bad.value
        assert header(lost, "concord_reason") == "malformed_payload"
        assert header(lost, "concord_ingress", ).startswith("ingress.planning/")  # type: ignore[union-attr]
        [delivered] = await bureau.wait_for(lambda r: r.key == case_id.encode())
        assert json.loads(delivered.value)["request_id"] == opinion_issued(case_id).request_id
        assert "officer" not in json.loads(delivered.value)

    async def told() -> bool:
        connection = await asyncpg.connect(stack.admin_dsn)
        try:
            row = await connection.fetchrow("SELECT reason FROM planning.rejections WHERE rejected_id = $1", bad_id)
        finally:
            await connection.close()
        return row is not None and row["reason"] == "malformed_payload"

    await eventually(told)  # the planning service received and kept the rejection notice


async def test_an_event_of_a_contract_the_sender_may_not_publish_is_rejected(
    stack: Settings, exchange: AppProcesses
) -> None:
    forged = encode(case_submitted(f"G-IT-{uuid.uuid4().hex[:8]}"), source="/concord/planning")
    event_id = dict(forged.headers)["ce_id"].decode()
    async with Tail(stack.kafka(ADMIN), "deadletter.planning") as dead, \
            Tail(stack.kafka(ADMIN), "deliver.planning") as notices, \
            Tail(stack.kafka(ADMIN), "shared.bureau.case-submitted") as shared:
        await produce(stack.kafka("planning"), "ingress.planning", forged)
        [lost] = await dead.wait_for(lambda r: header(r, "ce_id") == event_id)
        assert header(lost, "concord_reason") == "producer_not_authorised"
        [notice] = await notices.wait_for(lambda r: header(r, "ce_type") == "exchange.event-rejected"
                                          and json.loads(r.value)["event_id"] == event_id)
        assert json.loads(notice.value)["reason"] == "producer_not_authorised"
        assert not [r for r in await shared.drain() if header(r, "ce_id") == event_id]  # same transaction
