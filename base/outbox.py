"""The outbox: events are written in the same PostgreSQL transaction as the state change that caused them,
then relayed to Kafka in order. At least once: a crash between sending and marking sends them again, and
consumers drop the copy by its event id."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from base.clock import Clock
from contracts.base import Event
from contracts.envelope import SENT_AT, Headers, KafkaRecord, encode

log = logging.getLogger("concord.outbox")

# Send one record; returns a future that completes when the broker has it.
Send = Callable[[str, bytes, bytes | None, Headers], Awaitable[Awaitable[Any]]]
RELAY_LIMIT = 500  # records a relay pass takes at most
# When the transaction that queued an outbox row committed: known where PostgreSQL tracks commit times (the stack
# starts it with track_commit_timestamp on), else null (and the time stamped when it was queued stands).
COMMITTED = ("CASE WHEN current_setting('track_commit_timestamp') = 'on' THEN pg_xact_commit_timestamp(xmin) END")


def sent_at_commit(headers: list[list[str]], committed_ms: int | None) -> Headers:
    """A stored record's headers to send, its ``SENT_AT`` (where it has one) moved to its commit time when known."""
    return [(name, (str(committed_ms) if name == SENT_AT and committed_ms is not None else value).encode())
            for name, value in headers]


class Outbox:
    def __init__(self, schema: str, topic: str, source: str, pool: asyncpg.Pool, send: Send, clock: Clock) -> None:
        self.schema = schema
        self.clock = clock
        self.topic = topic  # where events go unless told otherwise
        self.source = source
        self.pool = pool
        self.send = send
        self._wake = asyncio.Event()
        self._take = (f"UPDATE {schema}.outbox o SET published_at = now() FROM ("
                      f" SELECT id, {COMMITTED} AS committed_at FROM {schema}.outbox WHERE published_at IS NULL"
                      " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) AS taken WHERE o.id = taken.id"
                      " RETURNING o.id, o.topic, o.key, o.value, o.headers,"
                      " floor(extract(epoch FROM taken.committed_at) * 1000)::bigint AS committed_ms")

    async def add(self, connection: asyncpg.Connection, event: Event, *, id: str | None = None,
                  traceparent: str | None = None, topic: str | None = None) -> str:
        """Queue an event in the caller's transaction, stamped with when (real time: the exchange's transit is
        measured from the stamp; the relay moves it to when that transaction committed). Returns its event id."""
        record = encode(event, source=self.source, id=id, time=self.clock.now(), traceparent=traceparent)
        sent_at = str(time.time_ns() // 1_000_000).encode()
        stamped = KafkaRecord(record.key, record.value, [*record.headers, (SENT_AT, sent_at)])
        return await self.add_record(connection, stamped, type(event).CONTRACT.id, topic or self.topic)

    async def add_record(self, connection: asyncpg.Connection, record: KafkaRecord, contract: str, topic: str,
                         event_id: str | None = None) -> str:
        headers = [[name, value.decode()] for name, value in record.headers]
        event_id = event_id or dict(record.headers)["ce_id"].decode()
        await connection.execute(
            f"INSERT INTO {self.schema}.outbox (event_id, contract, topic, key, value, headers)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
            event_id, contract, topic, record.key, record.value, json.dumps(headers),
        )
        return event_id

    def wake(self) -> None:
        self._wake.set()

    async def relay_once(self, limit: int = RELAY_LIMIT) -> int:
        """Send the oldest unsent records in order, marked sent in the same transaction: if a send fails, the
        transaction rolls back and they stay unsent. Taking and marking are one statement (rows another relay holds
        are skipped), so a pass is three round trips to PostgreSQL (begin, take, commit) besides the sends. A
        record's send time (``SENT_AT``, stamped when it was queued) becomes the commit time of the transaction that
        queued it (``committed_ms``): the exchange's transit starts when the sender's unit of work is done, not at
        the moment within it when the event was queued."""
        async with self.pool.acquire() as connection, connection.transaction():
            rows = sorted(await connection.fetch(self._take, limit), key=lambda row: row["id"])
            sent = [
                await self.send(row["topic"], row["value"], row["key"],
                                sent_at_commit(json.loads(row["headers"]), row["committed_ms"]))
                for row in rows
            ]
            await asyncio.gather(*sent)
            return len(rows)

    async def run(self, poll_seconds: float = 0.5) -> None:
        """Relay whenever woken (a transaction that added events has committed) and every ``poll_seconds`` (what
        another process added, or a relay that failed); passes follow one another while they come back full."""
        while True:
            self._wake.clear()
            try:
                while await self.relay_once() == RELAY_LIMIT:
                    pass
            except Exception:
                log.exception("%s outbox relay failed; retrying", self.schema)
            # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation that comes as the wake does,
            # and the relay would run on, holding its service's stop (tests/unit/test_outbox_stop.py)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll_seconds):
                    await self._wake.wait()
