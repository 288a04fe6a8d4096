"""Sharing agreements: a consumer department asks the provider of a contract for fields; the provider keeps
control. Unconditional fields are granted at once; conditional ones wait for the provider, who approves or
refuses with reasons within 10 working days (a reminder at half time, an escalation to the coordination
office when overdue). Revocation and expiry stop delivery at once: the router applies the agreements in
force at the moment it routes."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import asyncpg
from pydantic import BaseModel, Field

from base.calendar import WorkingDayCalendar
from contracts.base import Sharing
from contracts.departments import COORDINATION
from contracts.exchange import (
    AgreementDecided,
    AgreementEscalated,
    AgreementOutcome,
    AgreementReminder,
    AgreementRequested,
)
from gateway.audit.entry import AuditAction
from gateway.notices import Notices
from gateway.registry import ContractVersion

ANSWER_WITHIN_WORKING_DAYS = 10  # 2025 Regulation on Government Data Sharing: conditional requests
REMIND_AFTER_WORKING_DAYS = 5


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"


DECIDED = {Status.APPROVED: AuditAction.AGREEMENT_APPROVED, Status.REJECTED: AuditAction.AGREEMENT_REJECTED}


@dataclass(frozen=True)
class Agreement:
    id: str
    contract_id: str
    provider: str
    consumer: str
    fields: frozenset[str]
    purpose: str
    legal_basis: str
    valid_from: datetime
    valid_until: datetime
    status: Status
    requested_at: datetime
    remind_at: datetime
    due_at: datetime
    decided_at: datetime | None = None
    reasons: str | None = None
    reminded_at: datetime | None = None
    escalated_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def parties(self) -> list[str]:
        """The two departments an agreement concerns (its audit entries are theirs to read)."""
        return sorted({self.provider, self.consumer})

    def in_force(self, at: datetime) -> bool:
        return self.status is Status.APPROVED and self.valid_from <= at < self.valid_until

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Agreement:
        values = dict(row)
        values["fields"] = frozenset(values["fields"])
        values["status"] = Status(values["status"])
        return cls(**values)

    def view(self, at: datetime) -> dict[str, Any]:
        return {**self.__dict__, "fields": sorted(self.fields), "status": self.status.value,
                "in_force": self.in_force(at)}


class AgreementPolicy:
    """The agreements in force, as the router asks about them on every delivery."""

    def __init__(self, agreements: Iterable[Agreement] = ()) -> None:
        self._by_contract: dict[str, list[Agreement]] = defaultdict(list)
        for agreement in agreements:
            if agreement.status is Status.APPROVED:
                self._by_contract[agreement.contract_id].append(agreement)
        # What is in force for a contract at one instant (the router asks for every record of a batch at the
        # batch's instant): consumer -> the fields its agreements grant.
        self._at: datetime | None = None
        self._granted: dict[str, dict[str, frozenset[str]]] = {}

    def _in_force(self, contract_id: str, at: datetime) -> dict[str, frozenset[str]]:
        if at != self._at:
            self._at, self._granted = at, {}
        granted = self._granted.get(contract_id)
        if granted is None:
            fields: dict[str, set[str]] = defaultdict(set)
            for agreement in self._by_contract.get(contract_id, ()):
                if agreement.in_force(at):
                    fields[agreement.consumer] |= agreement.fields
            granted = self._granted[contract_id] = {c: frozenset(f) for c, f in fields.items()}
        return granted

    def conditional_fields(self, consumer: str, contract: ContractVersion, at: datetime) -> frozenset[str]:
        return self._in_force(contract.id, at).get(consumer, frozenset()) & contract.conditional

    def consumers(self, contract: ContractVersion, at: datetime) -> frozenset[str]:
        """Departments that receive a contract because of an agreement, beyond its declared consumers."""
        return frozenset(self._in_force(contract.id, at))


async def load_policy(pool: asyncpg.Pool) -> AgreementPolicy:
    rows = await pool.fetch("SELECT * FROM gateway.agreements WHERE status = 'approved'")
    return AgreementPolicy(Agreement.from_row(r) for r in rows)


class AgreementRequest(BaseModel):
    contract: str = Field(description="contract id, e.g. bureau.case-submitted")
    fields: list[str] = Field(min_length=1)
    purpose: str = Field(min_length=4)
    legal_basis: str = Field(min_length=4)
    valid_from: datetime | None = Field(None, description="default: now")
    valid_until: datetime | None = Field(None, description="default: one year from valid_from")


class AgreementRefused(ValueError):
    """The request or the decision is not allowed; the message says why."""


class AgreementStore:
    """Agreements in PostgreSQL (``gateway.agreements``), with their notices and audit entries."""

    def __init__(self, pool: asyncpg.Pool, notices: Notices, calendar: WorkingDayCalendar) -> None:
        self.pool = pool
        self.notices = notices
        self.calendar = calendar

    @property
    def now(self) -> datetime:
        return self.notices.clock.now()

    async def get(self, agreement_id: str) -> Agreement | None:
        row = await self.pool.fetchrow("SELECT * FROM gateway.agreements WHERE id = $1", agreement_id)
        return Agreement.from_row(row) if row else None

    async def list(self, department: str | None = None) -> list[Agreement]:
        rows = await self.pool.fetch(
            "SELECT * FROM gateway.agreements WHERE $1::text IS NULL OR consumer = $1 OR provider = $1"
            " ORDER BY requested_at", department,
        )
        return [Agreement.from_row(r) for r in rows]

    async def request(self, consumer: str, request: AgreementRequest, contract: ContractVersion) -> Agreement:
        """Record a request. Unconditional fields only: approved at once. Otherwise the provider is asked."""
        unknown = set(request.fields) - set(contract.sharing)
        if unknown:
            raise AgreementRefused(f"{contract.id} has no fields {sorted(unknown)}")
        never = set(request.fields) & contract.fields_with(Sharing.NOT_SHARED)
        if never:
            raise AgreementRefused(f"fields {sorted(never)} of {contract.id} are not shared with anyone")
        if consumer == contract.owner:
            raise AgreementRefused(f"{consumer} owns {contract.id}: it needs no agreement")
        now = self.now
        valid_from = request.valid_from or now
        valid_until = request.valid_until or valid_from + timedelta(days=365)
        if valid_until <= valid_from:
            raise AgreementRefused("valid_until must come after valid_from")
        conditional = set(request.fields) & contract.fields_with(Sharing.CONDITIONAL)
        agreement = Agreement(
            id=f"AGR-{uuid.uuid4().hex[:12].upper()}", contract_id=contract.id, provider=contract.owner,
            consumer=consumer, fields=frozenset(request.fields), purpose=request.purpose,
            legal_basis=request.legal_basis, valid_from=valid_from, valid_until=valid_until,
            status=Status.PENDING if conditional else Status.APPROVED, requested_at=now,
            remind_at=self.calendar.add_working_days(now, REMIND_AFTER_WORKING_DAYS),
            due_at=self.calendar.add_working_days(now, ANSWER_WITHIN_WORKING_DAYS),
            decided_at=None if conditional else now,
        )
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO gateway.agreements (id, contract_id, provider, consumer, fields, purpose, legal_basis,"
                " valid_from, valid_until, status, requested_at, remind_at, due_at, decided_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                agreement.id, agreement.contract_id, agreement.provider, agreement.consumer, sorted(agreement.fields),
                agreement.purpose, agreement.legal_basis, agreement.valid_from, agreement.valid_until,
                agreement.status.value, agreement.requested_at, agreement.remind_at, agreement.due_at,
                agreement.decided_at,
            )
            await self.notices.audit(connection, AuditAction.AGREEMENT_REQUESTED, agreement=agreement.id,
                                     contract=contract.id, sender=consumer, detail=agreement.purpose,
                                     fields=sorted(agreement.fields), parties=agreement.parties)
            if conditional:
                await self.notices.notify(connection, agreement.provider, AgreementRequested(
                    agreement_id=agreement.id, contract_id=contract.id, consumer=consumer,
                    provider=agreement.provider, fields=sorted(agreement.fields), purpose=agreement.purpose,
                    legal_basis=agreement.legal_basis, valid_from=valid_from, valid_until=valid_until,
                    due_at=agreement.due_at,
                ))
            else:
                await self._decided(connection, agreement, AgreementOutcome.APPROVED, "unconditional fields only")
        self.notices.outbox.wake()
        return agreement

    async def approve(self, agreement_id: str, by: str) -> Agreement:
        return await self._decide(agreement_id, by, Status.APPROVED, "")

    async def reject(self, agreement_id: str, by: str, reasons: str) -> Agreement:
        if not reasons.strip():
            raise AgreementRefused("a refusal needs reasons")
        return await self._decide(agreement_id, by, Status.REJECTED, reasons)

    async def revoke(self, agreement_id: str, by: str, reasons: str) -> Agreement:
        """Either party may end an agreement in force; delivery stops at once."""
        if not reasons.strip():
            raise AgreementRefused("a revocation needs reasons")
        async with self.pool.acquire() as connection, connection.transaction():
            agreement = await self._locked(connection, agreement_id)
            if by not in (agreement.provider, agreement.consumer):
                raise AgreementRefused(f"only {agreement.provider} or {agreement.consumer} may revoke {agreement_id}")
            if agreement.status is not Status.APPROVED:
                raise AgreementRefused(f"{agreement_id} is {agreement.status.value}, not approved")
            row = await connection.fetchrow(
                "UPDATE gateway.agreements SET status = 'revoked', revoked_at = $2, reasons = $3 WHERE id = $1"
                " RETURNING *", agreement_id, self.now, reasons,
            )
            revoked = Agreement.from_row(row)
            await self.notices.audit(connection, AuditAction.AGREEMENT_REVOKED, agreement=agreement_id,
                                     contract=agreement.contract_id, sender=by, detail=reasons,
                                     parties=agreement.parties)
            await self._decided(connection, revoked, AgreementOutcome.REVOKED, reasons)
        self.notices.outbox.wake()
        return revoked

    async def _locked(self, connection: asyncpg.Connection, agreement_id: str) -> Agreement:
        row = await connection.fetchrow("SELECT * FROM gateway.agreements WHERE id = $1 FOR UPDATE", agreement_id)
        if row is None:
            raise KeyError(agreement_id)
        return Agreement.from_row(row)

    async def _decide(self, agreement_id: str, by: str, status: Status, reasons: str) -> Agreement:
        async with self.pool.acquire() as connection, connection.transaction():
            agreement = await self._locked(connection, agreement_id)
            if by != agreement.provider:
                raise AgreementRefused(f"only the provider {agreement.provider} decides on {agreement_id}")
            if agreement.status is not Status.PENDING:
                raise AgreementRefused(f"{agreement_id} is already {agreement.status.value}")
            row = await connection.fetchrow(
                "UPDATE gateway.agreements SET status = $2, decided_at = $3, reasons = $4 WHERE id = $1 RETURNING *",
                agreement_id, status.value, self.now, reasons or None,
            )
            decided = Agreement.from_row(row)
            await self.notices.audit(connection, DECIDED[status], agreement=agreement_id,
                                     contract=agreement.contract_id, sender=by, detail=reasons,
                                     parties=agreement.parties)
            await self._decided(connection, decided, AgreementOutcome(status.value), reasons)
        self.notices.outbox.wake()
        return decided

    async def _decided(self, connection: asyncpg.Connection, agreement: Agreement, outcome: AgreementOutcome,
                       reasons: str) -> None:
        for party in (agreement.consumer, agreement.provider):
            await self.notices.notify(connection, party, AgreementDecided(
                agreement_id=agreement.id, department=party, contract_id=agreement.contract_id,
                consumer=agreement.consumer, provider=agreement.provider, outcome=outcome,
                fields=sorted(agreement.fields), reasons=reasons, valid_until=agreement.valid_until,
            ))

    async def sweep(self) -> tuple[int, int]:
        """Remind providers at half time and escalate overdue requests to the coordination office, once each.
        Returns (reminders, escalations) sent."""
        now = self.now
        reminders = escalations = 0
        async with self.pool.acquire() as connection, connection.transaction():
            for row in await connection.fetch(
                "UPDATE gateway.agreements SET reminded_at = $1 WHERE status = $2 AND reminded_at IS NULL"
                " AND remind_at <= $1 RETURNING *", now, Status.PENDING.value,
            ):
                a = Agreement.from_row(row)
                await self.notices.notify(connection, a.provider, AgreementReminder(
                    agreement_id=a.id, contract_id=a.contract_id, consumer=a.consumer, provider=a.provider,
                    requested_at=a.requested_at, due_at=a.due_at))
                reminders += 1
            for row in await connection.fetch(
                "UPDATE gateway.agreements SET escalated_at = $1 WHERE status = $2 AND escalated_at IS NULL"
                " AND due_at <= $1 RETURNING *", now, Status.PENDING.value,
            ):
                a = Agreement.from_row(row)
                late = round(self.calendar.working_days_between(a.due_at, now), 2)
                await self.notices.notify(connection, COORDINATION, AgreementEscalated(
                    agreement_id=a.id, contract_id=a.contract_id, consumer=a.consumer, provider=a.provider,
                    due_at=a.due_at, working_days_late=late))
                escalations += 1
        if reminders or escalations:
            self.notices.outbox.wake()
        return reminders, escalations
