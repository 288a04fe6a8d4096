"""Ten thousand random and malformed records through the real router, on an exchange of the test's own: every
one ends routed, dead-lettered with a reason or audited as a resend, exactly once, the router never stops, and a
good event sent afterwards is delivered. What the records hold is drawn from a seeded generator: missing, null,
repeated, non-UTF-8 and oversized headers; forged exchange headers; null, empty, non-UTF-8, deeply nested,
oversized and wrongly typed values; wrong keys, copies of records and other records under their ids, contracts a
sender may not publish; and valid events."""

from __future__ import annotations

import asyncio
import collections
import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from base.settings import ADMIN, Settings
from contracts.bureau import StageCompleted
from contracts.envelope import KafkaRecord, encode
from contracts.topics import Topics
from deploy.processes import AppProcesses
from tests.factories import business_registration, case_submitted, opinion_issued
from tests.tools import Tail, header, namespaced_exchange

RECORDS = 10_000
SEED = 7310


def valid(rng: random.Random) -> tuple[str, KafkaRecord]:
    case_id = f"G-FZ-{rng.randrange(10**9)}"
    choice = rng.randrange(4)
    if choice == 0:
        return "planning", encode(opinion_issued(case_id), source="/concord/planning")
    if choice == 1:
        return "bureau", encode(case_submitted(case_id), source="/concord/bureau")
    if choice == 2:
        return "bureau", encode(StageCompleted(case_id=case_id, stage=1, completed_at=datetime.now(UTC)),
                                source="/concord/bureau")
    return "market", encode(business_registration(case_id), source="/concord/market")


HEADER_VALUES: list[bytes | None] = [None, b"", b"\x00", b"a\x00b", b"\xff\xfe\xfd", b"x" * 5000, b"1.0", b"\n",
                                     b"application/json", b"urn:concord:contract:bureau.opinion-issued:1", b"0" * 300]
NAMES = ["ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "ce_dataschema", "ce_specversion",
         "content-type", "traceparent", "concord_sender", "concord_reason", "ce_ext", "ce_BAD", "x"]


def mutated_value(rng: random.Random, value: bytes) -> bytes | None:
    data = json.loads(value)
    choice = rng.randrange(12)
    if choice == 0:
        return None
    if choice == 1:
        return b""
    if choice == 2:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if choice == 3:
        depth = rng.choice([10, 1000, 1100, 50_000])
        return b'{"a":' * depth + b"1" + b"}" * depth
    if choice == 4:
        return value.replace(b'"', b'\xff', 1)
    if choice == 5:
        data[rng.choice(sorted(data))] = rng.choice([10**30, -(10**30), 1e308, None, [], {}, "x" * 70_000, True])
    elif choice == 6:
        data.pop(rng.choice(sorted(data)))
    elif choice == 7:
        data[f"extra_{rng.randrange(100)}"] = "?"
    elif choice == 8:
        return json.dumps([data]).encode()
    elif choice == 9:
        return b"123456789012345678901234567890"
    elif choice == 10:
        return b'{"case_id": "' + b"x" * rng.choice([100, 2_000_000]) + b'"}'
    else:
        data = {k: (str(v) if not isinstance(v, str) else v) for k, v in data.items()}
    return json.dumps(data).encode()


def mutated(rng: random.Random, record: KafkaRecord) -> KafkaRecord:
    headers: list[tuple[str, bytes | None]] = list(record.headers)
    key: bytes | None = record.key
    value: bytes | None = record.value
    for _ in range(rng.randrange(1, 4)):
        choice = rng.randrange(8)
        if choice == 0 and headers:
            headers.pop(rng.randrange(len(headers)))
        elif choice == 1 and headers:
            i = rng.randrange(len(headers))
            headers[i] = (headers[i][0], rng.choice(HEADER_VALUES))
        elif choice == 2:
            headers.append((rng.choice(NAMES), rng.choice(HEADER_VALUES)))
        elif choice == 3:
            headers += [(f"h{i}", b"v") for i in range(rng.choice([10, 70]))]
        elif choice == 4:
            key = rng.choice([None, b"", b"other-case", b"\xff\xfe", b"k" * 5000])
        else:
            value = mutated_value(rng, record.value)
    if key is None and value is None:
        value = b""  # a record needs one of them (aiokafka refuses neither)
    return KafkaRecord(key, value, headers)  # type: ignore[arg-type]


def records(rng: random.Random) -> list[tuple[str, KafkaRecord]]:
    made: list[tuple[str, KafkaRecord]] = []
    for _ in range(RECORDS):
        sender, record = valid(rng)
        roll = rng.random()
        if roll < 0.2:
            made.append((sender, record))
        elif roll < 0.23 and made:
            made.append(made[rng.randrange(len(made))])  # the same record again: a resend
        elif roll < 0.245 and made:
            sender, earlier = made[rng.randrange(len(made))]  # another record under its id: a duplicate id
            made.append((sender, KafkaRecord(earlier.key, earlier.value, [*earlier.headers, ("ce_ext", b"other")])))
        elif roll < 0.26:
            made.append((rng.choice(["water", "housing"]), record))  # a contract the sender may not publish
        else:
            made.append((sender, mutated(rng, record)))
    return made


@pytest_asyncio.fixture(scope="module")
async def topics(stack: Settings) -> AsyncIterator[Topics]:
    async with namespaced_exchange(stack, "fuzz") as namespace:
        yield namespace


async def test_ten_thousand_strange_records_each_end_routed_or_refused_once_and_the_stream_goes_on(
    stack: Settings, exchange: AppProcesses, topics: Topics
) -> None:
    run = uuid.uuid4().hex[:8]
    router = exchange.start(f"router-fuzz-{run}", "gateway", "run", "--no-serve", "--instance", f"fuzz-{run}",
                            env={"CONCORD_TOPIC_NAMESPACE": topics.namespace,
                                 "CONCORD_ROUTER_GROUP": f"gateway.fuzz-{run}"})
    sent: dict[str, tuple[str, int, int]] = {}  # position -> (sender, partition, offset)
    try:
        async with Tail(stack.kafka(ADMIN), topics.audit) as audit:
            producers: dict[str, AIOKafkaProducer] = {}
            pending: list[tuple[str, asyncio.Future[RecordMetadata]]] = []
            try:
                for sender, record in records(random.Random(SEED)):
                    if sender not in producers:
                        producers[sender] = AIOKafkaProducer(**stack.kafka(sender).aiokafka(), acks="all",
                                                             linger_ms=5, max_request_size=8 * 1024 * 1024)
                        await producers[sender].start()
                    pending.append((sender, await producers[sender].send(
                        topics.ingress(sender), record.value, key=record.key, headers=record.headers)))
                for sender, future in pending:
                    metadata = await future
                    sent[f"{metadata.topic}/{metadata.partition}/{metadata.offset}"] = (sender, metadata.partition,
                                                                                       metadata.offset)
            finally:
                for producer in producers.values():
                    await producer.stop()
            assert len(sent) == RECORDS

            def position(r: object) -> str:
                ingress = json.loads(r.value)["ingress"]  # type: ignore[attr-defined]
                return f"{ingress['topic']}/{ingress['partition']}/{ingress['offset']}"

            entries = await audit.wait_for(lambda r: position(r) in sent, count=RECORDS, timeout=240)
            assert router.alive()
            outcomes = collections.Counter(position(r) for r in entries)
            assert set(outcomes) == set(sent) and max(outcomes.values()) == 1  # each once, none lost
            refused = {position(r): json.loads(r.value) for r in entries if json.loads(r.value)["action"] == "rejected"}
            resent = [r for r in entries if json.loads(r.value)["action"] == "resent"]
            routed = len(entries) - len(refused) - len(resent)
            assert resent  # copies of events routed: audited as resends, never dead-lettered (below)
            assert all(e["reason"] and e["detail"] for e in refused.values())
            reasons = collections.Counter(e["reason"] for e in refused.values())
            assert {"malformed_envelope", "malformed_payload", "schema_violation", "producer_not_authorised",
                    "duplicate_id", "payload_too_large"} <= set(reasons), reasons
            assert routed >= RECORDS // 10, reasons

        dead: list[str] = []
        for department in {sender for sender, _, _ in sent.values()}:
            async with Tail(stack.kafka(ADMIN), topics.deadletter(department), from_start=True) as letters:
                found = await letters.wait_for(
                    lambda r: header(r, "concord_ingress") in refused,
                    count=sum(1 for p, (s, _, _) in sent.items() if s == department and p in refused), timeout=60)
                dead += [header(r, "concord_ingress") or "" for r in found]
        assert sorted(dead) == sorted(refused)  # every refusal has its dead letter, and only one

        good = encode(opinion_issued(f"G-FZ-GOOD-{run}"), source="/concord/planning")
        async with Tail(stack.kafka(ADMIN), topics.deliver("bureau")) as bureau:
            producer = AIOKafkaProducer(**stack.kafka("planning").aiokafka(), enable_idempotence=True)
            await producer.start()
            try:
                await producer.send_and_wait(topics.ingress("planning"), good.value, key=good.key,
                                             headers=good.headers)
            finally:
                await producer.stop()
            [delivered] = await bureau.wait_for(lambda r: r.key == good.key, timeout=60)
            assert header(delivered, "concord_sender") == "planning"
        assert router.alive()
    finally:
        router.stop()
