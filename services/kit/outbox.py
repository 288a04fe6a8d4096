"""The outbox: events are written in the handler's transaction, then relayed to the ingress topic."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker

from contracts.base import Event
from contracts.departments import ingress_topic
from contracts.envelope import KafkaRecord, encode

log = logging.getLogger("concord.outbox")


class Outbox:
    def __init__(self, department: str, pool: asyncpg.Pool, broker: KafkaBroker) -> None:
        self.department = department
        self.schema = department
        self.pool = pool
        self.broker = broker
        self.source = f"/concord/{department}"
        self._wake = asyncio.Event()

    async def add(self, connection: asyncpg.Connection, event: Event, *, id: str | None = None,
                  traceparent: str | None = None) -> str:
        """Queue an event in the caller's transaction. Returns its event id."""
        record = encode(event, source=self.source, id=id, traceparent=traceparent)
        return await self.add_record(connection, record, type(event).CONTRACT.id)

    async def add_record(self, connection: asyncpg.Connection, record: KafkaRecord, contract: str) -> str:
        headers = {name: value.decode() for name, value in record.headers}
        await connection.execute(
            f"INSERT INTO {self.schema}.outbox (event_id, contract, topic, key, value, headers)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
            headers["ce_id"], contract, ingress_topic(self.department), record.key, record.value,
            json.dumps(headers),
        )
        return headers["ce_id"]

    def wake(self) -> None:
        self._wake.set()

    async def relay_once(self, limit: int = 500) -> int:
        """Publish the oldest unsent events in order, then mark them sent. At least once: a crash between
        the two sends them again, and consumers drop the copy by its event id."""
        async with self.pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                f"SELECT id, topic, key, value, headers FROM {self.schema}.outbox"
                " WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED", limit,
            )
            if not rows:
                return 0
            sends: list[Any] = []
            for row in rows:
                sends.append(await self.broker.publish(
                    row["value"], row["topic"], key=row["key"], headers=json.loads(row["headers"]),
                    no_confirm=True,
                ))
            await asyncio.gather(*sends)
            await connection.execute(
                f"UPDATE {self.schema}.outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                [row["id"] for row in rows],
            )
            return len(rows)

    async def run(self, poll_seconds: float = 0.5) -> None:
        while True:
            self._wake.clear()
            try:
                while await self.relay_once():
                    pass
            except Exception:
                log.exception("%s outbox relay failed; retrying", self.department)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=poll_seconds)
