"""The audit keeper on the real Kafka and PostgreSQL: committed entries are appended once each, entries of an
aborted transaction never, the chain verifies, and verify finds each kind of tampering done to a copy of it.
Other writers may use the audit topic meanwhile, so the checks look at this module's own entries."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from base.settings import Settings
from contracts.departments import GATEWAY
from gateway.audit import (
    APPEND_LOCK,
    GENESIS,
    AuditKeeper,
    Finding,
    Origin,
    Scheme,
    canonical,
    head,
    query,
    record_hash,
    verify,
)
from tests.tools import eventually

T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


@dataclass
class Produced:
    run: str
    case_id: str
    entries: list[dict[str, Any]]  # committed, in the order produced
    aborted: list[dict[str, Any]]
    offsets: list[int]  # of the committed entries


def entries(run: str, case_id: str, start: int, count: int) -> list[dict[str, Any]]:
    """Entries of each shape the exchange writes, with ids unique to this run (and ingress topics of its own: the
    router takes the audit log's ingress positions as a floor for the real ones)."""
    made: list[dict[str, Any]] = []
    for n in range(start, start + count):
        at = (T0 + timedelta(minutes=n)).isoformat()
        event_id = f"audit-it-{run}-{n}"
        shapes: list[dict[str, Any]] = [
            {"action": "routed", "at": at, "event_id": event_id, "case_id": case_id, "sender": "bureau",
             "contract": "bureau.stage-completed", "version": 1,
             "delivered": {"housing": ["case_id", "stage"], "planning": ["case_id"]},
             "ingress": {"topic": f"audit-it-{run}.ingress.bureau", "partition": 0, "offset": n}},
            {"action": "rejected", "at": at, "event_id": event_id, "case_id": case_id, "sender": "planning",
             "contract": "bureau.opinion-issued", "version": None, "reason": "schema_violation",
             "detail": "缺少字段 decision",
             "ingress": {"topic": f"audit-it-{run}.ingress.planning", "partition": 1, "offset": n}},
            {"action": "contract_registered", "at": at, "event_id": event_id, "case_id": case_id,
             "sender": "bureau", "contract": f"bureau.audit-it-{run}", "version": 2, "limits": [1e16, 0.25, 10**20]},
        ]
        made.append(shapes[n % 3])
    return made


async def send_all(producer: AIOKafkaProducer, topic: str, batch: list[dict[str, Any]]) -> list[int]:
    offsets = []
    for entry in batch:
        metadata = await producer.send_and_wait(topic, json.dumps(entry, ensure_ascii=False).encode(),
                                                key=entry["case_id"].encode())
        offsets.append(metadata.offset)
    return offsets


async def keep_until(settings: Settings, connection: asyncpg.Connection, wanted: list[dict[str, Any]],
                     keepers: int = 1) -> None:
    """Run keepers in-process until every wanted entry is in the log."""
    stop = asyncio.Event()
    running = [asyncio.create_task(AuditKeeper(settings).run(stop)) for _ in range(keepers)]

    async def appended() -> bool:
        ids = [e["event_id"] for e in wanted]
        found = await connection.fetchval("SELECT count(DISTINCT event_id) FROM gateway.audit_log"
                                          " WHERE event_id = ANY($1)", ids)
        return bool(found == len(set(ids)))

    try:
        await eventually(appended)
    finally:
        stop.set()
        await asyncio.gather(*running)


async def copies(connection: asyncpg.Connection, event_ids: list[str]) -> dict[str, int]:
    rows = await connection.fetch("SELECT event_id, count(*) AS n FROM gateway.audit_log WHERE event_id = ANY($1)"
                                  " GROUP BY event_id", event_ids)
    return {r["event_id"]: r["n"] for r in rows}


@pytest_asyncio.fixture(scope="module")
async def connection(stack: Settings) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(stack.admin_dsn)
    yield connection
    await connection.close()


@pytest_asyncio.fixture(scope="module")
async def produced(stack: Settings, connection: asyncpg.Connection) -> Produced:
    """A committed transaction of entries, an aborted one, another committed one; then kept by a keeper."""
    run = uuid.uuid4().hex[:8]
    case_id = f"G-AUDIT-{run}"
    first, aborted, second = (entries(run, case_id, 0, 3), entries(run, case_id, 100, 3),
                              entries(run, case_id, 3, 3))
    producer = AIOKafkaProducer(**stack.kafka(GATEWAY).aiokafka(), transactional_id=f"gateway.audit-it-{run}",
                                enable_idempotence=True)
    await producer.start()
    try:
        async with producer.transaction():
            offsets = await send_all(producer, stack.topics.audit, first)
        await producer.begin_transaction()
        await send_all(producer, stack.topics.audit, aborted)
        await producer.abort_transaction()
        async with producer.transaction():
            offsets += await send_all(producer, stack.topics.audit, second)
    finally:
        await producer.stop()
    await keep_until(stack, connection, first + second)
    return Produced(run, case_id, first + second, aborted, offsets)


async def test_committed_entries_are_appended_once_in_order_and_the_chain_verifies(
    connection: asyncpg.Connection, produced: Produced
) -> None:
    ids = [e["event_id"] for e in produced.entries]
    assert await copies(connection, ids) == dict.fromkeys(ids, 1)
    assert await copies(connection, [e["event_id"] for e in produced.aborted]) == {}
    rows = await connection.fetch("SELECT seq, entry::text AS entry, kafka_offset, action, at, version"
                                  " FROM gateway.audit_log WHERE event_id = ANY($1) ORDER BY seq", ids)
    assert [json.loads(r["entry"]) for r in rows] == produced.entries  # in topic order, whole, numbers intact
    assert [r["kafka_offset"] for r in rows] == produced.offsets
    assert [(r["action"], r["at"], r["version"]) for r in rows] == [
        (e["action"], datetime.fromisoformat(e["at"]), e["version"]) for e in produced.entries]
    assert await verify(connection) == []


async def test_each_row_is_hashed_with_the_position_and_time_of_its_record(
    connection: asyncpg.Connection, produced: Produced
) -> None:
    rows = await connection.fetch(
        "SELECT seq, prev_hash, hash, entry::text AS entry, topic, kafka_partition, kafka_offset, kafka_timestamp,"
        " scheme FROM gateway.audit_log WHERE event_id = ANY($1) ORDER BY seq",
        [e["event_id"] for e in produced.entries])
    assert [r["kafka_offset"] for r in rows] == produced.offsets
    for r in rows:
        assert r["scheme"] == Scheme.RECORD and r["kafka_timestamp"] is not None
        place = Origin(r["topic"], r["kafka_partition"], r["kafka_offset"], r["kafka_timestamp"])
        assert r["hash"] == record_hash(r["prev_hash"], json.loads(r["entry"]), place)


async def test_head_is_the_count_and_the_last_hash(connection: asyncpg.Connection, produced: Produced) -> None:
    async with connection.transaction(isolation="repeatable_read"):
        count, last = await head(connection)
        newest = await connection.fetchrow("SELECT seq, hash FROM gateway.audit_log ORDER BY seq DESC LIMIT 1")
    assert count == newest["seq"] >= len(produced.entries)
    assert last == newest["hash"] != GENESIS


async def test_a_second_keeper_over_the_same_records_appends_none_of_them_again(
    stack: Settings, connection: asyncpg.Connection, produced: Produced
) -> None:
    keeper = AuditKeeper(stack)
    await keeper.start()
    try:
        [tp] = [tp for tp in keeper.consumer.assignment() if tp.partition == 0]
        keeper.consumer.seek(tp, produced.offsets[0])  # as if its stored position were from before them
        async with asyncio.timeout(30):
            while await keeper.consumer.position(tp) <= produced.offsets[-1]:
                await keeper.step()
    finally:
        await keeper.stop()
    ids = [e["event_id"] for e in produced.entries]
    assert await copies(connection, ids) == dict.fromkeys(ids, 1)
    assert await verify(connection) == []


async def test_two_keepers_running_at_once_append_each_entry_once(
    stack: Settings, connection: asyncpg.Connection, produced: Produced
) -> None:
    more = entries(produced.run, produced.case_id, 200, 30)
    producer = AIOKafkaProducer(**stack.kafka(GATEWAY).aiokafka(), enable_idempotence=True)
    await producer.start()
    try:
        await send_all(producer, stack.topics.audit, more)
    finally:
        await producer.stop()
    await keep_until(stack, connection, more, keepers=2)
    ids = [e["event_id"] for e in more]
    assert await copies(connection, ids) == dict.fromkeys(ids, 1)
    assert await verify(connection) == []


async def test_a_batch_whose_append_failed_is_appended_on_the_next_step(
    stack: Settings, connection: asyncpg.Connection, produced: Produced
) -> None:
    """The keeper's connection is cut while it waits to append a batch (the test holds the append lock, so the
    keeper is inside its transaction when its backend is terminated); the next steps append the batch once."""
    keeper = AuditKeeper(stack)
    await keeper.start()

    async def step_until_it_fails() -> Exception:
        while True:
            try:
                await keeper.step()
            except Exception as exc:
                return exc

    async def waiting_for_the_lock(pid: int) -> bool:
        return bool(await connection.fetchval(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid))

    try:
        lost = entries(produced.run, produced.case_id, 300, 3)
        producer = AIOKafkaProducer(**stack.kafka(GATEWAY).aiokafka(), enable_idempotence=True)
        await producer.start()
        try:
            await send_all(producer, stack.topics.audit, lost)
        finally:
            await producer.stop()
        assert keeper.connection is not None
        pid = keeper.connection.get_server_pid()
        await connection.execute("SELECT pg_advisory_lock($1)", APPEND_LOCK)
        try:
            stepping = asyncio.create_task(step_until_it_fails())
            await eventually(lambda: waiting_for_the_lock(pid))
            await connection.execute("SELECT pg_terminate_backend($1)", pid)
            failure = await asyncio.wait_for(stepping, 30)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", APPEND_LOCK)
        ids = [e["event_id"] for e in lost]
        async with asyncio.timeout(30):
            while len(await copies(connection, ids)) < len(ids):
                await keeper.step()
    finally:
        await keeper.stop()
    assert isinstance(failure, asyncpg.PostgresError | asyncpg.InterfaceError | ConnectionError), failure
    assert await copies(connection, ids) == dict.fromkeys(ids, 1)
    assert await verify(connection) == []


async def test_query_by_case_department_contract_and_time(connection: asyncpg.Connection, produced: Produced) -> None:
    mine, before = produced.entries, T0 + timedelta(minutes=100)  # later entries of this run are at 200 min on
    assert await query(connection, case_id=produced.case_id, until=before) == mine
    assert await query(connection, case_id=produced.case_id, department="housing",
                       until=before) == [e for e in mine if e["action"] == "routed"]
    assert await query(connection, case_id=produced.case_id, department="planning",
                       until=before) == [e for e in mine if e["action"] != "contract_registered"]
    assert await query(connection, contract=f"bureau.audit-it-{produced.run}", until=before) == [
        e for e in mine if e["action"] == "contract_registered"]
    assert await query(connection, case_id=produced.case_id, since=T0 + timedelta(minutes=1),
                       until=T0 + timedelta(minutes=3)) == mine[1:3]
    assert await query(connection, case_id=produced.case_id, until=before, limit=2) == mine[-2:]


@dataclass
class Scratch:
    """Copies of the audit log to tamper with; gateway.audit_log itself is never touched."""

    connection: asyncpg.Connection
    tables: list[str]

    async def copy(self) -> str:
        table = f"public.audit_scratch_{uuid.uuid4().hex[:12]}"
        await self.connection.execute(f"CREATE TABLE {table} AS SELECT * FROM gateway.audit_log")
        self.tables.append(table)
        return table

    async def findings(self, table: str) -> list[tuple[str, int]]:
        found: list[Finding] = await verify(self.connection, table=table)
        return [(f.kind, f.seq) for f in found]


@pytest_asyncio.fixture
async def scratch(connection: asyncpg.Connection) -> AsyncIterator[Scratch]:
    tables = Scratch(connection, [])
    try:
        yield tables
    finally:
        for table in tables.tables:
            await connection.execute(f"DROP TABLE IF EXISTS {table}")


async def test_verify_reports_each_kind_of_tampering_done_to_a_copy(
    connection: asyncpg.Connection, produced: Produced, scratch: Scratch
) -> None:
    seq = {r["event_id"]: r["seq"] for r in await connection.fetch(
        "SELECT event_id, seq FROM gateway.audit_log WHERE event_id = ANY($1)",
        [e["event_id"] for e in produced.entries])}
    first, second, third = (seq[e["event_id"]] for e in produced.entries[:3])  # rows follow them: all are middle

    table = await scratch.copy()
    assert await scratch.findings(table) == []

    table = await scratch.copy()
    await connection.execute(f"UPDATE {table} SET entry = jsonb_set(entry, '{{sender}}', '\"water\"') WHERE seq = $1",
                             second)
    assert await scratch.findings(table) == [("changed", second)]

    table = await scratch.copy()
    await connection.execute(f"UPDATE {table} SET hash = repeat('f', 64) WHERE seq = $1", second)
    assert await scratch.findings(table) == [("changed", second)]

    table = await scratch.copy()
    await connection.execute(f"UPDATE {table} SET case_id = 'G-SOMEONE-ELSE' WHERE seq = $1", first)
    assert await scratch.findings(table) == [("changed", first)]

    table = await scratch.copy()
    await connection.execute(f"DELETE FROM {table} WHERE seq = $1", second)
    assert await scratch.findings(table) == [("deleted", second)]

    table = await scratch.copy()
    await connection.execute(f"DELETE FROM {table} WHERE seq = 1")
    assert await scratch.findings(table) == [("deleted", 1)]

    table = await scratch.copy()
    forged = {**produced.entries[1], "event_id": f"audit-it-{produced.run}-forged", "reason": "none"}
    predecessor = await connection.fetchval(f"SELECT hash FROM {table} WHERE seq = $1", first)
    last = await connection.fetchval(f"SELECT max(seq) FROM {table}")
    model = await connection.fetchrow(f"SELECT topic, kafka_partition, kafka_offset, kafka_timestamp FROM {table}"
                                      " WHERE seq = $1", second)
    place = Origin(model["topic"], model["kafka_partition"], model["kafka_offset"] + 1_000_000,
                   model["kafka_timestamp"])
    await connection.execute(
        f"INSERT INTO {table} (seq, recorded_at, at, action, event_id, case_id, sender, contract, version, entry,"
        " topic, kafka_partition, kafka_offset, kafka_timestamp, scheme, prev_hash, hash)"
        " SELECT $1, recorded_at, at, action, $2, case_id, sender, contract, version, $3::jsonb, topic,"
        f" kafka_partition, $4, kafka_timestamp, scheme, $5, $6 FROM {table} WHERE seq = $7",
        last + 1, forged["event_id"], canonical(forged), place.offset, predecessor,
        record_hash(predecessor, forged, place), second,
    )
    assert await scratch.findings(table) == [("inserted", last + 1)]

    table = await scratch.copy()
    await connection.execute(f"UPDATE {table} SET kafka_offset = kafka_offset + 1 WHERE seq = $1", second)
    assert await scratch.findings(table) == [("changed", second)]  # the position is hashed too

    table = await scratch.copy()
    await connection.execute(f"UPDATE {table} SET seq = CASE seq WHEN $1::bigint THEN $2::bigint ELSE $1 END"
                             " WHERE seq IN ($1, $2)", first, third)
    assert await scratch.findings(table) == [("reordered", first), ("reordered", third)]


async def test_a_keeper_for_a_topic_that_does_not_exist_refuses_to_start(stack: Settings) -> None:
    keeper = AuditKeeper(stack, topic=f"audit.missing-{uuid.uuid4().hex[:8]}")
    with pytest.raises(RuntimeError, match="does not exist"):
        await keeper.start()
    await keeper.stop()
