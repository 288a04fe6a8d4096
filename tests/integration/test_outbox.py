"""The outbox relay on the real PostgreSQL, over an outbox table of the test's own (the migration's, in a schema made
for it), sending to a recording stand-in for the broker: each record once, in the order it was added, marked sent
in the pass that sent it; a pass whose send fails leaves its records unsent for the next one; relays running at once
share the records out; a woken relay takes pass after pass while they come back full; and a record goes out stamped
with the commit of the transaction that queued it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

import base
from base.clock import SystemClock
from base.outbox import RELAY_LIMIT, Outbox
from base.settings import Settings
from contracts.envelope import SENT_AT, Headers
from tests.factories import opinion_issued
from tests.tools import eventually

MIGRATION = Path(base.__file__).parent / "migrations" / "001_outbox.sql"


class Broker:
    """Records what is sent, in order; sends fail while ``failing``."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.headers: list[dict[str, bytes]] = []
        self.failing = False

    async def send(self, topic: str, value: bytes, key: bytes | None, headers: Headers) -> Awaitable[Any]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.failing:
            future.set_exception(ConnectionError("the broker is gone"))
        else:
            self.sent.append(dict(headers)["ce_id"].decode())
            self.headers.append(dict(headers))
            future.set_result(None)
        return future


@pytest_asyncio.fixture
async def pool(stack: Settings) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    schema = f"outbox_test_{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(stack.admin_dsn, min_size=1, max_size=6)
    await pool.execute(MIGRATION.read_text().replace("{schema}", schema))
    try:
        yield pool, schema
    finally:
        await pool.execute(f"DROP SCHEMA {schema} CASCADE")
        await pool.close()


def outbox(pool: tuple[asyncpg.Pool, str], broker: Broker) -> Outbox:
    connections, schema = pool
    return Outbox(schema, "ingress.planning", "/concord/planning", connections, broker.send, SystemClock())


async def add(box: Outbox, count: int) -> list[str]:
    """Events added one transaction each, in order; their ids."""
    ids = []
    for i in range(count):
        async with box.pool.acquire() as connection, connection.transaction():
            ids.append(await box.add(connection, opinion_issued(f"G-OUT-{i % 7}", f"G-OUT/{uuid.uuid4().hex}")))
    return ids


async def unsent(box: Outbox) -> int:
    return int(await box.pool.fetchval(f"SELECT count(*) FROM {box.schema}.outbox WHERE published_at IS NULL"))


async def test_each_record_is_sent_once_in_the_order_it_was_added_and_marked_sent(
        pool: tuple[asyncpg.Pool, str]) -> None:
    broker = Broker()
    box = outbox(pool, broker)
    first = await add(box, 5)
    assert await box.relay_once() == 5
    later = await add(box, 3)
    assert await box.relay_once() == 3
    assert await box.relay_once() == 0
    assert broker.sent == first + later
    assert await unsent(box) == 0


async def test_a_pass_whose_send_fails_leaves_its_records_for_the_next(pool: tuple[asyncpg.Pool, str]) -> None:
    broker = Broker()
    box = outbox(pool, broker)
    ids = await add(box, 4)
    broker.failing = True
    with pytest.raises(ConnectionError):
        await box.relay_once()
    assert await unsent(box) == 4
    broker.failing = False
    assert await box.relay_once() == 4
    assert broker.sent == ids and await unsent(box) == 0


async def test_relays_at_once_send_each_record_once(pool: tuple[asyncpg.Pool, str]) -> None:
    broker = Broker()
    boxes = [outbox(pool, broker) for _ in range(3)]
    ids = await add(boxes[0], 60)

    async def drain(box: Outbox) -> None:
        while await box.relay_once(limit=4):
            pass

    await asyncio.gather(*(drain(box) for box in boxes))
    assert sorted(broker.sent) == sorted(ids) and len(broker.sent) == len(ids)
    assert await unsent(boxes[0]) == 0


async def test_a_woken_relay_takes_passes_until_one_comes_back_short(pool: tuple[asyncpg.Pool, str]) -> None:
    """More than a pass's worth, and a poll far beyond the test: only the wake can have sent them."""
    broker = Broker()
    box = outbox(pool, broker)
    ids = await add(box, RELAY_LIMIT + 3)
    relay = asyncio.create_task(box.run(poll_seconds=3600))
    try:
        await eventually(lambda: broker.sent == ids)  # the first pass ran as the relay started
        more = await add(box, 2)
        box.wake()
        await eventually(lambda: broker.sent == ids + more)
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
    assert await unsent(box) == 0


async def test_a_record_goes_out_stamped_with_its_transactions_commit_not_with_when_it_was_queued(
        pool: tuple[asyncpg.Pool, str]) -> None:
    """The exchange's transit starts when the sender's unit of work has committed: an event queued early in a long
    one (a desk's round of decisions, say) is not charged to the exchange for the rest of it."""
    broker = Broker()
    box = outbox(pool, broker)
    async with box.pool.acquire() as connection, connection.transaction():
        queued_ms = time.time_ns() // 1_000_000
        await box.add(connection, opinion_issued("G-OUT-C", f"G-OUT/{uuid.uuid4().hex}"))
        await connection.execute("SELECT pg_sleep(0.3)")  # the rest of the unit of work
        committing_ms = time.time_ns() // 1_000_000
    committed_ms = time.time_ns() // 1_000_000
    assert await box.relay_once() == 1
    sent_at = int(broker.headers[0][SENT_AT])
    assert queued_ms + 300 <= committing_ms <= sent_at <= committed_ms
