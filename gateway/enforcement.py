"""What the router enforces at this moment: the registered contract versions and the agreements in force, kept up
to date whenever either changes; and which event ids each sender has already had routed, with a digest of what each
said, so that a copy of an event (its outbox sending it again) is told from another event under a used id."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import asyncpg
from aiokafka import TopicPartition

from contracts.envelope import CONTENT_TYPE, SENT_AT, RawHeaders
from gateway.agreements import AgreementPolicy, load_changes, load_policy
from gateway.registry import Registry, load_registry
from gateway.verdicts import decided_through


class Seen(NamedTuple):  # one for every record routed
    sender: str
    event_id: str
    position: str  # topic/partition/offset where it entered
    digest: bytes  # of what it says (content_digest)


@dataclass(frozen=True)
class Copy:
    """A record whose id its sender already used: where the first one entered, and whether it says the same (a
    resend) or something else (a duplicate id)."""

    first: str
    same_content: bool


def content_digest(key: bytes | None, value: bytes, headers: RawHeaders) -> bytes:
    """SHA-256 of what a record says: its key, its value and its content-bearing headers (in any order). Two
    copies of one event have the same digest, whatever trace or send time each carries. Each part is hashed as
    0x00 when absent, else 0x01, its length (8 bytes, big-endian) and its bytes; the parts are gathered and hashed
    at once (the router digests every record it takes)."""
    parts: list[bytes] = []
    for data in (key, value, *_content_headers(headers)):
        if data is None:
            parts.append(b"\x00")
        else:
            parts += (b"\x01", len(data).to_bytes(8, "big"), data)
    return hashlib.sha256(b"".join(parts)).digest()


def _content_headers(headers: RawHeaders) -> list[bytes | None]:
    """The headers that say what an event is, name then value, in the order of their names (and values: null
    first): its CloudEvents attributes and content type; not the trace context nor when its outbox took it
    (``ce_sentat``), which say how a copy travelled."""
    carried = [(n, v) for n, v in headers if (n.startswith("ce_") and n != SENT_AT) or n == CONTENT_TYPE]
    try:
        carried.sort()  # the same order as below where no name comes twice with a null value
    except TypeError:
        carried.sort(key=lambda header: (header[0], header[1] is not None, header[1] or b""))
    out: list[bytes | None] = []
    for name, data in carried:
        out += (name.encode("utf-8", "surrogatepass"), data)
    return out


def copies_of(candidates: Sequence[Seen], first: Mapping[tuple[str, str], tuple[str, bytes | None]]
              ) -> dict[str, Copy]:
    """The candidates whose id their sender used before, by position: ``first`` has where each known id first
    entered and its digest; within the batch the first of several copies is the first. The same position again
    is the router's own retry, not a copy."""
    earliest = dict(first)
    copies: dict[str, Copy] = {}
    for c in candidates:
        position, digest = earliest.setdefault((c.sender, c.event_id), (c.position, c.digest))
        if position != c.position:
            copies[c.position] = Copy(position, digest == c.digest)
    return copies


T = TypeVar("T")


class Dedicated:
    """A connection of its own for the router's per-batch queries: no pool to pass through (a pooled
    connection costs a reset round trip each time it is given back). One query at a time; a broken connection
    is made anew on the next use (the failed batch is routed again)."""

    def __init__(self, dsn: str, **settings: str) -> None:
        self.dsn = dsn
        self.settings = settings
        self.connection: asyncpg.Connection | None = None
        self.lock = asyncio.Lock()

    async def run(self, use: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async with self.lock:
            if self.connection is None or self.connection.is_closed():
                self.connection = await asyncpg.connect(self.dsn, server_settings=self.settings)
            try:
                return await use(self.connection)
            except (asyncpg.InterfaceError, asyncpg.ConnectionDoesNotExistError, OSError):
                await self.close()
                raise

    async def close(self) -> None:
        if self.connection is not None:
            self.connection.terminate()
            self.connection = None


class Enforcement:
    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self.pool = pool
        self.policy = Dedicated(dsn)  # the policy's version, looked at before every batch
        self.seen = Dedicated(dsn, synchronous_commit="off")  # does not wait for the disk: see duplicates()
        self.registry = Registry()
        self.sharing = AgreementPolicy()
        self.version = -1  # the policy version loaded
        self._refreshing = asyncio.Lock()

    @classmethod
    async def connect(cls, pool: asyncpg.Pool, dsn: str) -> Enforcement:
        enforcement = cls(pool, dsn)
        await enforcement.refresh()
        return enforcement

    async def close(self) -> None:
        await self.policy.close()
        await self.seen.close()

    async def refresh(self) -> bool:
        """Catch up with the registry and the agreements (one cheap query per batch when nothing changed): a
        revocation takes effect from the next batch routed. What changed in the agreements is applied to the
        policy; a change to the registry (or an agreement deleted) loads everything again (``gateway.policy_version``).
        One refresh at a time: two applying rows read at different moments could leave the older one's. Returns
        whether anything changed."""
        async with self._refreshing:
            version, whole = await self.policy.run(
                lambda c: c.fetchrow("SELECT version, whole FROM gateway.policy_version"))
            if version == self.version:
                return False
            if whole > self.version:
                self.registry = await load_registry(self.pool, known=self.registry)
                self.sharing = await load_policy(self.pool)
            else:
                since = self.version
                self.sharing.apply(await self.policy.run(lambda c: load_changes(c, since)))
            self.version = version
            return True

    async def copies(self, candidates: Sequence[Seen]) -> dict[str, Copy]:
        """The candidates whose id the sender already used from another position, by position (``copies_of``):
        the ids not seen before are recorded, with where they entered and the digest of what they said."""
        if not candidates:
            return {}
        # Record the new ids; the ones that conflict (with a row committed earlier, or by another router
        # instance at the same moment: the insert waits for it) are then looked up. A crash of PostgreSQL may
        # lose the last few ids recorded, which only weakens duplicate detection for those: these statements
        # do not wait for the disk (synchronous_commit off on this pool).
        keys = {(c.sender, c.event_id) for c in candidates}

        async def look_up(connection: asyncpg.Connection) -> dict[tuple[str, str], tuple[str, bytes | None]]:
            inserted = await connection.fetch(
                "INSERT INTO gateway.seen_events (sender, event_id, position, digest)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) ON CONFLICT DO NOTHING"
                " RETURNING sender, event_id, position, digest",
                [c.sender for c in candidates], [c.event_id for c in candidates], [c.position for c in candidates],
                [c.digest for c in candidates],
            )
            found = {(r["sender"], r["event_id"]): (r["position"], r["digest"]) for r in inserted}
            known = [key for key in keys if key not in found]
            if known:
                rows = await connection.fetch(
                    "SELECT s.sender, s.event_id, s.position, s.digest FROM gateway.seen_events s"
                    " JOIN unnest($1::text[], $2::text[]) AS k(sender, event_id) USING (sender, event_id)",
                    [k[0] for k in known], [k[1] for k in known],
                )
                found.update({(r["sender"], r["event_id"]): (r["position"], r["digest"]) for r in rows})
            return found

        return copies_of(candidates, await self.seen.run(look_up))

    async def forget(self, refused: Sequence[Seen]) -> None:
        """Forget the ids of events refused for another reason (only where they were recorded from there)."""

        async def delete(connection: asyncpg.Connection) -> Any:
            return await connection.execute(
                "DELETE FROM gateway.seen_events s USING unnest($1::text[], $2::text[], $3::text[])"
                " AS r(sender, event_id, position)"
                " WHERE s.sender = r.sender AND s.event_id = r.event_id AND s.position = r.position",
                [r.sender for r in refused], [r.event_id for r in refused], [r.position for r in refused],
            )

        await self.seen.run(delete)

    async def decided_through(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The least offset routing may go on from in each partition, by the audit log (``decided_through``)."""
        async with self.pool.acquire() as connection:
            found = await decided_through(connection, [(tp.topic, tp.partition) for tp in partitions])
        return {TopicPartition(topic, partition): offset for (topic, partition), offset in found.items()}

    async def forget_seen_before(self, days: int = 30) -> None:
        """Duplicates are detected for this many days."""
        await self.pool.execute(
            "DELETE FROM gateway.seen_events WHERE seen_at < now() - make_interval(days => $1)", days
        )
