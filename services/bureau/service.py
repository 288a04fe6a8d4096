"""The bureau's service: case intake, what the enterprise hands in later, the handlers that move a case on as
opinions, verifications of approvals on commitment and the coordination office's decisions come in, what the
departments' reviews wait for, the answers to sharing requests for the data it provides, and the deadline watch."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

import asyncpg

from base import tokens
from base.calendar import WorkingDayCalendar
from base.clock import Clock
from base.settings import Settings
from contracts import bureau_v1
from contracts.base import Event
from contracts.bureau import CommitmentVerified, DataAwaited, DataWaitEnded, OpinionIssued, Project
from contracts.coordination import ConflictResolved
from contracts.departments import BUREAU, COORDINATION
from contracts.exchange import AgreementChange, AgreementRequested
from services.bureau import repository, sharing
from services.bureau.catalogue import ServiceCatalogue, load_catalogue
from services.bureau.model import Case, CaseApplication, CaseStateError, CaseStatus, DataWait, NotOurRequest
from services.bureau.repository import Cases, PgCases
from services.kit.agreements import Agreements, HttpAgreements, answer
from services.kit.due import RETRY_SECONDS, WhenDue, until_due
from services.kit.service import Context, DepartmentService

log = logging.getLogger("concord.bureau")

AGENTS = ("王芳", "李强", "张伟", "刘洋", "陈静")  # the agency team (代办员)
AGENT_LOAD_SECONDS = 1.0  # how old (real time) the count of the agents' open cases may be when a case is assigned
CASE_TOKEN = "case"  # the prefix of applicants' case tokens
LEFT_TO_OFFICERS = "officers"  # a sharing request no review waits for: the bureau's rules leave it to its officers


class UnknownCase(KeyError):
    pass


class CaseUnit(Protocol):
    """What the bureau's handlers work on: the cases, and what they publish (once the unit commits)."""

    cases: Cases

    async def publish(self, event: Event) -> str: ...


class PgCaseUnit:
    def __init__(self, connection: asyncpg.Connection, publish: Callable[[Event], Awaitable[str]]) -> None:
        self.cases: Cases = PgCases(connection)
        self._publish = publish

    async def publish(self, event: Event) -> str:
        return await self._publish(event)


class AgentLoad:
    """Whom a new case goes to: the agent with the fewest open cases. They are counted in PostgreSQL at most once every
    ``max_age`` seconds of real time (the count costs about a millisecond for every thousand cases open), and each
    case assigned since is added at once, so that a burst of submissions is spread over the team; a case that ended
    since is seen at the next count."""

    def __init__(self, count: Callable[[], Awaitable[dict[str, int]]], max_age: float = AGENT_LOAD_SECONDS,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.count = count
        self.max_age = max_age
        self.now = now
        self.busy: dict[str, int] = {}
        self.counted_at: float | None = None

    async def least_busy(self) -> str:
        if self.counted_at is None or self.now() - self.counted_at >= self.max_age:
            self.busy = dict(await self.count())
            self.counted_at = self.now()
        agent = min(AGENTS, key=lambda a: self.busy.get(a, 0))
        self.busy[agent] = self.busy.get(agent, 0) + 1
        return agent


class Bureau:
    def __init__(self, settings: Settings, clock: Clock, catalogue: ServiceCatalogue | None = None,
                 agreements: Agreements | None = None) -> None:
        self.service = DepartmentService(BUREAU, settings, clock)
        self.catalogue = catalogue or load_catalogue()
        self.calendar = WorkingDayCalendar()
        self.agreements: Agreements = agreements or HttpAgreements(settings)
        self.scale = settings.response_scale
        self.due = WhenDue(self.service, "deadline watch")
        self.agents = AgentLoad(lambda: repository.open_cases_by_agent(self.service.pool))
        self.service.handles(OpinionIssued)(self.on_opinion)
        self.service.handles(bureau_v1.OpinionIssued)(self.on_first_opinion)
        self.service.handles(ConflictResolved)(self.on_resolution)
        self.service.handles(CommitmentVerified)(self.on_verification)
        self.service.handles(DataAwaited)(self.on_data_awaited)
        self.service.handles(DataWaitEnded)(self.on_data_wait_ended)
        self.service.handles(AgreementRequested)(self.on_sharing_request)

    @property
    def clock(self) -> Clock:
        return self.service.clock

    def _unit(self, connection: asyncpg.Connection) -> CaseUnit:
        return PgCaseUnit(connection, lambda event: self.service.outbox.add(connection, event))

    async def _store(self, unit: CaseUnit, case: Case, events: list[Event]) -> None:
        await unit.cases.save(case, case.next_check(self.calendar))
        for event in events:
            await unit.publish(event)

    async def submit(self, application: CaseApplication, key: str | None = None) -> tuple[Case, str, bool]:
        """Accept a case: assign the least busy agent, open its first stage, publish what follows. Returns the
        case, the applicant's token for it (shown once; only its salted hash is kept) and whether it is new. A
        submission sent again with the ``key`` of an earlier one (its answer was lost) opens nothing: it gets the
        case the first one opened, with a new token (the one lost no longer opens it)."""
        async with self.service.pool.acquire() as connection, connection.transaction():
            if key is not None:
                await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", key)
                earlier = await connection.fetchval("SELECT case_id FROM bureau.submissions WHERE idempotency_key = $1",
                                                    key)
                if earlier is not None:
                    case = await repository.load(connection, earlier)
                    assert case is not None  # the key's row references it
                    return case, await self._token(connection, case.case_id, replace=True), False
            agent = await self.agents.least_busy()
            case, events = Case.open(application, agent, self.clock.now(), self.catalogue, self.calendar)
            await self._store(self._unit(connection), case, events)
            token = await self._token(connection, case.case_id)
            if key is not None:
                await connection.execute("INSERT INTO bureau.submissions (idempotency_key, case_id) VALUES ($1, $2)",
                                         key, case.case_id)
        self.service.committed()
        return case, token, True

    @staticmethod
    async def _token(connection: asyncpg.Connection, case_id: str, replace: bool = False) -> str:
        """A new applicant's token for the case (replacing the one it had, when ``replace``)."""
        token = tokens.issue(CASE_TOKEN)
        if replace:
            await connection.execute("DELETE FROM bureau.case_tokens WHERE case_id = $1", case_id)
        await connection.execute(
            "INSERT INTO bureau.case_tokens (token_id, case_id, token_salt, token_hash) VALUES ($1, $2, $3, $4)",
            token.id, case_id, token.salt, token.hash,
        )
        return token.token

    async def case_of_token(self, token: str) -> str | None:
        """The case an applicant's token opens, if it is one."""
        presented = tokens.parse(token)
        if presented is None or presented.kind != CASE_TOKEN:
            return None
        row = await self.service.pool.fetchrow(
            "SELECT case_id, token_salt, token_hash FROM bureau.case_tokens WHERE token_id = $1", presented.id)
        if row is None or not presented.matches(bytes(row["token_salt"]), bytes(row["token_hash"])):
            return None
        return str(row["case_id"])

    async def case(self, case_id: str) -> Case | None:
        async with self.service.pool.acquire() as connection:
            return await repository.load(connection, case_id)

    async def listed(self, ids: list[str], statuses: list[CaseStatus], agent: str | None, stuck: bool, limit: int,
                     offset: int, applicant: bool = False) -> tuple[list[Case], int]:
        """A page of cases, newest first, with how many match: among those named, of the statuses and agent given,
        (``applicant``) only those waiting for their applicant, and (``stuck``) only those that something holds up
        now."""
        async with self.service.pool.acquire() as connection:
            if not stuck:
                ids, total = await repository.find(connection, ids, statuses, agent, limit, offset, applicant)
                found = {c.case_id: c for c in await repository.load_many(connection, ids)}
                return [found[i] for i in ids if i in found], total
            live = [s for s in statuses or list(CaseStatus) if not s.ended]
            if not live:
                return [], 0  # an ended case holds nothing up
            now = self.clock.now()
            ids, _ = await repository.find(connection, ids, live, agent, None, 0, applicant, held_at=now)
            held = [c for c in await repository.load_many(connection, ids) if c.stuck(now)]
        held.sort(key=lambda c: (c.submitted_at, c.case_id), reverse=True)
        return held[offset:offset + limit], len(held)

    async def _change(self, case_id: str, change: Callable[[Case], list[Event]]) -> Case:
        """Apply an enterprise's action to a case, in one transaction with what it publishes."""
        async with self.service.pool.acquire() as connection, connection.transaction():
            unit = self._unit(connection)
            case = await unit.cases.load(case_id, for_update=True)
            if case is None:
                raise UnknownCase(case_id)
            events = change(case)
            await self._store(unit, case, events)
        self.service.committed()
        return case

    async def provide_supplement(self, case_id: str, documents: list[str]) -> Case:
        return await self._change(case_id, lambda c: c.provide_supplement(documents, self.clock.now(), self.calendar))

    async def deliver_promised(self, case_id: str, documents: list[str]) -> Case:
        return await self._change(
            case_id, lambda c: c.deliver_promised(documents, self.clock.now(), self.catalogue, self.calendar))

    async def resubmit(self, case_id: str, project: Project) -> Case:
        return await self._change(
            case_id, lambda c: c.resubmit(project, self.clock.now(), self.catalogue, self.calendar))

    # --- what the departments and the coordination office send -------------------------------------------

    async def on_opinion(self, event: OpinionIssued, ctx: Context) -> None:
        await self.opinion(event, ctx.sender, PgCaseUnit(ctx.connection, ctx.publish), ctx.clock.now())

    async def on_first_opinion(self, event: bureau_v1.OpinionIssued, ctx: Context) -> None:
        """A department that still speaks the first version of the opinion contract (no statutory grounds)."""
        await self.on_opinion(event.upgraded(), ctx)

    async def on_resolution(self, event: ConflictResolved, ctx: Context) -> None:
        await self.resolution(event, ctx.sender, PgCaseUnit(ctx.connection, ctx.publish), ctx.clock.now())

    async def opinion(self, event: OpinionIssued, sender: str, unit: CaseUnit, now: datetime) -> None:
        """A department's opinion on one of its requests moves the case on; one on a request that is not the
        sender's, or on no case, changes nothing."""
        case = await unit.cases.load(event.case_id, for_update=True)
        if case is None:
            log.warning("opinion %s for unknown case %s", event.request_id, event.case_id)
            return
        try:
            events = case.record_opinion(event.request_id, sender, event.decision, event.conditions,
                                         event.reasons, event.grounds, now, self.catalogue, self.calendar)
        except NotOurRequest as exc:
            log.warning("%s", exc)
            return
        await self._store(unit, case, events)

    async def resolution(self, event: ConflictResolved, sender: str, unit: CaseUnit, now: datetime) -> None:
        """The coordination office's decision on a conflict; only the office may send one."""
        if sender != COORDINATION:
            log.warning("conflict resolution from %s ignored", sender)
            return
        case = await unit.cases.load(event.case_id, for_update=True)
        if case is None:
            return
        events = case.resolve_conflict(event.conflict_id, event.resolution, event.conditions, event.reasons,
                                       now, self.catalogue, self.calendar)
        await self._store(unit, case, events)

    async def on_verification(self, event: CommitmentVerified, ctx: Context) -> None:
        await self.verification(event, ctx.sender, PgCaseUnit(ctx.connection, ctx.publish), ctx.clock.now())

    async def verification(self, event: CommitmentVerified, sender: str, unit: CaseUnit, now: datetime) -> None:
        """A department verified an approval given on commitment: passed, it stands; failed, it is revoked."""
        case = await unit.cases.load(event.case_id, for_update=True)
        if case is None:
            log.warning("verification %s for unknown case %s", event.request_id, event.case_id)
            return
        try:
            events = case.verify_commitment(event.request_id, sender, event.outcome, event.findings, now,
                                            self.catalogue, self.calendar)
        except NotOurRequest as exc:
            log.warning("%s", exc)
            return
        await self._store(unit, case, events)

    async def on_data_awaited(self, event: DataAwaited, ctx: Context) -> None:
        await self.data_awaited(event, ctx.sender, PgCaseUnit(ctx.connection, ctx.publish))
        if event.provider == BUREAU:
            # The bureau's own request: if its rules gave up waiting to learn which review needs it (the review said
            # so late: a busy or restarting department) and left it to the officers, it is theirs again, at once.
            await ctx.connection.execute(
                "UPDATE bureau.sharing_requests SET decided_at = NULL, outcome = NULL, decide_at = $2"
                " WHERE agreement_id = $1 AND outcome = $3", event.agreement_id, self.clock.now(), LEFT_TO_OFFICERS)

    async def data_awaited(self, event: DataAwaited, sender: str, unit: CaseUnit) -> None:
        """A department's review of a case waits for another department's data: the case shows it."""
        case = await unit.cases.load(event.case_id, for_update=True)
        if case is None:
            return
        try:
            case.data_awaited(event.request_id, sender, DataWait(
                event.agreement_id, event.provider, event.contract_id, event.fields, event.awaited_at))
        except NotOurRequest as exc:
            log.warning("%s", exc)
            return
        await self._store(unit, case, [])

    async def on_data_wait_ended(self, event: DataWaitEnded, ctx: Context) -> None:
        await self.data_wait_ended(event, ctx.sender, PgCaseUnit(ctx.connection, ctx.publish))

    async def data_wait_ended(self, event: DataWaitEnded, sender: str, unit: CaseUnit) -> None:
        case = await unit.cases.load(event.case_id, for_update=True)
        if case is None:
            return
        try:
            case.data_wait_ended(event.request_id, sender, event.agreement_id, event.outcome, event.ground,
                                 event.escalated, event.ended_at)
        except NotOurRequest as exc:
            log.warning("%s", exc)
            return
        await self._store(unit, case, [])

    # --- the bureau as a provider of data ---------------------------------------------------------------

    async def on_sharing_request(self, request: AgreementRequested, ctx: Context) -> None:
        """A department asks for data the bureau provides: answered by the bureau's rules at its pace."""
        if request.provider != BUREAU:
            return
        now = ctx.clock.now()
        decide_at = self.calendar.add_working_time(now, sharing.PACE.days(request.agreement_id) * self.scale)
        await ctx.connection.execute(
            "INSERT INTO bureau.sharing_requests (agreement_id, request, received_at, decide_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (agreement_id) DO NOTHING",
            request.agreement_id, request.model_dump_json(), now, decide_at)

    async def answer_sharing_requests(self) -> int:
        """Answer, by the bureau's rules, the sharing requests due now; each in its own transaction."""
        now = self.clock.now()
        answered = 0
        async with self.service.pool.acquire() as connection:
            due = await connection.fetch(
                "SELECT agreement_id FROM bureau.sharing_requests WHERE decided_at IS NULL AND decide_at <= $1"
                " ORDER BY decide_at LIMIT 100", now)
            for row in due:
                async with connection.transaction():
                    found = await connection.fetchrow(
                        "SELECT request, received_at FROM bureau.sharing_requests WHERE agreement_id = $1"
                        " AND decided_at IS NULL"
                        " FOR UPDATE SKIP LOCKED", row["agreement_id"])
                    if found is None:
                        continue
                    request = AgreementRequested.model_validate_json(found["request"])
                    case_id = await connection.fetchval(
                        "SELECT case_id FROM bureau.requests WHERE data_waits @> $1::jsonb",
                        json.dumps([{"agreement_id": request.agreement_id}]))
                    case = await repository.load(connection, case_id) if case_id else None
                    if case is None:
                        if self.calendar.working_days_between(found["received_at"], now) < sharing.CASE_GRACE_DAYS:
                            await connection.execute(  # the review waiting for it may not have said so yet
                                "UPDATE bureau.sharing_requests SET decide_at = $2 WHERE agreement_id = $1",
                                request.agreement_id, self.calendar.add_working_time(now, sharing.LOOK_AGAIN_DAYS))
                        else:  # no review waits for it: the bureau's officers answer it
                            await connection.execute(
                                "UPDATE bureau.sharing_requests SET decided_at = $2, outcome = $3 WHERE agreement_id"
                                " = $1", request.agreement_id, now, LEFT_TO_OFFICERS)
                        continue
                    decided = sharing.decide(request, case)
                    await answer(self.agreements, BUREAU, request.agreement_id, decided)
                    outcome = AgreementChange.APPROVED if decided.approves else \
                        AgreementChange.COUNTERED if decided.counters else AgreementChange.REJECTED
                    await connection.execute(
                        "UPDATE bureau.sharing_requests SET decided_at = $2, outcome = $3, reasons = $4"
                        " WHERE agreement_id = $1", request.agreement_id, now, outcome.value, decided.explanation)
                    answered += 1
        return answered

    async def watch(self, stop: asyncio.Event) -> None:
        """Promises, suspensions, reminders and escalations as the (accelerated) clock moves, and the answers to the
        sharing requests the bureau provides data for: each looked at when it falls due, or when the bureau commits
        something that may change that; no polling between (``services.kit.due``)."""
        await self.due.run(self.look, stop)

    async def look(self) -> float:
        """One look: the cases whose time has come checked and the sharing requests due answered, if any; returns
        the real seconds until the next look."""
        async with self.service.pool.acquire() as connection:
            due = await repository.next_due(connection)
        if due is None or due > self.clock.now():
            return until_due(due, self.clock)
        done = await self.check_due() + await self.answer_sharing_requests()
        return 0.0 if done else RETRY_SECONDS

    async def check_due(self) -> int:
        """The cases whose time has come, checked each in its own transaction; returns how many were."""
        now = self.clock.now()
        async with self.service.pool.acquire() as connection:
            due = await repository.due_for_check(connection, now)
        checked = 0
        for case_id in due:
            try:
                await self._change(case_id, lambda c: c.check_time(now, self.calendar))
                checked += 1
            except Exception:  # one case's fault must not hold up the others' deadlines
                log.exception("deadline watch: case %s failed", case_id)
        return checked


__all__ = ["Bureau", "CaseStateError", "UnknownCase"]
