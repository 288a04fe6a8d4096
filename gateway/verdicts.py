"""The router's verdict on an event, as the audit log keeps it: routed (and to whom), or refused (why, and where
the original is kept). HTTP ingest waits for it, so that its answer is final; the audit keeper announces each
batch it appends (``AUDIT_CHANNEL``), and whoever waits looks again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import asyncpg

from gateway.audit.chain import AUDIT_CHANNEL, TABLE
from gateway.audit.entry import AuditAction
from gateway.rejections import Reason

LOOK_AGAIN_SECONDS = 0.5  # a waiter looks again at least this often, announced or not


class Outcome(StrEnum):
    ROUTED = "routed"
    REFUSED = "refused"
    PENDING = "pending"  # not decided yet (the router is behind, or down): ask again at the status URL
    RESENT = "resent"  # a copy of an event already sent with the same content: the first copy's verdict is its


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    event_id: str | None
    partition: int
    offset: int
    reason: Reason | None = None  # of a refusal
    detail: str | None = None
    delivered_to: tuple[str, ...] = ()

    @classmethod
    def of(cls, entry: dict[str, Any]) -> Verdict:
        ingress = entry.get("ingress") or {}
        routed = entry.get("action") == AuditAction.ROUTED.value
        return cls(Outcome.ROUTED if routed else Outcome.REFUSED, entry.get("event_id"), int(ingress["partition"]),
                   int(ingress["offset"]), None if routed else Reason(entry["reason"]), entry.get("detail"),
                   tuple(sorted(entry.get("delivered") or {})))


DECIDED = [AuditAction.ROUTED.value, AuditAction.REJECTED.value]


async def verdict_at(connection: asyncpg.Connection, topic: str, partition: int, offset: int) -> Verdict | None:
    """The verdict on the record at this ingress position, once the router gave it; a resend has its first
    copy's."""
    row = await connection.fetchrow(
        f"SELECT entry::text AS entry FROM {TABLE} WHERE action = ANY($1)"
        " AND entry -> 'ingress' ->> 'topic' = $2 AND (entry -> 'ingress' ->> 'partition')::int = $3"
        " AND (entry -> 'ingress' ->> 'offset')::bigint = $4", [*DECIDED, AuditAction.RESENT.value], topic,
        partition, offset)
    if row is None:
        return None
    entry = json.loads(row["entry"])
    if entry["action"] == AuditAction.RESENT.value:
        first = entry["first"]
        return await verdict_at(connection, first["topic"], int(first["partition"]), int(first["offset"]))
    return Verdict.of(entry)


async def decided_through(connection: asyncpg.Connection, partitions: Iterable[tuple[str, int]]
                          ) -> dict[tuple[str, int], int]:
    """For each ingress partition the audit log has decided records of (routed or refused), the offset after the last
    one. The router's transaction that wrote a record's entry committed the group's offset past it, so the group's
    committed offset of that partition can be no less: a floor that holds while ingress topics are kept as long as
    the audit log (``concord stack reset`` wipes both). One index lookup per partition (``audit_log_ingress``)."""
    decided = ", ".join(f"'{action}'" for action in DECIDED)  # literals, as in the partial index's predicate
    found: dict[tuple[str, int], int] = {}
    for topic, partition in partitions:
        last = await connection.fetchval(
            f"SELECT max((entry -> 'ingress' ->> 'offset')::bigint) FROM {TABLE} WHERE action = ANY(ARRAY[{decided}])"
            " AND entry -> 'ingress' ->> 'topic' = $1 AND (entry -> 'ingress' ->> 'partition')::int = $2",
            topic, partition)
        if last is not None:
            found[(topic, partition)] = int(last) + 1
    return found


async def verdicts_of(connection: asyncpg.Connection, sender: str, event_id: str) -> list[Verdict]:
    """The verdicts on every copy of an event its sender sent with this id, in the order they came (a resend is
    no verdict: the copy it repeats has one)."""
    rows = await connection.fetch(
        f"SELECT entry::text AS entry FROM {TABLE} WHERE action = ANY($1) AND sender = $2 AND event_id = $3"
        " ORDER BY seq", DECIDED, sender, event_id)
    return [Verdict.of(json.loads(r["entry"])) for r in rows]


class Verdicts:
    """Waits for verdicts: listens to the keeper's announcements on a connection of its own."""

    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self.pool = pool
        self.dsn = dsn
        self._listener: asyncpg.Connection | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        self._listener = await asyncpg.connect(self.dsn)
        await self._listener.add_listener(AUDIT_CHANNEL, self._announced)

    async def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()

    def _announced(self, *_: object) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()  # every waiter of this round looks again

    async def wait(self, topic: str, partition: int, offset: int, seconds: float) -> Verdict | None:
        """The verdict on the record at this position, waiting up to ``seconds`` for the router and the keeper."""
        deadline = time.monotonic() + seconds
        while True:
            changed = self._changed  # taken before looking: an announcement while we look is not missed
            async with self.pool.acquire() as connection:
                found = await verdict_at(connection, topic, partition, offset)
            left = deadline - time.monotonic()
            if found is not None or left <= 0:
                return found
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(left, LOOK_AGAIN_SECONDS))
