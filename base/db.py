"""Connection pools of the components: no session state, so nothing to reset between borrowers.

asyncpg resets a connection on its way back to a pool with ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN
*; RESET ALL``: a round trip and four transactions on the server for each borrow. The components hold no session
state on a pooled connection (advisory locks are transaction-scoped, LISTEN has a connection of its own, nothing
is SET outside a transaction, no cursor outlives one), so their pools skip it; asyncpg still rolls back a
transaction left open and drops listeners."""

from __future__ import annotations

import asyncpg


async def _keep(connection: asyncpg.Connection) -> None:
    """Nothing to undo: see the module's note."""


async def component_pool(dsn: str, *, min_size: int, max_size: int) -> asyncpg.Pool:
    """A pool for a component's role. Not for tools that take session-level locks (migrations, provisioning)."""
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, reset=_keep)
