"""What a change of the agreements costs the router, with many of them approved at once (most are case-scoped: their
number grows with the cases open). On the stack's PostgreSQL (run the exchange once first, for its registered
contracts): N approved case-scoped agreements of its own are written, then timed, the median of each:

- ``full_reload_ms``: loading every approved agreement again, which the router did at each change until 2026-12-07;
- ``refresh_after_change_ms``: the router's refresh after one agreement changed, as it is now (the version read, the
  changed rows read, applied to its policy);
- ``refresh_unchanged_ms``: its refresh when nothing changed (once for every batch it routes);
- ``grant_us``: what a record's delivery asks of the policy (its recipients, then a grant for each), per record;
- ``concurrent_changes_per_s`` and ``change_transaction_ms``: agreements changed by ``--workers`` connections at
  once, each change in a transaction that goes on after it as a step of the lifecycle does (the row read and locked,
  the change, then a notice and an audit entry written: two rows), changes a second and a transaction's median
  time. The policy version each change takes orders them; how long it holds that order is what this shows.

Its agreements are deleted at the end. Prints a table and writes ``.stack/bench/policy.json``.

    python -m bench.policy [--agreements 5000] [--runs 30]"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import typer
from rich.table import Table

from base.runtime import terminal
from base.settings import Settings
from contracts.bureau import CaseSubmitted
from contracts.departments import BUREAU, GATEWAY, SERVICE_DEPARTMENTS
from gateway.agreements import load_policy
from gateway.enforcement import Enforcement
from gateway.registry import ContractVersion

CASES = ContractVersion.from_schema(CaseSubmitted.CONTRACT.json_schema)
console = terminal()


async def median_ms(runs: int, step: Callable[[], Awaitable[Any]], before: Callable[[], Awaitable[Any]] | None = None
                    ) -> float:
    times = []
    for _ in range(runs):
        if before is not None:
            await before()
        start = time.perf_counter()
        await step()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def concurrent_changes(settings: Settings, prefix: str, agreements: int, workers: int,
                             changes: int) -> dict[str, float]:
    """``changes`` changes of the benchmark's first ``agreements`` agreements by ``workers`` connections at once,
    each in a transaction that, after its change, writes two rows as a step's notice and audit entry do."""
    pool = await asyncpg.create_pool(settings.dsn(GATEWAY), min_size=workers, max_size=workers)
    written = f"gateway.bench_steps_{uuid.uuid4().hex[:8]}"  # the steps' rows (no temporary tables for the role)
    await pool.execute(f"CREATE TABLE {written} (entry text)")
    left, took = iter(range(changes)), []

    async def worker() -> None:
        async with pool.acquire() as connection:
            for n in left:
                agreement = f"{prefix}{1 + n % agreements}"
                start = time.perf_counter()
                async with connection.transaction():
                    status = await connection.fetchval(
                        "SELECT status FROM gateway.agreements WHERE id = $1 FOR UPDATE", agreement)
                    await connection.execute("UPDATE gateway.agreements SET status = $2 WHERE id = $1", agreement,
                                             "suspended" if status == "approved" else "approved")
                    await connection.execute(f"INSERT INTO {written} VALUES ($1)", f"notice {n}")
                    await connection.execute(f"INSERT INTO {written} VALUES ($1)", f"audit {n}")
                took.append((time.perf_counter() - start) * 1000)

    try:
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        return {"concurrent_changes_per_s": changes / (time.perf_counter() - start),
                "change_transaction_ms": statistics.median(took)}
    finally:
        await pool.execute(f"DROP TABLE {written}")
        await pool.close()


async def measure(settings: Settings, agreements: int, runs: int, workers: int) -> dict[str, Any]:
    pool = await asyncpg.create_pool(settings.dsn(GATEWAY), min_size=1, max_size=2)
    prefix = f"AGR-BENCH-{uuid.uuid4().hex[:8]}-"
    try:
        if not await pool.fetchval("SELECT count(*) FROM gateway.contracts WHERE id = $1", CASES.id):
            raise SystemExit(f"{CASES.id} is not registered: start the exchange once first (`make demo`)")
        consumers = [d for d in SERVICE_DEPARTMENTS if d != BUREAU]
        now = await pool.fetchval("SELECT now()")
        await pool.execute(
            "INSERT INTO gateway.agreements (id, contract_id, provider, consumer, fields, purpose, legal_basis,"
            " valid_from, valid_until, status, requested_at, remind_at, due_at, case_id)"
            " SELECT $1 || n, $2, 'bureau', ($3::text[])[1 + n % cardinality($3::text[])], $4, 'review of the case',"
            " 'benchmark', $5, $6, 'approved', $5, $5, $5, 'G-BENCH-' || n FROM generate_series(1, $7) AS n",
            prefix, CASES.id, consumers, ["contact_phone"], now - timedelta(days=1), now + timedelta(days=30),
            agreements)
        enforcement = await Enforcement.connect(pool, settings.dsn(GATEWAY))
        one = f"{prefix}1"
        flip = iter(["suspended", "approved"] * runs)

        async def change() -> None:
            await pool.execute("UPDATE gateway.agreements SET status = $2 WHERE id = $1", one, next(flip))

        figures = {
            "agreements": await pool.fetchval("SELECT count(*) FROM gateway.agreements WHERE status = 'approved'"),
            "full_reload_ms": await median_ms(runs, lambda: load_policy(pool)),
            "refresh_after_change_ms": await median_ms(runs, enforcement.refresh, before=change),
            "refresh_unchanged_ms": await median_ms(runs, enforcement.refresh),
        }
        policy, at = enforcement.sharing, now
        subjects = [f"G-BENCH-{n}" for n in range(1, min(agreements, 1000) + 1)]
        start = time.perf_counter()
        for subject in subjects:
            for consumer in policy.consumers(CASES, at, subject) | CASES.consumers:
                policy.grant(consumer, CASES, subject, at)
        figures["grant_us"] = (time.perf_counter() - start) / len(subjects) * 1e6
        await enforcement.close()
        figures |= await concurrent_changes(settings, prefix, min(agreements, workers * 10), workers, runs * 50)
        return figures
    finally:
        await pool.execute("DELETE FROM gateway.agreements WHERE id LIKE $1", prefix + "%")
        await pool.close()


def main(
    agreements: int = typer.Option(5_000, help="approved case-scoped agreements written for the run"),
    runs: int = typer.Option(30, help="timings of each figure (the median is given; fifty times as many changes)"),
    workers: int = typer.Option(8, help="connections changing agreements at once"),
) -> None:
    settings = Settings.from_environment()
    figures = asyncio.run(measure(settings, agreements, runs, workers))
    table = Table("figure", "value", title=f"a change of the agreements, {figures['agreements']:,} approved")
    for name, value in figures.items():
        table.add_row(name, f"{value:,.2f}" if isinstance(value, float) else f"{value:,}")
    console.print(table)
    out = settings.stack_path / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "policy.json").write_text(json.dumps(figures, indent=2))
    console.print(f"figures written to {out / 'policy.json'}")


if __name__ == "__main__":
    typer.run(main)
