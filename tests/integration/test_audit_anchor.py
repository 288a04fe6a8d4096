"""Audit anchoring on the real Kafka and PostgreSQL: the keeper signs the head it appended and publishes it to
the anchor topic, and against those anchors verification finds what the rows alone cannot show: the tail of the
table cut off (as the gateway's role, or the table emptied as the database superuser), the whole chain rewritten
with every hash recomputed the new way, and forged anchors. An untouched chain verifies.

The chain tampered with is a table of the test's own, appended by a real keeper from an audit topic of the test's
own namespace (so its anchors are on that namespace's anchor topic); each tampering is rolled back. The exchange's
own chain is only checked, untouched, against its anchors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from base.settings import Settings
from contracts.departments import GATEWAY
from gateway.audit import Anchor, Anchored, AnchorLog, AuditKeeper, Verification, check, verify
from gateway.audit.anchor import key_id, signed_record, signing_key, verifying_key
from gateway.audit.chain import TABLE, canonical, link
from gateway.audit.verification import chain_rows
from tests.integration.test_audit import entries, send_all
from tests.tools import concord, eventually, namespaced_exchange

BATCH = 8  # entries per run of the keeper: each run ends with an anchor of its head
T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


@dataclass
class Chain:
    settings: Settings  # of the test's namespace
    table: str
    anchors: AnchorLog
    gateway: asyncpg.Connection  # as the gateway's role, which owns the chain's tables
    admin: asyncpg.Connection  # as the database superuser


def anchor_log(settings: Settings) -> AnchorLog:
    return AnchorLog(settings.kafka(GATEWAY), settings.topics.audit_anchor,
                     verifying_key(settings.secrets.anchor_public_file))


async def rows_in(connection: asyncpg.Connection, table: str) -> int:
    return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))


async def keep(settings: Settings, connection: asyncpg.Connection, table: str, rows: int) -> None:
    """A keeper appends until the table has ``rows`` rows, then stops (and anchors its head)."""
    stop = asyncio.Event()
    running = asyncio.create_task(AuditKeeper(settings, table=table).run(stop))
    try:
        await eventually(lambda: _has(connection, table, rows))
    finally:
        stop.set()
        await running


async def _has(connection: asyncpg.Connection, table: str, rows: int) -> bool:
    return await rows_in(connection, table) >= rows


async def produce(settings: Settings, run: str, start: int) -> None:
    producer = AIOKafkaProducer(**settings.kafka(GATEWAY).aiokafka(), enable_idempotence=True)
    await producer.start()
    try:
        await send_all(producer, settings.topics.audit, entries(run, f"G-ANCHOR-{run}", start, BATCH))
    finally:
        await producer.stop()


@pytest_asyncio.fixture(scope="module")
async def chain(stack: Settings) -> AsyncIterator[Chain]:
    """A chain of 2 × BATCH entries, appended by a keeper in two runs, so anchored at BATCH and 2 × BATCH."""
    run = uuid.uuid4().hex[:8]
    async with namespaced_exchange(stack, "anchor") as topics:
        settings = stack.model_copy(update={"topic_namespace": topics.namespace})
        table = f"gateway.audit_anchor_it_{run}"
        gateway = await asyncpg.connect(stack.dsn(GATEWAY))
        admin = await asyncpg.connect(stack.admin_dsn)
        await gateway.execute(f"CREATE TABLE {table} (LIKE {TABLE} INCLUDING ALL)")
        try:
            for start in (0, BATCH):
                await produce(settings, run, start)
                await keep(settings, gateway, table, start + BATCH)
            yield Chain(settings, table, anchor_log(settings), gateway, admin)
        finally:
            await gateway.execute(f"DROP TABLE IF EXISTS {table}")
            await gateway.execute("DELETE FROM gateway.audit_position WHERE topic = $1", topics.audit)
            await gateway.close()
            await admin.close()


@asynccontextmanager
async def undone(connection: asyncpg.Connection) -> AsyncIterator[None]:
    """What is done inside is rolled back afterwards (verification inside sees it)."""
    transaction = connection.transaction()
    await transaction.start()
    try:
        yield
    finally:
        await transaction.rollback()


def kinds(result: Verification) -> list[tuple[str, int]]:
    return [(f.kind, f.seq) for f in result.findings]


async def test_an_untouched_chain_verifies_against_the_anchors_its_keeper_published(chain: Chain) -> None:
    result = await check(chain.gateway, chain.anchors, chain.table)
    assert result.findings == []
    assert result.count == 2 * BATCH and result.latest is not None
    assert (result.latest.seq, result.latest.count, result.latest.hash) == (2 * BATCH, 2 * BATCH, result.head)
    assert result.latest.key == chain.anchors.key_id
    anchored = {r.anchor.seq for r in await chain.anchors.read(chain.table) if isinstance(r, Anchored)}
    assert {BATCH, 2 * BATCH} <= anchored


async def test_the_tail_deleted_by_the_gateway_s_role_is_truncated(chain: Chain) -> None:
    async with undone(chain.gateway):
        await chain.gateway.execute(f"DELETE FROM {chain.table} WHERE seq > $1", 2 * BATCH - 3)
        assert await verify(chain.gateway, chain.table) == []  # the rows alone cannot tell
        result = await check(chain.gateway, chain.anchors, chain.table)
    assert kinds(result) == [("truncated", 2 * BATCH - 2)]
    assert f"ends at seq {2 * BATCH - 3}" in result.findings[0].detail


async def test_the_table_emptied_by_the_database_superuser_is_truncated(chain: Chain) -> None:
    async with undone(chain.admin):
        await chain.admin.execute(f"TRUNCATE {chain.table}")
        assert await verify(chain.admin, chain.table) == []
        result = await check(chain.admin, chain.anchors, chain.table)
    assert kinds(result) == [("truncated", 1)]


async def test_a_chain_rewritten_with_every_hash_recomputed_is_rewritten_at_its_first_anchor(chain: Chain) -> None:
    async with undone(chain.gateway):
        prev_hash: str | None = None
        for row in await chain_rows(chain.gateway, chain.table):  # every row, each hash taken the new way
            content = {**row.entry, "sender": "water"} if row.seq == 3 else row.entry
            new = link(row.seq, prev_hash or row.prev_hash, content, row.origin)
            await chain.gateway.execute(
                f"UPDATE {chain.table} SET entry = $2::jsonb, sender = $3, prev_hash = $4, hash = $5 WHERE seq = $1",
                row.seq, canonical(content), new.indexed.sender, new.prev_hash, new.hash)
            prev_hash = new.hash
        assert await verify(chain.gateway, chain.table) == []  # consistent: the rows alone cannot tell
        result = await check(chain.gateway, chain.anchors, chain.table)
    assert kinds(result) == [("rewritten", BATCH)]
    assert f"rows after seq 0 up to seq {BATCH} were rewritten" in result.findings[0].detail


async def test_forged_anchors_are_reported_and_believed_for_nothing(chain: Chain) -> None:
    """Anchors under the key of a copy of the chain (a chain of its own): one signed with another key that claims
    rows the chain does not have, and a genuine anchor of the original chain put under the copy's key."""
    copy = f"{chain.table}_copy"
    await chain.gateway.execute(f"CREATE TABLE {copy} (LIKE {chain.table} INCLUDING ALL)")
    namespace = {"CONCORD_TOPIC_NAMESPACE": chain.settings.topic_namespace}
    try:
        await chain.gateway.execute(f"INSERT INTO {copy} SELECT * FROM {chain.table}")
        assert (await check(chain.gateway, chain.anchors, copy)).findings == []  # no anchor of it yet
        other = Ed25519PrivateKey.generate()
        claim = Anchor(chain=copy, seq=3 * BATCH, hash="f" * 64, count=3 * BATCH, at=T0,
                       key=key_id(other.public_key()))
        [original] = [r.anchor for r in await chain.anchors.read(chain.table)
                      if isinstance(r, Anchored) and r.anchor.seq == 2 * BATCH]
        deployment_key = signing_key(chain.settings.secrets.anchor_key_file)  # Ed25519 signs deterministically
        producer = AIOKafkaProducer(**chain.settings.kafka(GATEWAY).aiokafka(), acks="all")
        await producer.start()
        try:
            for value in (signed_record(claim, other), signed_record(original, deployment_key)):
                await producer.send_and_wait(chain.settings.topics.audit_anchor, value, key=copy.encode())
        finally:
            await producer.stop()
        result = await check(chain.gateway, chain.anchors, copy)
        assert kinds(result) == [("forged", 2 * BATCH), ("forged", 3 * BATCH)]
        assert f"an anchor of chain {chain.table}" in result.findings[0].detail
        assert "signed by key" in result.findings[1].detail
        assert result.latest is None  # neither is believed: no truncation is reported
        code, out = await concord("audit", "verify", "--table", copy, env=namespace)
        assert code == 1 and f"forged at seq {3 * BATCH}" in out, out
    finally:
        await chain.gateway.execute(f"DROP TABLE IF EXISTS {copy}")
    code, out = await concord("audit", "verify", "--table", chain.table, env=namespace)
    assert code == 0 and "audit chain intact" in out and f"the latest at seq {2 * BATCH}" in out, out


async def test_the_exchange_s_own_chain_verifies_against_its_anchors(stack: Settings) -> None:
    """Entries appended to the exchange's chain by a keeper of the test's own (the session's gateway may run its
    keeper too, and append some of them first: then its anchor, due within seconds, covers them)."""
    run = uuid.uuid4().hex[:8]
    await produce(stack, run, 0)
    anchors = anchor_log(stack)
    gateway = await asyncpg.connect(stack.dsn(GATEWAY))
    try:
        ids = [e["event_id"] for e in entries(run, f"G-ANCHOR-{run}", 0, BATCH)]

        async def appended() -> bool:
            return bool(await gateway.fetchval(f"SELECT count(*) = $2 FROM {TABLE} WHERE event_id = ANY($1)",
                                               ids, BATCH))

        stop = asyncio.Event()
        running = asyncio.create_task(AuditKeeper(stack).run(stop))
        try:
            await eventually(appended)
        finally:
            stop.set()
            await running
        mine = await gateway.fetchval(f"SELECT max(seq) FROM {TABLE} WHERE event_id = ANY($1)", ids)

        async def anchored() -> bool:
            return any(isinstance(r, Anchored) and r.anchor.seq >= mine for r in await anchors.read(TABLE))

        await eventually(anchored)
        result = await check(gateway, anchors, TABLE)
    finally:
        await gateway.close()
    assert result.findings == []
    assert result.latest is not None and result.latest.seq >= mine
