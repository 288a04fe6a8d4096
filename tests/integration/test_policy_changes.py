"""The router's policy follows the agreements by applying what changed (each row carries the policy version of its
last change, taken at its commit) and loads everything again only when the registry changes or an agreement is
deleted; a change whose transaction commits after the router has read the version is applied by its next refresh,
never lost; a change still open holds no other change up."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest_asyncio

from base.settings import Settings
from contracts.bureau import CaseSubmitted
from contracts.departments import GATEWAY
from deploy.processes import AppProcesses
from gateway.enforcement import Enforcement
from gateway.registry import ContractVersion
from tests.factories import T0

CASES = ContractVersion.from_schema(CaseSubmitted.CONTRACT.json_schema)  # registered by the exchange's gateway
AT = T0 + timedelta(days=1)


@pytest_asyncio.fixture
async def enforcement(stack: Settings, exchange: AppProcesses) -> AsyncIterator[Enforcement]:
    pool = await asyncpg.create_pool(stack.dsn(GATEWAY), min_size=1, max_size=3)
    enforcement = await Enforcement.connect(pool, stack.dsn(GATEWAY))
    try:
        yield enforcement
    finally:
        await pool.execute("DELETE FROM gateway.agreements WHERE id LIKE 'AGR-POLICY-%'")
        await enforcement.close()
        await pool.close()


async def approve(pool: asyncpg.Pool, agreement_id: str, case_id: str, consumer: str = "housing") -> None:
    await pool.execute(
        "INSERT INTO gateway.agreements (id, contract_id, provider, consumer, fields, purpose, legal_basis, valid_from,"
        " valid_until, status, requested_at, remind_at, due_at, case_id)"
        " VALUES ($1, $2, 'bureau', $3, $4, 'site visit', 'basis', $5, $6, 'approved', $5, $5, $5, $7)",
        agreement_id, CASES.id, consumer, ["contact_phone"], T0, T0 + timedelta(days=30), case_id)


def granted(enforcement: Enforcement, case_id: str, consumer: str = "housing") -> frozenset[str]:
    return enforcement.sharing.grant(consumer, CASES, case_id, AT).fields


async def test_each_change_is_applied_without_loading_every_agreement_again(enforcement: Enforcement) -> None:
    run = uuid.uuid4().hex[:8]
    case, other = f"G-POLICY-{run}", f"G-POLICY-{run}-2"
    registry, pool = enforcement.registry, enforcement.pool
    await approve(pool, f"AGR-POLICY-{run}-1", case)
    await approve(pool, f"AGR-POLICY-{run}-2", other, consumer="planning")
    assert await enforcement.refresh()
    assert granted(enforcement, case) == {"contact_phone"}
    assert granted(enforcement, other, "planning") == {"contact_phone"}
    assert granted(enforcement, other) == frozenset()  # case-scoped: that case's records alone
    assert enforcement.sharing.consumers(CASES, AT, case) == {"housing"}

    await pool.execute("UPDATE gateway.agreements SET status = 'suspended' WHERE id = $1", f"AGR-POLICY-{run}-1")
    await pool.execute("UPDATE gateway.agreements SET reminded_at = now() WHERE id = $1", f"AGR-POLICY-{run}-2")
    assert await enforcement.refresh()
    assert granted(enforcement, case) == frozenset() and enforcement.sharing.consumers(CASES, AT, case) == frozenset()
    assert granted(enforcement, other, "planning") == {"contact_phone"}
    assert enforcement.registry is registry  # applied, not loaded again
    # A refresh with nothing of ours changed loads nothing either (the session's gateway may change agreements of its
    # own meanwhile, so whether anything changed is not asked).
    await enforcement.refresh()
    assert enforcement.registry is registry
    assert granted(enforcement, other, "planning") == {"contact_phone"}


async def test_a_change_committed_after_the_version_was_read_is_applied_by_the_next_refresh(
        enforcement: Enforcement) -> None:
    run = uuid.uuid4().hex[:8]
    case = f"G-POLICY-{run}"
    await approve(enforcement.pool, f"AGR-POLICY-{run}-3", case)
    await enforcement.refresh()
    assert granted(enforcement, case) == {"contact_phone"}
    async with enforcement.pool.acquire() as connection:
        revoking = connection.transaction()
        await revoking.start()
        await connection.execute("UPDATE gateway.agreements SET status = 'revoked' WHERE id = $1",
                                 f"AGR-POLICY-{run}-3")
        await enforcement.refresh()  # the revocation is not committed (nor stamped, until it is): not seen
        assert granted(enforcement, case) == {"contact_phone"}
        await revoking.commit()
    assert await enforcement.refresh()
    assert granted(enforcement, case) == frozenset()


async def test_an_open_change_holds_no_other_up_and_the_stamps_follow_the_commits(enforcement: Enforcement) -> None:
    """A change takes its policy version at its commit: while one transaction that changed an agreement is still
    open, another changes and commits one of its own (its lock wait bounded, so that a change that waited for the
    first would fail here), and the stamps are in the order of the commits."""
    run = uuid.uuid4().hex[:8]
    first_id, second_id = f"AGR-POLICY-{run}-5", f"AGR-POLICY-{run}-6"
    pool = enforcement.pool
    await approve(pool, first_id, f"G-POLICY-{run}")
    await approve(pool, second_id, f"G-POLICY-{run}-2")
    before = await pool.fetchval("SELECT version FROM gateway.policy_version")
    async with pool.acquire() as first, pool.acquire() as second:
        async with first.transaction():
            await first.execute("UPDATE gateway.agreements SET status = 'suspended' WHERE id = $1", first_id)
            async with second.transaction():
                await second.execute("SET LOCAL lock_timeout = '10s'")
                await second.execute("UPDATE gateway.agreements SET status = 'suspended' WHERE id = $1", second_id)
        stamps = {r["id"]: r["changed_in"] for r in await second.fetch(
            "SELECT id, changed_in FROM gateway.agreements WHERE id = ANY($1::text[])", [first_id, second_id])}
    assert before < stamps[second_id] < stamps[first_id]


async def test_a_deleted_agreement_or_a_registry_change_loads_everything_again(enforcement: Enforcement) -> None:
    run = uuid.uuid4().hex[:8]
    case = f"G-POLICY-{run}"
    await approve(enforcement.pool, f"AGR-POLICY-{run}-4", case)
    await enforcement.refresh()
    registry = enforcement.registry
    await enforcement.pool.execute("DELETE FROM gateway.agreements WHERE id = $1", f"AGR-POLICY-{run}-4")
    assert await enforcement.refresh()
    assert granted(enforcement, case) == frozenset()
    assert enforcement.registry is not registry  # loaded again (its versions kept where unchanged)
    registry = enforcement.registry
    await enforcement.pool.execute("UPDATE gateway.contracts SET owner = owner WHERE id = $1", CASES.id)
    assert await enforcement.refresh()
    assert enforcement.registry is not registry
