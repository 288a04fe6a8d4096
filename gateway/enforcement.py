"""What the router enforces at this moment: the registered contract versions and the agreements in force,
reloaded whenever either changes; and which event ids each sender has already had routed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from gateway.agreements import AgreementPolicy, load_policy
from gateway.registry import Registry, load_registry


@dataclass(frozen=True)
class Seen:
    sender: str
    event_id: str
    position: str  # topic/partition/offset where it entered


class Enforcement:
    def __init__(self, pool: asyncpg.Pool, seen: asyncpg.Pool) -> None:
        self.pool = pool
        self.seen = seen  # a connection of its own that does not wait for the disk: see duplicates()
        self.registry = Registry()
        self.sharing = AgreementPolicy()
        self.version = -1

    @classmethod
    async def connect(cls, pool: asyncpg.Pool, dsn: str) -> Enforcement:
        seen = await asyncpg.create_pool(dsn, min_size=1, max_size=2,
                                         server_settings={"synchronous_commit": "off"})
        enforcement = cls(pool, seen)
        await enforcement.refresh()
        return enforcement

    async def close(self) -> None:
        await self.seen.close()

    async def refresh(self) -> bool:
        """Reload when the registry or an agreement changed (one cheap query per batch): a revocation
        takes effect from the next batch routed. Returns whether anything was reloaded."""
        version = await self.pool.fetchval("SELECT version FROM gateway.policy_version")
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
        async with self.seen.acquire() as connection:
            inserted = await connection.fetch(
                "INSERT INTO gateway.seen_events (sender, event_id, position)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING"
                " RETURNING sender, event_id, position",
                [c.sender for c in candidates], [c.event_id for c in candidates], [c.position for c in candidates],
            )
            first = {(r["sender"], r["event_id"]): r["position"] for r in inserted}
            known = [key for key in keys if key not in first]
            if known:
                rows = await connection.fetch(
                    "SELECT s.sender, s.event_id, s.position FROM gateway.seen_events s"
                    " JOIN unnest($1::text[], $2::text[]) AS k(sender, event_id) USING (sender, event_id)",
                    [k[0] for k in known], [k[1] for k in known],
                )
                first.update({(r["sender"], r["event_id"]): r["position"] for r in rows})
        duplicates: dict[str, str] = {}
        for c in candidates:
            earliest = first.setdefault((c.sender, c.event_id), c.position)  # within the batch: the first wins
            if earliest != c.position:
                duplicates[c.position] = earliest
        return duplicates

    async def forget(self, refused: Sequence[Seen]) -> None:
        """Forget the ids of events refused for another reason (only where they were recorded from there)."""
        async with self.seen.acquire() as connection:
            await connection.execute(
                "DELETE FROM gateway.seen_events s USING unnest($1::text[], $2::text[], $3::text[])"
                " AS r(sender, event_id, position)"
                " WHERE s.sender = r.sender AND s.event_id = r.event_id AND s.position = r.position",
                [r.sender for r in refused], [r.event_id for r in refused], [r.position for r in refused],
            )

    async def forget_seen_before(self, days: int = 30) -> None:
        """Duplicates are detected for this many days."""
        await self.pool.execute(
            "DELETE FROM gateway.seen_events WHERE seen_at < now() - make_interval(days => $1)", days
        )
