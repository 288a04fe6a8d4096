"""A department's desk: the tasks the exchange brings it, decided either by its rules at the department's own
pace, or by its officers through the API and the command line (human-in-the-loop mode).

A reviewing department's rules live in its own module as a ``Reviewer`` (the items it decides, its pace,
how often it asks for supplements). The coordination office decides conflicts between departments."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg

from base.calendar import WorkingDayCalendar
from base.clock import Clock
from base.settings import Settings
from contracts.base import Event
from contracts.bureau import (
    CaseResumed,
    CaseSubmitted,
    CaseSuspended,
    ConflictRaised,
    DeadlineEscalated,
    Decision,
    OpinionIssued,
    OpinionRequested,
    SiteSurveyArranged,
    SupplementProvided,
)
from contracts.coordination import ConflictResolved, Resolution
from contracts.exchange import AgreementEscalated
from contracts.market import BusinessRegistration
from services.kit.service import Context, DepartmentService

log = logging.getLogger("concord.desk")
WORK_SECONDS = 0.1
RE_REVIEW_SHARE = 0.4  # a second look after a supplement takes this share of a first review


class Mode(StrEnum):
    RULES = "rules"
    HUMAN = "human"


@dataclass(frozen=True)
class Pace:
    """How long a department takes: a log-normal number of working days around its median, and how often
    a first review asks for a supplement. Drawn from the task id, so a run can be repeated."""

    median_days: float
    spread: float = 0.5
    supplement_rate: float = 0.0

    def _uniform(self, key: str, salt: str) -> float:
        digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
        return (int.from_bytes(digest[:8], "big") + 0.5) / 2**64

    def days(self, key: str) -> float:
        u1, u2 = self._uniform(key, "a"), self._uniform(key, "b")
        normal = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
        return self.median_days * math.exp(self.spread * normal)

    def asks_supplement(self, key: str) -> bool:
        return self._uniform(key, "supplement") < self.supplement_rate


@dataclass(frozen=True)
class Opinion:
    decision: Decision
    conditions: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CaseFile:
    """What the department knows of a case besides the request: the survey, the business registration."""

    case_id: str
    survey_at: datetime | None
    registration: dict[str, Any] | None


@dataclass(frozen=True)
class Reviewer:
    """A reviewing department's rules: who signs, its pace, its decisions, what it asks to be supplemented."""

    code: str
    officer: str
    pace: Pace
    decide: Callable[[OpinionRequested, CaseFile], Opinion]
    supplement_reason: Callable[[OpinionRequested], str]
    registration: Callable[[CaseSubmitted, datetime], BusinessRegistration] | None = None


class Desk(ABC):
    """The machinery every desk shares: tasks in the department's schema, the pace, the mode."""

    def __init__(self, code: str, pace: Pace, settings: Settings, clock: Clock) -> None:
        self.code = code
        self.pace = pace
        self.service = DepartmentService(code, settings, clock)
        self.calendar = WorkingDayCalendar()
        self.scale = self.service.settings.response_scale

    @property
    def clock(self) -> Clock:
        return self.service.clock

    def ready_at(self, task_id: str, start: datetime, share: float = 1.0) -> datetime:
        return self.calendar.add_working_time(start, self.pace.days(task_id) * self.scale * share)

    async def add_task(self, ctx: Context, task_id: str, kind: str, case_id: str, item_code: str, payload: Event,
                       decide_at: datetime, due_at: datetime | None = None) -> None:
        file = await ctx.connection.fetchrow(f"SELECT * FROM {self.code}.case_files WHERE case_id = $1", case_id)
        status = "on_hold" if file is not None and file["suspended"] else "open"
        await ctx.connection.execute(
            f"INSERT INTO {self.code}.tasks (task_id, kind, case_id, item_code, payload, status, received_at,"
            " decide_at, due_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (task_id) DO NOTHING",
            task_id, kind, case_id, item_code, payload.model_dump_json(), status, ctx.clock.now(), decide_at, due_at,
        )

    async def mode(self) -> Mode:
        return Mode(await self.service.pool.fetchval(f"SELECT mode FROM {self.code}.desk"))

    async def set_mode(self, mode: Mode) -> None:
        await self.service.pool.execute(f"UPDATE {self.code}.desk SET mode = $1", mode.value)

    async def tasks(self, status: str | None = None) -> list[dict[str, Any]]:
        rows = await self.service.pool.fetch(
            f"SELECT * FROM {self.code}.tasks WHERE $1::text IS NULL OR status = $1 ORDER BY received_at", status
        )
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]

    async def work(self, stop: asyncio.Event) -> None:
        """Decide what is due by the rules, unless the officers decide (human mode)."""
        while not stop.is_set():
            try:
                if await self.mode() is Mode.RULES:
                    await self.decide_due()
            except Exception:
                log.exception("%s: deciding failed; retrying", self.code)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WORK_SECONDS)

    async def decide_due(self) -> int:
        decided = 0
        async with self.service.pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                f"SELECT * FROM {self.code}.tasks WHERE status = 'open' AND decide_at <= $1"
                " ORDER BY decide_at LIMIT 100 FOR UPDATE SKIP LOCKED", self.clock.now(),
            )
            for row in rows:
                await self.apply_rules(connection, row)
                decided += 1
        if decided:
            self.service.outbox.wake()
        return decided

    @abstractmethod
    async def apply_rules(self, connection: asyncpg.Connection, task: asyncpg.Record) -> None:
        """Decide one task by the desk's rules, publishing the decision through the outbox."""

    async def close_task(self, connection: asyncpg.Connection, task_id: str, status: str, decision: str,
                         decided_by: str) -> None:
        await connection.execute(
            f"UPDATE {self.code}.tasks SET status = $2, decision = $3, decided_by = $4, decided_at = $5"
            " WHERE task_id = $1", task_id, status, decision, decided_by, self.clock.now(),
        )

    async def _hold(self, ctx: Context, case_id: str, suspended: bool) -> None:
        await ctx.connection.execute(
            f"INSERT INTO {self.code}.case_files (case_id, suspended) VALUES ($1, $2)"
            " ON CONFLICT (case_id) DO UPDATE SET suspended = $2", case_id, suspended,
        )
        before, after = ("open", "on_hold") if suspended else ("on_hold", "open")
        await ctx.connection.execute(
            f"UPDATE {self.code}.tasks SET status = $3, decide_at = greatest(decide_at, $4)"
            " WHERE case_id = $1 AND status = $2", case_id, before, after, ctx.clock.now(),
        )


class ReviewingDesk(Desk):
    """A department that gives opinions on approval items."""

    def __init__(self, reviewer: Reviewer, settings: Settings, clock: Clock) -> None:
        super().__init__(reviewer.code, reviewer.pace, settings, clock)
        self.reviewer = reviewer
        handles = self.service.handles
        handles(OpinionRequested)(self.on_request)
        handles(SupplementProvided)(self.on_supplement)
        handles(SiteSurveyArranged)(self.on_survey)
        handles(CaseSuspended)(self.on_suspended)
        handles(CaseResumed)(self.on_resumed)
        if reviewer.registration is not None:
            handles(CaseSubmitted)(self.on_case_submitted)
        else:
            handles(BusinessRegistration)(self.on_registration)

    async def on_request(self, request: OpinionRequested, ctx: Context) -> None:
        survey = await ctx.connection.fetchval(
            f"SELECT survey_at FROM {self.code}.case_files WHERE case_id = $1", request.case_id)
        start = max(ctx.clock.now(), survey) if survey else ctx.clock.now()  # not before the joint site survey
        await self.add_task(ctx, request.request_id, "opinion", request.case_id, request.item_code, request,
                            self.ready_at(request.request_id, start), request.due_at)

    async def on_supplement(self, supplement: SupplementProvided, ctx: Context) -> None:
        await ctx.connection.execute(
            f"UPDATE {self.code}.tasks SET status = 'open', round = round + 1, due_at = $2, decide_at = $3,"
            " decision = NULL WHERE task_id = $1 AND status = 'awaiting_supplement'",
            supplement.request_id, supplement.due_at,
            self.ready_at(f"{supplement.request_id}/re-review", ctx.clock.now(), RE_REVIEW_SHARE),
        )

    async def on_survey(self, survey: SiteSurveyArranged, ctx: Context) -> None:
        await ctx.connection.execute(
            f"INSERT INTO {self.code}.case_files (case_id, survey_at) VALUES ($1, $2)"
            " ON CONFLICT (case_id) DO UPDATE SET survey_at = $2", survey.case_id, survey.survey_at,
        )

    async def on_suspended(self, event: CaseSuspended, ctx: Context) -> None:
        await self._hold(ctx, event.case_id, suspended=True)

    async def on_resumed(self, event: CaseResumed, ctx: Context) -> None:
        await self._hold(ctx, event.case_id, suspended=False)

    async def on_registration(self, registration: BusinessRegistration, ctx: Context) -> None:
        await ctx.connection.execute(
            f"INSERT INTO {self.code}.case_files (case_id, registration) VALUES ($1, $2)"
            " ON CONFLICT (case_id) DO UPDATE SET registration = $2",
            registration.case_id, registration.model_dump_json(),
        )

    async def on_case_submitted(self, case: CaseSubmitted, ctx: Context) -> None:
        """Market regulation answers every new case with the applicant's business registration."""
        assert self.reviewer.registration is not None
        await ctx.publish(self.reviewer.registration(case, ctx.clock.now()))

    async def apply_rules(self, connection: asyncpg.Connection, task: asyncpg.Record) -> None:
        request = OpinionRequested.model_validate_json(task["payload"])
        if task["round"] == 1 and self.pace.asks_supplement(task["task_id"]):
            opinion = Opinion(Decision.SUPPLEMENT_REQUESTED, reasons=[self.reviewer.supplement_reason(request)])
        else:
            file = await connection.fetchrow(f"SELECT * FROM {self.code}.case_files WHERE case_id = $1",
                                             request.case_id)
            case_file = CaseFile(request.case_id, file["survey_at"] if file else None,
                                 json.loads(file["registration"]) if file and file["registration"] else None)
            opinion = self.reviewer.decide(request, case_file)
        await self.give_opinion(connection, task["task_id"], request, opinion, self.reviewer.officer)

    async def give_opinion(self, connection: asyncpg.Connection, task_id: str, request: OpinionRequested,
                           opinion: Opinion, officer: str) -> None:
        await self.service.outbox.add(connection, OpinionIssued(
            request_id=request.request_id, case_id=request.case_id, item_code=request.item_code,
            decision=opinion.decision, conditions=opinion.conditions, reasons=opinion.reasons, officer=officer,
            decided_at=self.clock.now(),
        ))
        status = "awaiting_supplement" if opinion.decision is Decision.SUPPLEMENT_REQUESTED else "decided"
        await self.close_task(connection, task_id, status, opinion.decision.value, officer)

    async def decide_by_officer(self, task_id: str, opinion: Opinion, officer: str) -> None:
        """An officer's decision (human-in-the-loop), on a task still open."""
        async with self.service.pool.acquire() as connection, connection.transaction():
            task = await connection.fetchrow(
                f"SELECT * FROM {self.code}.tasks WHERE task_id = $1 FOR UPDATE", task_id)
            if task is None or task["status"] not in ("open", "on_hold"):
                raise TaskNotOpen(task_id)
            await self.give_opinion(connection, task_id, OpinionRequested.model_validate_json(task["payload"]),
                                    opinion, officer)
        self.service.outbox.wake()


@dataclass(frozen=True)
class Arbiter:
    """The coordination office's rules for conflicts between departments' opinions."""

    officer: str
    pace: Pace
    resolve: Callable[[dict[str, Any]], tuple[Resolution, list[str], list[str]]]


class CoordinationDesk(Desk):
    """The joint meeting's office: decides conflicts, and takes up escalated deadlines and sharing requests."""

    def __init__(self, arbiter: Arbiter, settings: Settings, clock: Clock) -> None:
        super().__init__("coordination", arbiter.pace, settings, clock)
        self.arbiter = arbiter
        self.service.handles(ConflictRaised)(self.on_conflict)
        self.service.handles(DeadlineEscalated)(self.on_late_opinion)
        self.service.handles(AgreementEscalated)(self.on_late_agreement)

    async def on_conflict(self, conflict: ConflictRaised, ctx: Context) -> None:
        await self.add_task(ctx, conflict.conflict_id, "conflict", conflict.case_id, f"stage-{conflict.stage}",
                            conflict, self.ready_at(conflict.conflict_id, ctx.clock.now()))

    async def on_late_opinion(self, escalation: DeadlineEscalated, ctx: Context) -> None:
        await self.note(ctx, f"late:{escalation.request_id}", escalation.case_id, escalation.item_code, escalation)

    async def on_late_agreement(self, escalation: AgreementEscalated, ctx: Context) -> None:
        await self.note(ctx, f"late:{escalation.agreement_id}", escalation.agreement_id, escalation.contract_id,
                        escalation)

    async def note(self, ctx: Context, task_id: str, case_id: str, subject: str, event: Event) -> None:
        """An escalation is taken up: on the office's list for the joint meeting, nothing to decide here."""
        now = ctx.clock.now()
        await ctx.connection.execute(
            "INSERT INTO coordination.tasks (task_id, kind, case_id, item_code, payload, status, received_at,"
            " decide_at) VALUES ($1, 'escalation', $2, $3, $4, 'noted', $5, $5) ON CONFLICT DO NOTHING",
            task_id, case_id, subject, event.model_dump_json(), now,
        )

    async def apply_rules(self, connection: asyncpg.Connection, task: asyncpg.Record) -> None:
        resolution, conditions, reasons = self.arbiter.resolve(json.loads(task["payload"]))
        await self.give_resolution(connection, task, resolution, conditions, reasons, "joint meeting rules")

    async def give_resolution(self, connection: asyncpg.Connection, task: asyncpg.Record, resolution: Resolution,
                              conditions: list[str], reasons: list[str], decided_by: str) -> None:
        await self.service.outbox.add(connection, ConflictResolved(
            conflict_id=task["task_id"], case_id=task["case_id"], resolution=resolution, conditions=conditions,
            reasons=reasons, decided_by=decided_by, decided_at=self.clock.now(),
        ))
        await self.close_task(connection, task["task_id"], "decided", resolution.value, decided_by)

    async def decide_by_officer(self, task_id: str, resolution: Resolution, conditions: list[str],
                                reasons: list[str], officer: str) -> None:
        async with self.service.pool.acquire() as connection, connection.transaction():
            task = await connection.fetchrow("SELECT * FROM coordination.tasks WHERE task_id = $1 FOR UPDATE", task_id)
            if task is None or task["kind"] != "conflict" or task["status"] != "open":
                raise TaskNotOpen(task_id)
            await self.give_resolution(connection, task, resolution, conditions, reasons, officer)
        self.service.outbox.wake()


class TaskNotOpen(KeyError):
    """No open task with this id at this desk."""

