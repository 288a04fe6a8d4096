"""Sharing agreements: a consumer department asks the provider of a contract for fields; the provider keeps
control. Unconditional fields are granted at once; conditional ones wait for the provider, who approves, refuses
with reasons, or offers fewer fields or a shorter period (a counter-offer the consumer accepts or declines), within
10 working days (3 for the fields of one case). An agreement is in force for an absolute period, for a number of
working days from its approval, or for the life of one case (only that case's records get the fields). The
provider may suspend and resume it; either party may revoke it; the consumer is told ahead of its end and may ask
for the next period; a refusal may be taken to the coordination office, which proceeds (with conditions) or
upholds it. Which step is allowed when, and to whom, is ``gateway.lifecycle``; this module applies it, with the
notices and audit entries of each step. The router applies the agreements in force at the moment it routes, and
applies each change before its next batch (``AgreementPolicy.apply``, ``gateway.policy_version``)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import asyncpg
from pydantic import BaseModel, Field, model_validator

from base.calendar import WorkingDayCalendar
from base.pages import Where, page
from contracts.base import Sharing
from contracts.departments import COORDINATION, EXCHANGE
from contracts.envelope import SUBJECT
from contracts.exchange import (
    AgreementChange,
    AgreementChanged,
    AgreementDecided,
    AgreementEscalated,
    AgreementOutcome,
    AgreementReminder,
    AgreementRequested,
    AgreementStepEscalated,
    AgreementStepReminder,
    RefusalEscalated,
)
from contracts.refusal_grounds import SharingGround
from gateway.audit.entry import AuditAction
from gateway.lifecycle import (
    AWAITING,
    ESCALATES_WHEN_LATE,
    EXPIRY_NOTICE_WORKING_DAYS,
    LIVE,
    RULES,
    Refusal,
    Role,
    Status,
    Transition,
    TransitionRefused,
    deadline_days,
    roles_of,
    step,
)
from gateway.notices import Notices
from gateway.registry import ContractVersion
from gateway.routing import NOTHING, Grant, Granted

__all__ = ["Agreement", "AgreementPolicy", "AgreementRefused", "AgreementRequest", "AgreementStore", "Rejection",
           "Status", "TransitionRefused"]

DEFAULT_VALIDITY = timedelta(days=365)
_LIVE = sorted(LIVE)  # as a query's parameter
# Working days of an expiry notice lie within this many calendar days (the longest holidays included).
EXPIRY_LOOKAHEAD = timedelta(days=EXPIRY_NOTICE_WORKING_DAYS * 3 + 10)

AUDITED: dict[Transition, AuditAction] = {
    Transition.APPROVE: AuditAction.AGREEMENT_APPROVED,
    Transition.REJECT: AuditAction.AGREEMENT_REJECTED,
    Transition.COUNTER_OFFER: AuditAction.AGREEMENT_COUNTERED,
    Transition.ACCEPT: AuditAction.AGREEMENT_ACCEPTED,
    Transition.DECLINE: AuditAction.AGREEMENT_DECLINED,
    Transition.SUSPEND: AuditAction.AGREEMENT_SUSPENDED,
    Transition.RESUME: AuditAction.AGREEMENT_RESUMED,
    Transition.REVOKE: AuditAction.AGREEMENT_REVOKED,
    Transition.RENEW: AuditAction.AGREEMENT_RENEWAL_REQUESTED,
    Transition.ESCALATE: AuditAction.AGREEMENT_ESCALATED,
    Transition.PROCEED: AuditAction.AGREEMENT_PROCEEDED,
    Transition.UPHOLD: AuditAction.AGREEMENT_UPHELD,
    Transition.END: AuditAction.AGREEMENT_ENDED,
}
TOLD: dict[Transition, AgreementChange] = {
    Transition.APPROVE: AgreementChange.APPROVED,
    Transition.REJECT: AgreementChange.REJECTED,
    Transition.COUNTER_OFFER: AgreementChange.COUNTERED,
    Transition.ACCEPT: AgreementChange.ACCEPTED,
    Transition.DECLINE: AgreementChange.DECLINED,
    Transition.SUSPEND: AgreementChange.SUSPENDED,
    Transition.RESUME: AgreementChange.RESUMED,
    Transition.REVOKE: AgreementChange.REVOKED,
    Transition.RENEW: AgreementChange.RENEWAL_REQUESTED,
    Transition.ESCALATE: AgreementChange.ESCALATED,
    Transition.PROCEED: AgreementChange.PROCEEDED,
    Transition.UPHOLD: AgreementChange.UPHELD,
    Transition.END: AgreementChange.ENDED,
}
# The steps the first version of the exchange already told as ``exchange.agreement-decided``: still told so.
DECIDED: dict[Transition, AgreementOutcome] = {
    Transition.APPROVE: AgreementOutcome.APPROVED,
    Transition.REJECT: AgreementOutcome.REJECTED,
    Transition.REVOKE: AgreementOutcome.REVOKED,
}


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
    remind_at: datetime  # of the pending step (the status says whose)
    due_at: datetime
    decided_at: datetime | None = None
    reasons: str | None = None  # of the latest step that gave reasons
    reminded_at: datetime | None = None
    escalated_at: datetime | None = None
    revoked_at: datetime | None = None
    case_id: str | None = None  # case-scoped: only this case's records get the fields, until the case ends
    working_days: int | None = None  # in force this many working days from approval
    renews: str | None = None
    asked: dict[str, Any] | None = None  # the terms first asked for, when a counter-offer changed them
    conditions: tuple[str, ...] = ()
    suspended_at: datetime | None = None
    expiry_noticed_at: datetime | None = None
    ended_at: datetime | None = None
    overdue_steps: int = 0
    ground: SharingGround | None = None  # of the provider's refusal or counter-offer
    refused_at: datetime | None = None  # when the provider refused (kept through an escalation)

    @property
    def parties(self) -> list[str]:
        """The two departments an agreement concerns (its audit entries are theirs to read)."""
        return sorted({self.provider, self.consumer})

    @property
    def awaiting(self) -> str | None:
        """The department whose move it is (None when nothing is pending)."""
        role = AWAITING.get(self.status)
        return None if role is None else {Role.PROVIDER: self.provider, Role.CONSUMER: self.consumer,
                                          Role.OFFICE: COORDINATION}[role]

    def in_force(self, at: datetime) -> bool:
        return self.status is Status.APPROVED and self.valid_from <= at < self.valid_until

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Agreement:
        # the row's other columns (the policy version of its last change, a standing) are the queries' own
        values = {f.name: row[f.name] for f in dataclasses.fields(cls)}
        values["fields"] = frozenset(values["fields"])
        values["status"] = Status(values["status"])
        values["conditions"] = tuple(values["conditions"])
        values["ground"] = None if values["ground"] is None else SharingGround(values["ground"])
        if isinstance(values["asked"], str):
            values["asked"] = json.loads(values["asked"])
        return cls(**values)

    def view(self, at: datetime) -> dict[str, Any]:
        return {**self.__dict__, "fields": sorted(self.fields), "status": self.status.value,
                "conditions": list(self.conditions), "in_force": self.in_force(at), "awaiting": self.awaiting}


class AgreementPolicy:
    """The agreements approved, as the router asks about them on every delivery: by contract, the general ones by
    consumer and the case-scoped ones by case and consumer, so that a record costs the same to route whether ten
    cases or ten thousand have agreements of their own. Whether one is in force is asked at the instant given.
    ``apply`` takes agreements as they now stand: the router applies each change instead of loading them all again."""

    def __init__(self, agreements: Iterable[Agreement] = ()) -> None:
        self._indexed: dict[str, Agreement] = {}  # by id: every agreement approved, as it was indexed
        self._general: dict[str, dict[str, dict[str, Agreement]]] = {}  # contract -> consumer -> id -> agreement
        self._scoped: dict[str, dict[str, dict[str, dict[str, Agreement]]]] = {}  # contract -> case -> consumer -> …
        self.apply(agreements)

    def apply(self, agreements: Iterable[Agreement]) -> None:
        """Each agreement as it now stands replaces what the policy held under its id: approved, it is in the
        policy; in any other status, out."""
        for agreement in agreements:
            old = self._indexed.pop(agreement.id, None)
            if old is not None:
                by_consumer = self._by_consumer(old)
                del by_consumer[old.consumer][old.id]
                if not by_consumer[old.consumer]:
                    del by_consumer[old.consumer]
                    if old.case_id is not None and not by_consumer:
                        del self._scoped[old.contract_id][old.case_id]
            if agreement.status is Status.APPROVED:
                self._indexed[agreement.id] = agreement
                self._by_consumer(agreement).setdefault(agreement.consumer, {})[agreement.id] = agreement

    def _by_consumer(self, agreement: Agreement) -> dict[str, dict[str, Agreement]]:
        if agreement.case_id is None:
            return self._general.setdefault(agreement.contract_id, {})
        return self._scoped.setdefault(agreement.contract_id, {}).setdefault(agreement.case_id, {})

    def grant(self, consumer: str, contract: ContractVersion, subject: str, at: datetime) -> Grant:
        held = [*self._general.get(contract.id, {}).get(consumer, {}).values(),
                *self._scoped.get(contract.id, {}).get(subject, {}).get(consumer, {}).values()]
        parts = [Granted(a.id, a.purpose, fields) for a in sorted(held, key=lambda a: a.id)
                 if a.in_force(at) and (fields := a.fields & contract.conditional)]
        if not parts:
            return NOTHING
        return Grant(frozenset().union(*(p.fields for p in parts)), tuple(parts))

    def consumers(self, contract: ContractVersion, at: datetime, subject: str | None = None) -> frozenset[str]:
        """Departments that receive a contract because of an agreement, beyond its declared consumers: a case-scoped
        agreement makes its consumer a recipient of its case's records only (of any case's when no subject is
        given: the console's view)."""
        scoped = self._scoped.get(contract.id, {})
        groups = [self._general.get(contract.id, {}),
                  *(scoped.values() if subject is None else [scoped.get(subject, {})])]
        return frozenset(consumer for by_consumer in groups for consumer, held in by_consumer.items()
                         if any(a.in_force(at) for a in held.values()))


async def load_policy(pool: asyncpg.Pool) -> AgreementPolicy:
    rows = await pool.fetch("SELECT * FROM gateway.agreements WHERE status = 'approved'")
    return AgreementPolicy(Agreement.from_row(r) for r in rows)


async def load_changes(connection: asyncpg.Connection, since: int) -> list[Agreement]:
    """The agreements changed after policy version ``since``, as they now stand (whatever their status)."""
    rows = await connection.fetch("SELECT * FROM gateway.agreements WHERE changed_in > $1", since)
    return [Agreement.from_row(r) for r in rows]


# --- what callers send ------------------------------------------------------------------------------------------

class Scope(BaseModel):
    case_id: str = Field(max_length=128, pattern=SUBJECT.pattern,
                         description="the one case whose records get the fields; the agreement ends with the case")


class Window(BaseModel):
    working_days: int = Field(ge=1, le=1000, description="in force this many working days from its approval")


class AgreementRequest(BaseModel):
    contract: str = Field(description="contract id, e.g. bureau.case-submitted")
    fields: list[str] = Field(min_length=1)
    purpose: str = Field(min_length=4, max_length=1000, description="what the data is for: it travels with every "
                                                                     "delivery under the agreement")
    legal_basis: str = Field(min_length=4)
    valid_from: datetime | None = Field(None, description="default: now")
    valid_until: datetime | None = Field(None, description="default: one year from valid_from (or the window's end)")
    scope: Scope | None = Field(None, description="for the life of one case (decided within 3 working days)")
    window: Window | None = Field(None, description="relative: N working days from approval (not with valid_until)")

    @model_validator(mode="after")
    def one_end(self) -> AgreementRequest:
        if self.window is not None and self.valid_until is not None:
            raise ValueError("give valid_until or window, not both")
        return self


class Rejection(BaseModel):
    """The provider refuses a request: its reasons, and the ground they rest on as a type (optional)."""

    reasons: str = Field(min_length=1, max_length=4000)
    ground: SharingGround | None = Field(None, description="why, as a type: no_legal_basis and personal_information "
                                                           "bind in law, the others are the provider's judgement")


class CounterOffer(BaseModel):
    """The provider's offer: some of the fields asked for and/or a shorter period, with its reasons (and their
    ground as a type, optional)."""

    fields: list[str] | None = Field(None, min_length=1, description="the fields offered: some of those asked for")
    valid_until: datetime | None = Field(None, description="an earlier end (for a period asked with an end)")
    working_days: int | None = Field(None, ge=1, description="fewer working days (for a working-day window)")
    reasons: str = Field(min_length=1, max_length=4000)
    ground: SharingGround | None = Field(None, description="why not all that was asked, as a type")


class Renewal(BaseModel):
    """The period after an agreement's end: a new end, or a number of working days."""

    valid_until: datetime | None = None
    working_days: int | None = Field(None, ge=1, le=1000)

    @model_validator(mode="after")
    def one_end(self) -> Renewal:
        if (self.valid_until is None) == (self.working_days is None):
            raise ValueError("give valid_until or working_days")
        return self


class Proceed(BaseModel):
    """The coordination office puts an escalated agreement in force, with conditions attached."""

    reasons: str = Field(min_length=1, max_length=4000)
    conditions: list[str] = Field(default_factory=list, max_length=50)


class Standing(StrEnum):
    """Where an agreement stands for those who watch over the exchange (the console's groups)."""

    PENDING = "pending"  # someone's move (``AWAITING``), within its time
    OVERDUE = "overdue"  # someone's move, past its due time or escalated
    IN_FORCE = "in_force"  # approved, and now within its window
    ENDED = "ended"  # refused, revoked, ended, suspended, expired, or not yet in force


def _standing(at: str) -> str:
    """An agreement's ``Standing`` at the instant in parameter ``at``, as SQL over its row."""
    awaiting = ", ".join(f"'{s.value}'" for s in AWAITING)
    return (f"CASE WHEN status IN ({awaiting}) THEN CASE WHEN escalated_at IS NOT NULL OR {at} >= due_at"
            f" THEN '{Standing.OVERDUE.value}' ELSE '{Standing.PENDING.value}' END"
            f" WHEN status = '{Status.APPROVED.value}' AND valid_from <= {at} AND {at} < valid_until"
            f" THEN '{Standing.IN_FORCE.value}' ELSE '{Standing.ENDED.value}' END")


def _of_party(department: str | None) -> Where:
    """The agreements the department is a party to, as consumer or provider (None: every one)."""
    where = Where()
    if department is not None:
        party = where.given(department)
        where.term(f"(consumer = {party} OR provider = {party})")
    return where


class AgreementRefused(ValueError):
    """The terms asked or offered are not allowed; the message says why."""


class KeyReused(ValueError):
    """An Idempotency-Key given again for a request of other data than the one it was first given for."""


Changes = Callable[[Agreement, datetime], dict[str, Any]]


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

    async def page(self, department: str | None, statuses: list[Status], case_id: str | None, limit: int,
                   offset: int) -> tuple[list[Agreement], int]:
        """Agreements newest first, ``limit`` of them from ``offset`` on, and how many match in all: those the
        department is a party to (None: every one), of the statuses (none: all) and the case given."""
        where = _of_party(department)
        if statuses:
            where.term(f"status = ANY({where.given([s.value for s in statuses])}::text[])")
        if case_id is not None:
            where.term(f"case_id = {where.given(case_id)}")
        async with self.pool.acquire() as connection:
            rows, total = await page(connection, "gateway.agreements", where, "*", "requested_at DESC, id", limit,
                                     offset)
        return [Agreement.from_row(r) for r in rows], total

    async def by_standing(self, department: str | None, at: datetime, limit: int, offset: int = 0,
                          only: Standing | None = None) -> dict[Standing, tuple[list[Agreement], int]]:
        """The agreements the department is a party to (None: every one) by where they stand at ``at``: of each
        standing (or of ``only``) ``limit`` of them from ``offset`` on and how many there are. Someone's move
        (pending, overdue) the earliest due first; the others newest first."""
        where = _of_party(department)
        standing = _standing(where.given(at))
        async with self.pool.acquire() as connection:
            counts = {Standing(r["standing"]): r["total"] for r in await connection.fetch(
                f"SELECT {standing} AS standing, count(*) AS total FROM gateway.agreements WHERE {where.clause}"
                " GROUP BY 1", *where.values)}
            chosen = f"WHERE standing = {where.given(only.value)}" if only is not None else ""
            rows = await connection.fetch(
                f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY standing ORDER BY CASE WHEN standing IN"
                f" ('{Standing.PENDING.value}', '{Standing.OVERDUE.value}') THEN due_at END, requested_at DESC, id)"
                f" AS n FROM (SELECT *, {standing} AS standing FROM gateway.agreements WHERE {where.clause}) a"
                f" {chosen}) ranked WHERE n > {where.given(offset)} AND n <= {where.given(offset + limit)}"
                " ORDER BY standing, n", *where.values)
        shown: dict[Standing, list[Agreement]] = {}
        for row in rows:
            shown.setdefault(Standing(row["standing"]), []).append(Agreement.from_row(row))
        return {s: (shown.get(s, []), counts.get(s, 0)) for s in Standing if only in (None, s)}

    # --- asking -------------------------------------------------------------------------------------------------

    async def request(self, consumer: str, request: AgreementRequest, contract: ContractVersion,
                      key: str | None = None) -> tuple[Agreement, bool]:
        """Record a request. Unconditional fields only: approved at once. Otherwise the provider is asked. Returns
        the agreement and whether it is new: a request sent again with the ``key`` of an earlier one of the same
        consumer (its answer was lost) asks nothing, and gets the agreement the first one made, as it stands now
        (the first one's terms hold: a retry may have computed its dates again). The key used for other contract
        or fields is refused (``KeyReused``)."""
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
        working_days = request.window.working_days if request.window else None
        valid_until = request.valid_until or (self.calendar.add_working_days(valid_from, working_days)
                                              if working_days else valid_from + DEFAULT_VALIDITY)
        if valid_until <= valid_from:
            raise AgreementRefused("valid_until must come after valid_from")
        agreement = Agreement(
            id=_new_id(), contract_id=contract.id, provider=contract.owner, consumer=consumer,
            fields=frozenset(request.fields), purpose=request.purpose, legal_basis=request.legal_basis,
            valid_from=valid_from, valid_until=valid_until, status=Status.PENDING, requested_at=now,
            remind_at=now, due_at=now, case_id=request.scope.case_id if request.scope else None,
            working_days=working_days,
        )
        async with self.pool.acquire() as connection, connection.transaction():
            if key is not None:
                await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", consumer, key)
                earlier = await connection.fetchrow(
                    "SELECT agreement_id, contract_id, fields FROM gateway.agreement_requests"
                    " WHERE consumer = $1 AND idempotency_key = $2", consumer, key)
                if earlier is not None:
                    if (earlier["contract_id"], sorted(earlier["fields"])) != (contract.id, sorted(agreement.fields)):
                        raise KeyReused(f"Idempotency-Key {key!r} was used for a request of {earlier['contract_id']} "
                                        f"{sorted(earlier['fields'])}; this one asks for other data")
                    return await self._locked(connection, earlier["agreement_id"]), False
            asked = await self._ask(connection, contract, agreement)
            if key is not None:
                await connection.execute(
                    "INSERT INTO gateway.agreement_requests (consumer, idempotency_key, agreement_id, contract_id,"
                    " fields) VALUES ($1, $2, $3, $4, $5)", consumer, key, asked.id, contract.id, sorted(asked.fields))
        self.notices.outbox.wake()
        return asked, True

    async def renew(self, agreement_id: str, by: str, renewal: Renewal, contract: ContractVersion) -> Agreement:
        """Ask for the period after an agreement's end, on its terms: a new agreement, decided as a request is. The
        current one stays in force until its end."""
        async with self.pool.acquire() as connection, connection.transaction():
            current = await self._locked(connection, agreement_id)
            step(current.status, Transition.RENEW, roles_of(by, current.provider, current.consumer))
            if await connection.fetchval(
                "SELECT id FROM gateway.agreements WHERE renews = $1 AND status = ANY($2)", agreement_id, _LIVE,
            ):
                raise TransitionRefused(Refusal.NOT_NOW, f"{agreement_id} has a renewal already")
            start = current.valid_until
            until = renewal.valid_until or self.calendar.add_working_days(start, renewal.working_days or 0)
            if until <= start:
                raise AgreementRefused(f"a renewal must end after {agreement_id} does ({start.isoformat()})")
            now = self.now
            renewed = Agreement(
                id=_new_id(), contract_id=current.contract_id, provider=current.provider, consumer=current.consumer,
                fields=current.fields, purpose=current.purpose, legal_basis=current.legal_basis, valid_from=start,
                valid_until=until, status=Status.PENDING, requested_at=now, remind_at=now, due_at=now,
                case_id=current.case_id, working_days=renewal.working_days, renews=current.id,
            )
            asked = await self._ask(connection, contract, renewed)
        self.notices.outbox.wake()
        return asked

    async def _ask(self, connection: asyncpg.Connection, contract: ContractVersion, agreement: Agreement
                   ) -> Agreement:
        """Insert a request (or a renewal); tell the provider, or approve it at once when it asks for no conditional
        field."""
        now = agreement.requested_at
        conditional = bool(agreement.fields & contract.fields_with(Sharing.CONDITIONAL))
        days = deadline_days(Status.PENDING, agreement.case_id is not None)
        assert days is not None
        row = await connection.fetchrow(
            "INSERT INTO gateway.agreements (id, contract_id, provider, consumer, fields, purpose, legal_basis,"
            " valid_from, valid_until, status, requested_at, remind_at, due_at, case_id, working_days, renews)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING *",
            agreement.id, agreement.contract_id, agreement.provider, agreement.consumer, sorted(agreement.fields),
            agreement.purpose, agreement.legal_basis, agreement.valid_from, agreement.valid_until,
            Status.PENDING.value, now, self.calendar.add_working_days(now, days // 2),
            self.calendar.add_working_days(now, days), agreement.case_id, agreement.working_days, agreement.renews,
        )
        asked = Agreement.from_row(row)
        renewal = asked.renews is not None
        await self.notices.audit(
            connection, AuditAction.AGREEMENT_RENEWAL_REQUESTED if renewal else AuditAction.AGREEMENT_REQUESTED,
            agreement=asked.id, contract=asked.contract_id, sender=asked.consumer,
            detail=f"renews {asked.renews}: {asked.purpose}" if renewal else asked.purpose,
            fields=sorted(asked.fields), parties=asked.parties)
        if not conditional:
            return await self._apply(connection, asked.id, EXCHANGE, Transition.APPROVE, "unconditional fields only",
                                     self._in_force_from, frozenset({Role.PROVIDER}))
        await self.notices.notify(connection, asked.provider, AgreementRequested(
            agreement_id=asked.id, contract_id=asked.contract_id, consumer=asked.consumer, provider=asked.provider,
            fields=sorted(asked.fields), purpose=asked.purpose, legal_basis=asked.legal_basis,
            valid_from=asked.valid_from, valid_until=asked.valid_until, due_at=asked.due_at,
        ))
        await self._tell(connection, asked, AgreementChange.RENEWAL_REQUESTED if renewal else AgreementChange.REQUESTED,
                         asked.consumer, "")
        return asked

    # --- the steps ----------------------------------------------------------------------------------------------

    async def approve(self, agreement_id: str, by: str) -> Agreement:
        return await self._step(agreement_id, by, Transition.APPROVE, "", self._in_force_from)

    async def reject(self, agreement_id: str, by: str, rejection: Rejection) -> Agreement:
        return await self._step(agreement_id, by, Transition.REJECT, rejection.reasons,
                                lambda _, now: {"decided_at": now, "refused_at": now, "ground": rejection.ground})

    async def counter_offer(self, agreement_id: str, by: str, offer: CounterOffer) -> Agreement:
        """Offer some of the fields asked for and/or a shorter period; the consumer answers by the new deadline."""

        def offered(agreement: Agreement, now: datetime) -> dict[str, Any]:
            fields = frozenset(offer.fields) if offer.fields is not None else agreement.fields
            if not fields <= agreement.fields:
                raise AgreementRefused(f"fields {sorted(fields - agreement.fields)} were not asked for")
            changes: dict[str, Any] = {"fields": fields, "decided_at": now, "ground": offer.ground, "asked": {
                "fields": sorted(agreement.fields), "valid_until": agreement.valid_until.isoformat(),
                "working_days": agreement.working_days}}
            shorter = False
            if offer.valid_until is not None:
                if agreement.working_days is not None:
                    raise AgreementRefused("a working-day window is shortened by working_days, not valid_until")
                if not agreement.valid_from < offer.valid_until <= agreement.valid_until:
                    raise AgreementRefused("valid_until offered must lie within the period asked for")
                changes["valid_until"], shorter = offer.valid_until, offer.valid_until < agreement.valid_until
            if offer.working_days is not None:
                if agreement.working_days is None or offer.working_days > agreement.working_days:
                    raise AgreementRefused("working_days offered must be at most those asked for")
                changes["working_days"], shorter = offer.working_days, offer.working_days < agreement.working_days
                changes["valid_until"] = self.calendar.add_working_days(agreement.valid_from, offer.working_days)
            if fields == agreement.fields and not shorter:
                raise AgreementRefused("the offer is the terms asked for: approve the request instead")
            return changes

        return await self._step(agreement_id, by, Transition.COUNTER_OFFER, offer.reasons, offered)

    async def accept(self, agreement_id: str, by: str) -> Agreement:
        return await self._step(agreement_id, by, Transition.ACCEPT, "", self._in_force_from)

    async def decline(self, agreement_id: str, by: str, reasons: str = "") -> Agreement:
        return await self._step(agreement_id, by, Transition.DECLINE, reasons)

    async def suspend(self, agreement_id: str, by: str, reasons: str) -> Agreement:
        return await self._step(agreement_id, by, Transition.SUSPEND, reasons, lambda _, now: {"suspended_at": now})

    async def resume(self, agreement_id: str, by: str, reasons: str) -> Agreement:
        return await self._step(agreement_id, by, Transition.RESUME, reasons)

    async def revoke(self, agreement_id: str, by: str, reasons: str) -> Agreement:
        """Either party may end an agreement in force (or suspended); delivery stops at once."""
        return await self._step(agreement_id, by, Transition.REVOKE, reasons, lambda _, now: {"revoked_at": now})

    async def escalate(self, agreement_id: str, by: str, reasons: str) -> Agreement:
        """The consumer takes a refusal to the coordination office, which decides by the new deadline."""
        return await self._step(agreement_id, by, Transition.ESCALATE, reasons)

    async def proceed(self, agreement_id: str, by: str, decision: Proceed) -> Agreement:
        def in_force(agreement: Agreement, now: datetime) -> dict[str, Any]:
            return self._in_force_from(agreement, now) | {"conditions": decision.conditions}

        return await self._step(agreement_id, by, Transition.PROCEED, decision.reasons, in_force)

    async def uphold(self, agreement_id: str, by: str, reasons: str) -> Agreement:
        return await self._step(agreement_id, by, Transition.UPHOLD, reasons, _decided_now)

    async def end_with_case(self, case_id: str) -> int:
        """The case ended: so do the agreements for it that stand or may (in force, suspended, or still being
        decided). Returns how many ended."""
        ended = 0
        for row in await self.pool.fetch(
            "SELECT id FROM gateway.agreements WHERE case_id = $1 AND status = ANY($2)", case_id,
            sorted(RULES[Transition.END].source),
        ):
            try:
                await self._step(row["id"], EXCHANGE, Transition.END, f"case {case_id} ended",
                                 lambda _, now: {"ended_at": now}, frozenset({Role.EXCHANGE}))
                ended += 1
            except TransitionRefused as refused:
                if refused.kind is not Refusal.NOT_NOW:  # ended or revoked meanwhile: nothing to do
                    raise
        return ended

    def _in_force_from(self, agreement: Agreement, now: datetime) -> dict[str, Any]:
        """The columns of an agreement coming into force now: a working-day window starts at its approval."""
        changes: dict[str, Any] = {"decided_at": now}
        if agreement.working_days is not None:
            start = max(now, agreement.valid_from)
            changes |= {"valid_from": start,
                        "valid_until": self.calendar.add_working_days(start, agreement.working_days)}
        return changes

    async def _step(self, agreement_id: str, by: str, transition: Transition, reasons: str,
                    changes: Changes | None = None, roles: frozenset[Role] | None = None) -> Agreement:
        async with self.pool.acquire() as connection, connection.transaction():
            changed = await self._apply(connection, agreement_id, by, transition, reasons, changes, roles)
        self.notices.outbox.wake()
        return changed

    async def _apply(self, connection: asyncpg.Connection, agreement_id: str, by: str, transition: Transition,
                     reasons: str, changes: Changes | None = None, roles: frozenset[Role] | None = None) -> Agreement:
        """One step of the lifecycle, if ``by`` (with ``roles``, else those it holds) may take it now: the row
        changed, the step audited, each party told (and the office, of an escalated refusal)."""
        agreement = await self._locked(connection, agreement_id)
        now = self.now
        status = step(agreement.status, transition, roles or roles_of(by, agreement.provider, agreement.consumer),
                      reasons)
        columns: dict[str, Any] = {"status": status, **(changes(agreement, now) if changes else {})}
        if reasons.strip():
            columns["reasons"] = reasons
        days = deadline_days(status, agreement.case_id is not None)
        if days is not None and status is not agreement.status:  # a new pending step, with its own deadline
            columns |= {"remind_at": self.calendar.add_working_days(now, days // 2),
                        "due_at": self.calendar.add_working_days(now, days), "reminded_at": None,
                        "escalated_at": None}
        changed = await self._update(connection, agreement_id, columns)
        await self.notices.audit(connection, AUDITED[transition], agreement=agreement_id,
                                 contract=agreement.contract_id, sender=by, detail=reasons,
                                 reason=changed.ground.value if changed.ground and "ground" in columns else None,
                                 fields=sorted(changed.fields), parties=changed.parties)
        if transition in DECIDED:
            await self._decided(connection, changed, DECIDED[transition], reasons)
        await self._tell(connection, changed, TOLD[transition], by, reasons)
        if transition is Transition.ESCALATE:
            await self.notices.notify(connection, COORDINATION, RefusalEscalated(
                agreement_id=changed.id, contract_id=changed.contract_id, consumer=changed.consumer,
                provider=changed.provider, fields=sorted(changed.fields), purpose=changed.purpose,
                legal_basis=changed.legal_basis, case_id=changed.case_id, valid_from=changed.valid_from,
                valid_until=changed.valid_until, refusal=agreement.reasons or "", ground=changed.ground,
                reasons=reasons, due_at=changed.due_at,
            ))
        return changed

    @staticmethod
    async def _update(connection: asyncpg.Connection, agreement_id: str, columns: dict[str, Any]) -> Agreement:
        sets, values = [], []
        for i, (name, value) in enumerate(columns.items(), start=2):
            if isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, (Status, SharingGround)):
                value = value.value
            elif isinstance(value, dict):
                value = json.dumps(value)
            sets.append(f"{name} = ${i}{'::jsonb' if name == 'asked' else ''}")
            values.append(value)
        row = await connection.fetchrow(
            f"UPDATE gateway.agreements SET {', '.join(sets)} WHERE id = $1 RETURNING *", agreement_id, *values)
        return Agreement.from_row(row)

    async def _locked(self, connection: asyncpg.Connection, agreement_id: str) -> Agreement:
        row = await connection.fetchrow("SELECT * FROM gateway.agreements WHERE id = $1 FOR UPDATE", agreement_id)
        if row is None:
            raise KeyError(agreement_id)
        return Agreement.from_row(row)

    async def _decided(self, connection: asyncpg.Connection, agreement: Agreement, outcome: AgreementOutcome,
                       reasons: str) -> None:
        for party in (agreement.consumer, agreement.provider):
            await self.notices.notify(connection, party, AgreementDecided(
                agreement_id=agreement.id, department=party, contract_id=agreement.contract_id,
                consumer=agreement.consumer, provider=agreement.provider, outcome=outcome,
                fields=sorted(agreement.fields), reasons=reasons, valid_until=agreement.valid_until,
            ))

    async def _tell(self, connection: asyncpg.Connection, agreement: Agreement, change: AgreementChange, by: str,
                    reasons: str) -> None:
        """Each party learns of the step (``exchange.agreement-changed``)."""
        awaiting = agreement.awaiting
        for party in (agreement.consumer, agreement.provider):
            await self.notices.notify(connection, party, AgreementChanged(
                agreement_id=agreement.id, department=party, contract_id=agreement.contract_id,
                consumer=agreement.consumer, provider=agreement.provider, change=change, status=agreement.status,
                by=by, fields=sorted(agreement.fields), purpose=agreement.purpose, legal_basis=agreement.legal_basis,
                valid_from=agreement.valid_from, valid_until=agreement.valid_until, case_id=agreement.case_id,
                working_days=agreement.working_days, renews=agreement.renews, reasons=reasons,
                ground=agreement.ground, conditions=list(agreement.conditions), awaiting=awaiting,
                due_at=agreement.due_at if awaiting else None,
            ))

    # --- the clock ----------------------------------------------------------------------------------------------

    async def sweep(self) -> tuple[int, int, int]:
        """On every pending step, remind the party awaited at half time and escalate to the coordination office
        when overdue (the office's own step is only reminded), once each; tell the consumer once, ahead of its end,
        that an agreement in force expires (unless its renewal is asked for already). Returns (reminders,
        escalations, expiry notices) sent."""
        now = self.now
        reminders = escalations = notices = 0
        pending = [s.value for s in AWAITING]
        async with self.pool.acquire() as connection, connection.transaction():
            for row in await connection.fetch(
                "UPDATE gateway.agreements SET reminded_at = $1 WHERE status = ANY($2) AND reminded_at IS NULL"
                " AND remind_at <= $1 RETURNING *", now, pending,
            ):
                await self._remind(connection, Agreement.from_row(row))
                reminders += 1
            for row in await connection.fetch(
                "UPDATE gateway.agreements SET escalated_at = $1, overdue_steps = overdue_steps + 1"
                " WHERE status = ANY($2) AND escalated_at IS NULL AND due_at <= $1 RETURNING *",
                now, [s.value for s in ESCALATES_WHEN_LATE],
            ):
                await self._escalate_late(connection, Agreement.from_row(row), now)
                escalations += 1
            for row in await connection.fetch(
                "SELECT * FROM gateway.agreements a WHERE status = 'approved' AND expiry_noticed_at IS NULL"
                " AND valid_from <= $1 AND valid_until > $1 AND valid_until <= $2 AND NOT EXISTS ("
                "SELECT 1 FROM gateway.agreements r WHERE r.renews = a.id AND r.status = ANY($3))"  # renewing already
                " FOR UPDATE OF a SKIP LOCKED",
                now, now + EXPIRY_LOOKAHEAD, _LIVE,
            ):
                agreement = Agreement.from_row(row)
                if self.calendar.working_days_between(now, agreement.valid_until) > EXPIRY_NOTICE_WORKING_DAYS:
                    continue
                noticed = await self._update(connection, agreement.id, {"expiry_noticed_at": now})
                await self._tell(connection, noticed, AgreementChange.EXPIRING, EXCHANGE, "")
                notices += 1
        if reminders or escalations or notices:
            self.notices.outbox.wake()
        return reminders, escalations, notices

    async def _remind(self, connection: asyncpg.Connection, a: Agreement) -> None:
        if a.status is Status.PENDING:
            await self.notices.notify(connection, a.provider, AgreementReminder(
                agreement_id=a.id, contract_id=a.contract_id, consumer=a.consumer, provider=a.provider,
                requested_at=a.requested_at, due_at=a.due_at))
            return
        awaiting = a.awaiting
        assert awaiting is not None
        await self.notices.notify(connection, awaiting, AgreementStepReminder(
            agreement_id=a.id, department=awaiting, contract_id=a.contract_id, consumer=a.consumer,
            provider=a.provider, status=a.status, due_at=a.due_at))

    async def _escalate_late(self, connection: asyncpg.Connection, a: Agreement, now: datetime) -> None:
        late = round(self.calendar.working_days_between(a.due_at, now), 2)
        if a.status is Status.PENDING:
            await self.notices.notify(connection, COORDINATION, AgreementEscalated(
                agreement_id=a.id, contract_id=a.contract_id, consumer=a.consumer, provider=a.provider,
                due_at=a.due_at, working_days_late=late))
            return
        awaiting = a.awaiting
        assert awaiting is not None
        await self.notices.notify(connection, COORDINATION, AgreementStepEscalated(
            agreement_id=a.id, contract_id=a.contract_id, consumer=a.consumer, provider=a.provider, late=awaiting,
            status=a.status, due_at=a.due_at, working_days_late=late))


def _new_id() -> str:
    return f"AGR-{uuid.uuid4().hex[:12].upper()}"


def _decided_now(agreement: Agreement, now: datetime) -> dict[str, Any]:
    return {"decided_at": now}

