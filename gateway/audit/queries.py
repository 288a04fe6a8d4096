"""Reading the audit log by case, department, contract and time."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from gateway.audit.chain import TABLE


async def query(
    connection: asyncpg.Connection,
    *,
    case_id: str | None = None,
    department: str | None = None,
    contract: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """The latest ``limit`` entries that match every filter given, newest last. ``department`` matches the
    sender, any consumer the entry delivered to, or a party to the agreement it is about; ``since``
    (inclusive) and ``until`` (exclusive) bound the entry's own ``at``."""
    conditions: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if case_id is not None:
        conditions.append(f"case_id = {arg(case_id)}")
    if department is not None:
        named = arg(department)
        conditions.append(f"(sender = {named} OR entry -> 'delivered' ? {named} OR entry -> 'parties' ? {named})")
    if contract is not None:
        conditions.append(f"contract = {arg(contract)}")
    if since is not None:
        conditions.append(f"at >= {arg(since)}")
    if until is not None:
        conditions.append(f"at < {arg(until)}")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = await connection.fetch(
        f"SELECT entry::text AS entry FROM (SELECT seq, entry FROM {TABLE} {where} ORDER BY seq DESC"
        f" LIMIT {arg(limit)}) latest ORDER BY seq",
        *args,
    )
    return [json.loads(r["entry"]) for r in rows]
