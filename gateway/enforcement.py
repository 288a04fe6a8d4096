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
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.registry = Registry()
        self.sharing = AgreementPolicy()
        self.version = -1

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
        senders = [c.sender for c in candidates]
        ids = [c.event_id for c in candidates]
        positions = [c.position for c in candidates]
        await self.pool.execute(
            "INSERT INTO gateway.seen_events (sender, event_id, position)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING",
            senders, ids, positions,
        )
        rows = await self.pool.fetch(
            "SELECT s.sender, s.event_id, s.position FROM gateway.seen_events s"
            " JOIN unnest($1::text[], $2::text[]) AS c(sender, event_id) USING (sender, event_id)",
            senders, ids,
        )
        first = {(r["sender"], r["event_id"]): r["position"] for r in rows}
        return {c.position: first[(c.sender, c.event_id)] for c in candidates
                if first[(c.sender, c.event_id)] != c.position}

    async def forget_seen_before(self, days: int = 30) -> None:
        """Duplicates are detected for this many days."""
        await self.pool.execute(
            "DELETE FROM gateway.seen_events WHERE seen_at < now() - make_interval(days => $1)", days
        )
