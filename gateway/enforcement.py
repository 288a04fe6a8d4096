"""What the router enforces at this moment: the registered contract versions and the agreements in force,
reloaded whenever either changes; and which event ids each sender has already had routed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

from gateway.agreements import AgreementPolicy, load_policy
from gateway.registry import Registry, load_registry


@dataclass(frozen=True)
class Seen:
    sender: str
    event_id: str
    position: str  # topic/partition/offset where it entered


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
        self.version = -1

    @classmethod
    async def connect(cls, pool: asyncpg.Pool, dsn: str) -> Enforcement:
        enforcement = cls(pool, dsn)
        await enforcement.refresh()
        return enforcement

    async def close(self) -> None:
        await self.policy.close()
        await self.seen.close()

    async def refresh(self) -> bool:
        """Reload when the registry or an agreement changed (one cheap query per batch): a revocation
        takes effect from the next batch routed. Returns whether anything was reloaded."""
        version = await self.policy.run(lambda c: c.fetchval("SELECT version FROM gateway.policy_version"))
        if version == self.version:
            return False
        self.registry = await load_registry(self.pool)
        self.sharing = await load_policy(self.pool)
        self.version = version
        return True

    async def duplicates(self, candidates: Sequence[Seen]) -> dict[str, str]:
        """The positions of candidates whose id the sender already used from another position, mapped to
        where the first one entered. The same position again is the router's own retry, not a duplicate."""
        if not candidates:
            return {}
        # Record the new ids; the ones that conflict (with a row committed earlier, or by another router
        # instance at the same moment: the insert waits for it) are then looked up. A crash of PostgreSQL may
        # lose the last few ids recorded, which only weakens duplicate detection for those: these statements
        # do not wait for the disk (synchronous_commit off on this pool).
        keys = {(c.sender, c.event_id) for c in candidates}

        async def look_up(connection: asyncpg.Connection) -> dict[tuple[str, str], str]:
            inserted = await connection.fetch(
                "INSERT INTO gateway.seen_events (sender, event_id, position)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING"
                " RETURNING sender, event_id, position",
                [c.sender for c in candidates], [c.event_id for c in candidates], [c.position for c in candidates],
            )
            found = {(r["sender"], r["event_id"]): r["position"] for r in inserted}
            known = [key for key in keys if key not in found]
            if known:
                rows = await connection.fetch(
                    "SELECT s.sender, s.event_id, s.position FROM gateway.seen_events s"
                    " JOIN unnest($1::text[], $2::text[]) AS k(sender, event_id) USING (sender, event_id)",
                    [k[0] for k in known], [k[1] for k in known],
                )
                found.update({(r["sender"], r["event_id"]): r["position"] for r in rows})
            return found

        first = await self.seen.run(look_up)
        duplicates: dict[str, str] = {}
        for c in candidates:
            earliest = first.setdefault((c.sender, c.event_id), c.position)  # within the batch: the first wins
            if earliest != c.position:
                duplicates[c.position] = earliest
        return duplicates

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

    async def forget_seen_before(self, days: int = 30) -> None:
        """Duplicates are detected for this many days."""
        await self.pool.execute(
            "DELETE FROM gateway.seen_events WHERE seen_at < now() - make_interval(days => $1)", days
        )
