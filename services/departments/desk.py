"""A department's desk: the tasks the exchange brings it, decided either by its rules at the department's own
pace, or by its officers through the API and the command line (human-in-the-loop mode). A review whose rules need
another department's conditional data asks for it at the exchange (``Agreements``) and waits for the answer (a
counter-offer it accepts or declines by its rules, a refusal it cannot do without it escalates to the coordination
office); a providing department answers the requests it receives at its own pace; approvals given on commitment are
verified; the coordination office decides the refusals escalated to it at its pace, by its rules or its officers.

The handlers work on a ``DeskUnit`` (the desk's store, what it publishes, and a savepoint), so that the fast
tests run them on an in-memory one. A reviewing department's rules live in its own module as a ``Reviewer``;
the coordination office's as an ``Arbiter``. Tasks and their transitions are in ``tasks``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from base.calendar import WorkingDayCalendar
from base.clock import Clock
from base.settings import Settings
from contracts import bureau_v1
from contracts.base import Event
from contracts.bureau import (
    CaseResumed,
    CaseSubmitted,
    CaseSuspended,
    CommitmentApproved,
    CommitmentVerified,
    ConflictRaised,
    DataAwaited,
    DataOutcome,
    DataWaitEnded,
    DeadlineEscalated,
    Decision,
    OpinionIssued,
    OpinionRequested,
    SiteSurveyArranged,
    SupplementProvided,
    Verification,
)
from contracts.coordination import ConflictResolved, Resolution
from contracts.departments import COORDINATION
from contracts.exchange import (
    AgreementChange,
    AgreementChanged,
    AgreementEscalated,
    AgreementRequested,
    AgreementStepEscalated,
    RefusalEscalated,
)
from contracts.market import BusinessRegistration
from services.departments.rules import Arbiter, Opinion, Pace, Reviewer, SharingRefusal, accepts_offer, escalates
from services.departments.store import DeskStore, Mode, PgDeskStore
from services.departments.tasks import OFFICERS_DECIDE, Task, TaskKind, TaskNotOpen, TaskStatus
from services.kit.agreements import (
    Agreements,
    ExchangeUnavailable,
    HttpAgreements,
    SharingAnswer,
    SharingRequest,
    answer,
)
from services.kit.due import RETRY_SECONDS, WhenDue, until_due
from services.kit.service import Context, DepartmentService

log = logging.getLogger("concord.desk")
DUE_PER_ROUND = 100
DUE_PER_LOOK = 10  # tasks a round takes at a time: what it decides before its time is up, not a hundred it then leaves
# A round of decisions commits once it has taken this long (real time), whatever is still due: what it decided goes
# out with its commit, and the rest is the next round's, at once. A rule may call the exchange's API (a request for
# data), and a hundred such calls under load had kept a round's first decisions unsent for seconds. Not much less:
# rounds of 50 ms made the 10,000-case demo 16 % slower (1,611 s against 1,393 without a bound; 1,310 with 1 s).
ROUND_SECONDS = 1.0
RE_REVIEW_SHARE = 0.4  # a second look after a supplement takes this share of a first review
DATA_REVIEW_SHARE = 0.3  # the review, once the data it waited for is decided, takes this share of a first one
VERIFY_SHARE = 0.6  # a verification of an approval on commitment takes this share of a first review
# Data a review asks for is asked for its case alone (the agreement ends with the case), and for this many working
# days at most: the rest of the review with room to spare.
DATA_VALID_DAYS = 20
# The changes of an agreement that answer the data a review waits for: it comes, it is withheld, or the consumer has
# a move to make (a counter-offer to accept or decline, a refusal to escalate or bear).
SHARED_BY = frozenset({AgreementChange.APPROVED, AgreementChange.ACCEPTED, AgreementChange.PROCEEDED})
WITHHELD_BY = frozenset({AgreementChange.UPHELD, AgreementChange.DECLINED})
ANSWERS = SHARED_BY | WITHHELD_BY | {AgreementChange.REJECTED, AgreementChange.COUNTERED}


@dataclass(frozen=True)
class VerificationDecision:
    outcome: Verification
    findings: list[str]


OfficerDecision = Opinion | SharingAnswer | VerificationDecision


class WrongDecision(ValueError):
    """A decision of another kind than the task's."""


class DeskUnit(Protocol):
    """What a desk's handler works on: the store, what it publishes (once the unit commits), and a savepoint
    (a part that fails is undone alone)."""

    store: DeskStore

    async def publish(self, event: Event) -> str: ...

    def savepoint(self) -> AbstractAsyncContextManager[None]: ...


class PgDeskUnit:
    def __init__(self, connection: asyncpg.Connection, schema: str, publish: Callable[[Event], Awaitable[str]]) -> None:
        self.connection = connection
        self.store: DeskStore = PgDeskStore(connection, schema)
        self._publish = publish

    async def publish(self, event: Event) -> str:
        return await self._publish(event)

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        async with self.connection.transaction():
            yield


class Desk(ABC):
    """The machinery every desk shares: tasks at the department's pace, the mode, rules that may fail."""

    def __init__(self, code: str, pace: Pace, settings: Settings, clock: Clock) -> None:
        self.code = code
        self.pace = pace
        self.service = DepartmentService(code, settings, clock)
        self.calendar = WorkingDayCalendar()
        self.scale = settings.response_scale
        self.due = WhenDue(self.service, "desk deciding by the rules")

    @property
    def clock(self) -> Clock:
        return self.service.clock

    def on(self, model: type[Event], handler: Callable[[Any, DeskUnit, datetime], Awaitable[None]]) -> None:
        """Handle a contract with a handler that works on the desk's unit."""

        async def handle(event: Any, ctx: Context) -> None:
            await handler(event, PgDeskUnit(ctx.connection, self.code, ctx.publish), ctx.clock.now())

        self.service.handles(model)(handle)

    def ready_at(self, task_id: str, start: datetime, share: float = 1.0) -> datetime:
        return self.calendar.add_working_time(start, self.pace.days(task_id) * self.scale * share)

    async def open_task(self, unit: DeskUnit, task_id: str, kind: TaskKind, case_id: str, item_code: str,
                        payload: Event, now: datetime, decide_at: datetime, due_at: datetime | None = None) -> None:
        file = await unit.store.case_file(case_id)
        await unit.store.add(Task.opened(task_id, kind, case_id, item_code, payload.model_dump(mode="json"), now,
                                         decide_at, due_at, suspended=file.suspended))

    # --- deciding ------------------------------------------------------------------------------------

    async def decide_round(self, unit_of_work: Callable[[], AbstractAsyncContextManager[DeskUnit]],
                           now: datetime) -> int:
        """One round of decisions by the rules (none while the officers decide), in one unit of work: the tasks
        due, together, for ``ROUND_SECONDS`` at most; and only when a rule fails (rarely), the round undone and
        decided again task by task (``decide_due`` alone), so that the failing task parks, or stays due while the
        gateway restarts, and the others are decided. Taking the agreement API's steps again is safe (a request
        carries an idempotency key; a step the gateway finds already taken counts as done)."""
        async def decided(alone: bool) -> int:
            async with unit_of_work() as unit:
                return await self.decide_due(unit, now, alone) if await unit.store.mode() is Mode.RULES else 0

        try:
            return await decided(alone=False)
        except Exception as exc:
            log.info("%s: a rule failed in a round of decisions (%s); deciding it again task by task", self.code,
                     type(exc).__name__)
        return await decided(alone=True)

    async def decide_due(self, unit: DeskUnit, now: datetime, alone: bool = True,
                         budget_seconds: float | None = None) -> int:
        """Decide by the rules the tasks due now, as many as ``budget_seconds`` (``ROUND_SECONDS`` unless given)
        allow, one at least. ``alone``: each in a savepoint of its own, so that a rule that fails parks its task with
        the error (for an officer) and the others are decided. Not alone: all in the unit's transaction, two round
        trips a task fewer, and the first failure raises (``decide_round``)."""
        decided = 0
        ends = time.monotonic() + (ROUND_SECONDS if budget_seconds is None else budget_seconds)
        taken: set[str] = set()  # a task left due (the gateway restarting) is not taken again in this round
        while len(taken) < DUE_PER_ROUND:
            due = await unit.store.due(now, DUE_PER_LOOK)
            fresh = [task for task in due if task.task_id not in taken]
            for task in fresh:
                if decided and time.monotonic() >= ends:
                    return decided
                taken.add(task.task_id)
                decided += await self._decide(task, unit, now, alone)
            if not fresh or len(due) < DUE_PER_LOOK:
                break
        return decided

    async def _decide(self, task: Task, unit: DeskUnit, now: datetime, alone: bool) -> int:
        """One task by the rules (``decide_due``); 1 when decided, else 0."""
        if not alone:
            await self.apply_rules(task, unit, now)
            return 1
        try:
            async with unit.savepoint():
                await self.apply_rules(task, unit, now)
            return 1
        except ExchangeUnavailable as exc:  # the gateway is restarting: the task stays due, tried again
            log.warning("%s: %s; %s is tried again", self.code, exc, task.task_id)
        except Exception as exc:
            log.exception("%s: the rules failed on %s; parked for an officer", self.code, task.task_id)
            await unit.store.save(task.parked(f"{type(exc).__name__}: {exc}"))
        return 0

    @abstractmethod
    async def apply_rules(self, task: Task, unit: DeskUnit, now: datetime) -> None:
        """Decide one task by the desk's rules, publishing the decision."""

    async def decide_by_officer(self, task_id: str, decide: Callable[[Task, DeskUnit, datetime], Awaitable[None]]
                                ) -> None:
        """An officer's decision on a task still open, waiting, or parked."""
        async with self.unit_of_work() as unit:
            task = await unit.store.task(task_id, for_update=True)
            if task is None or task.status not in OFFICERS_DECIDE:
                raise TaskNotOpen(task_id)
            await decide(task, unit, self.clock.now())
        self.service.committed()

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[DeskUnit]:
        """A transaction of the department's database, with what it publishes going to its outbox."""
        async with self.service.pool.acquire() as connection, connection.transaction():
            yield PgDeskUnit(connection, self.code, lambda event: self.service.outbox.add(connection, event))

    # --- the running desk ----------------------------------------------------------------------------

    async def work(self, stop: asyncio.Event) -> None:
        """Decide by the rules each task as it falls due (unless the officers decide): the desk looks when its next
        task is due, or when its department has committed something that may change that (a task opened or resumed,
        the mode set, an officer's decision); no polling between (``services.kit.due``)."""
        await self.due.run(self.look, stop)

    async def look(self) -> float:
        """One look: the tasks due decided by the rules, if any; returns the real seconds until the next look."""
        async with self.service.pool.acquire() as connection:  # one cheap look first: mostly nothing is due
            due = await PgDeskStore(connection, self.code).next_decision()
        if due is None or due > self.clock.now():
            return until_due(due, self.clock)
        decided = await self.decide_round(self.unit_of_work, self.clock.now())
        if decided:
            self.service.outbox.wake()  # what it published; the desk looks again at once anyway
        return 0.0 if decided else RETRY_SECONDS

    async def mode(self) -> Mode:
        async with self.service.pool.acquire() as connection:
            return await PgDeskStore(connection, self.code).mode()

    async def set_mode(self, mode: Mode) -> None:
        async with self.service.pool.acquire() as connection:
            await PgDeskStore(connection, self.code).set_mode(mode)
        self.service.committed()

    async def tasks(self, status: TaskStatus | None, case_id: str | None, limit: int,
                    offset: int) -> tuple[list[Task], int]:
        """A page of the desk's tasks, oldest first, and how many match (``PgDeskStore.page``)."""
        async with self.service.pool.acquire() as connection:
            return await PgDeskStore(connection, self.code).page(status, case_id, limit, offset)

    async def task(self, task_id: str) -> Task | None:
        async with self.service.pool.acquire() as connection:
            return await PgDeskStore(connection, self.code).task(task_id)

    async def hold(self, unit: DeskUnit, case_id: str, suspended: bool, now: datetime) -> None:
        """The case is suspended (or goes on): its open tasks wait (or are open again)."""
        await unit.store.file_suspension(case_id, suspended)
        for task in await unit.store.of_case(case_id):
            changed = task.held() if suspended else task.resumed(now)
            if changed != task:
                await unit.store.save(changed)


class ReviewingDesk(Desk):
    """A department that gives opinions on approval items."""

    def __init__(self, reviewer: Reviewer, settings: Settings, clock: Clock,
                 agreements: Agreements | None = None) -> None:
        super().__init__(reviewer.code, reviewer.pace, settings, clock)
        self.reviewer = reviewer
        self.agreements: Agreements = agreements or HttpAgreements(settings)
        self.on(OpinionRequested, self.on_request)
        self.on(SupplementProvided, self.on_supplement)
        self.on(SiteSurveyArranged, self.on_survey)
        self.on(CaseSuspended, self.on_suspended)
        self.on(CaseResumed, self.on_resumed)
        self.on(CommitmentApproved, self.on_commitment)
        self.on(AgreementRequested, self.on_sharing_request)
        self.on(AgreementChanged, self.on_agreement_changed)
        if reviewer.registration is not None:
            self.on(CaseSubmitted, self.on_case_submitted)
        else:
            self.on(BusinessRegistration, self.on_registration)

    async def on_request(self, request: OpinionRequested, unit: DeskUnit, now: datetime) -> None:
        survey = (await unit.store.case_file(request.case_id)).survey_at
        start = max(now, survey) if survey else now  # not before the joint site survey
        await self.open_task(unit, request.request_id, TaskKind.OPINION, request.case_id, request.item_code, request,
                             now, self.ready_at(request.request_id, start), request.due_at)

    async def on_supplement(self, supplement: SupplementProvided, unit: DeskUnit, now: datetime) -> None:
        task = await unit.store.task(supplement.request_id, for_update=True)
        if task is not None:
            ready = self.ready_at(f"{supplement.request_id}/re-review", now, RE_REVIEW_SHARE)
            await unit.store.save(task.supplemented(supplement.due_at, ready))

    async def on_survey(self, survey: SiteSurveyArranged, unit: DeskUnit, now: datetime) -> None:
        await unit.store.file_survey(survey.case_id, survey.survey_at)

    async def on_suspended(self, event: CaseSuspended, unit: DeskUnit, now: datetime) -> None:
        await self.hold(unit, event.case_id, True, now)

    async def on_resumed(self, event: CaseResumed, unit: DeskUnit, now: datetime) -> None:
        await self.hold(unit, event.case_id, False, now)

    async def on_registration(self, registration: BusinessRegistration, unit: DeskUnit, now: datetime) -> None:
        await unit.store.file_registration(registration.case_id, registration.model_dump(mode="json"))

    async def on_case_submitted(self, case: CaseSubmitted, unit: DeskUnit, now: datetime) -> None:
        """Market regulation answers every new case with the applicant's business registration."""
        assert self.reviewer.registration is not None
        await unit.publish(self.reviewer.registration(case, now))

    async def apply_rules(self, task: Task, unit: DeskUnit, now: datetime) -> None:
        if task.kind is TaskKind.SHARING:
            await self.answer_sharing(task, self._sharing_answer(task), self.reviewer.officer, unit, now)
        elif task.kind is TaskKind.VERIFICATION:
            if self.reviewer.verify is None:
                raise LookupError(f"{self.code} has no rules to verify {task.item_code}: an officer verifies it")
            commitment = CommitmentApproved.model_validate(task.payload)
            outcome, findings = self.reviewer.verify(commitment, await unit.store.case_file(task.case_id))
            await self.give_verification(task, outcome, findings, self.reviewer.officer, unit, now)
        else:
            await self.review(task, unit, now)

    async def review(self, task: Task, unit: DeskUnit, now: datetime) -> None:
        """An opinion by the rules: first the data the review needs from another department, if it has not
        asked for it yet; then a supplement request, or the rules' decision."""
        request = OpinionRequested.model_validate(task.payload)
        file = replace(await unit.store.case_file(request.case_id), data=DataOutcome(task.data) if task.data else None)
        need = self.reviewer.needs(request, file) if self.reviewer.needs and task.agreement_id is None else None
        if need is not None:
            await self.ask_for_data(task, need.provider, need.request, unit, now)
        elif task.round == 1 and self.pace.asks_supplement(task.task_id):
            opinion = Opinion(Decision.SUPPLEMENT_REQUESTED, reasons=[self.reviewer.supplement_reason(request)])
            await self.give_opinion(task, opinion, self.reviewer.officer, unit, now)
        else:
            await self.give_opinion(task, self.reviewer.decide(request, file), self.reviewer.officer, unit, now)

    # --- data a review waits for ---------------------------------------------------------------------

    async def ask_for_data(self, task: Task, provider: str, sharing: SharingRequest, unit: DeskUnit,
                           now: datetime) -> None:
        sharing = replace(sharing, valid_until=self.calendar.add_working_days(now, DATA_VALID_DAYS),
                          case_id=task.case_id)
        agreement_id = await self.agreements.request(self.code, sharing, key=task.task_id)  # one request per task
        await unit.store.lock_agreement(agreement_id)
        waiting = task.awaiting_data(agreement_id)
        await unit.store.save(waiting)
        await unit.publish(DataAwaited(
            request_id=task.task_id, case_id=task.case_id, agreement_id=agreement_id, provider=provider,
            contract_id=sharing.contract, fields=list(sharing.fields), purpose=sharing.purpose, awaited_at=now))
        answered = await unit.store.answer(agreement_id)  # the provider was quicker than this unit of work
        if answered is not None:
            await self.data_answered(waiting, answered, unit, now)

    async def on_agreement_changed(self, changed: AgreementChanged, unit: DeskUnit, now: datetime) -> None:
        """A step in an agreement this department asked for that answers it (the provider's decision, the office's,
        or the department's own answer to a counter-offer): the review waiting for it has its move, or goes on."""
        if changed.consumer != self.code or changed.change not in ANSWERS:
            return
        await unit.store.lock_agreement(changed.agreement_id)
        task = await unit.store.awaiting(changed.agreement_id)
        if task is None:
            await unit.store.file_answer(changed, now)
        elif task.status is TaskStatus.AWAITING_DATA:
            await self.data_answered(task, changed, unit, now)

    async def data_answered(self, task: Task, changed: AgreementChanged, unit: DeskUnit, now: datetime) -> None:
        """The data came, or was refused, or was offered in part. A counter-offer is accepted when it holds what the
        review cannot do without, else declined (the wait ends when the exchange tells the answer); a refusal the
        review cannot do without, on a ground that does not bind, goes to the coordination office (whose decision
        comes back as the agreement's next change); otherwise the review goes on, with the data or without it."""
        assert task.agreement_id is not None
        if changed.change is AgreementChange.COUNTERED:
            await self.answer_offer(task, changed, unit)
            return
        if changed.change is AgreementChange.REJECTED and not task.escalated and self.reviewer.needs is not None:
            request = OpinionRequested.model_validate(task.payload)
            need = self.reviewer.needs(request, await unit.store.case_file(task.case_id))
            if need is not None and escalates(need, changed.ground):
                await self.agreements.escalate_refusal(
                    self.code, task.agreement_id, f"the review of {task.item_code} cannot go on without "
                    f"{', '.join(need.request.fields)}: {need.request.purpose}")
                await unit.store.save(task.escalation())
                return
        data = DataOutcome.SHARED if changed.change in SHARED_BY else DataOutcome.WITHHELD
        ground = changed.ground if data is DataOutcome.WITHHELD else None
        going_on = task.data_answered(data.value, self.ready_at(f"{task.task_id}/data", now, DATA_REVIEW_SHARE))
        if (await unit.store.case_file(task.case_id)).suspended:
            going_on = going_on.held()
        await unit.store.save(going_on)
        await unit.publish(DataWaitEnded(
            request_id=task.task_id, case_id=task.case_id, agreement_id=task.agreement_id, outcome=data,
            ground=ground, escalated=task.escalated, ended_at=now))

    async def answer_offer(self, task: Task, offer: AgreementChanged, unit: DeskUnit) -> None:
        """The consumer's answer to a counter-offer, by its rules: accepted if it holds what the review cannot do
        without."""
        assert task.agreement_id is not None and self.reviewer.needs is not None
        need = self.reviewer.needs(OpinionRequested.model_validate(task.payload),
                                   await unit.store.case_file(task.case_id))
        if need is not None and accepts_offer(need, offer.fields):
            await self.agreements.accept(self.code, task.agreement_id)
        else:
            await self.agreements.decline(self.code, task.agreement_id,
                                          f"the review of {task.item_code} cannot do without what was not offered")

    # --- as the provider of data ---------------------------------------------------------------------

    async def on_sharing_request(self, request: AgreementRequested, unit: DeskUnit, now: datetime) -> None:
        """Another department asks for data this one provides: a task, answered at the provider's pace."""
        if request.provider != self.code or self.reviewer.sharing is None:
            return
        ready = self.calendar.add_working_time(
            now, self.reviewer.sharing.pace.days(request.agreement_id) * self.scale)
        await self.open_task(unit, request.agreement_id, TaskKind.SHARING, request.agreement_id,
                             request.contract_id, request, now, ready, request.due_at)

    def _sharing_answer(self, task: Task) -> SharingAnswer:
        if self.reviewer.sharing is None:
            raise LookupError(f"{self.code} has no rules for sharing requests: an officer answers it")
        return self.reviewer.sharing.decide(AgreementRequested.model_validate(task.payload))

    async def answer_sharing(self, task: Task, sharing: SharingAnswer, officer: str, unit: DeskUnit,
                             now: datetime) -> None:
        await answer(self.agreements, self.code, task.task_id, sharing)
        decision = AgreementChange.APPROVED if sharing.approves else \
            AgreementChange.COUNTERED if sharing.counters else AgreementChange.REJECTED
        await unit.store.save(task.decided(decision.value, officer, now))

    # --- approvals on commitment (告知承诺制) -----------------------------------------------------------

    async def on_commitment(self, commitment: CommitmentApproved, unit: DeskUnit, now: datetime) -> None:
        """An item approved on the applicant's commitment: verified at the department's pace, by the deadline."""
        ready = min(self.ready_at(f"{commitment.request_id}/verification", now, VERIFY_SHARE), commitment.verify_by)
        await self.open_task(unit, commitment.request_id, TaskKind.VERIFICATION, commitment.case_id,
                             commitment.item_code, commitment, now, ready, commitment.verify_by)

    async def give_verification(self, task: Task, outcome: Verification, findings: list[str], officer: str,
                                unit: DeskUnit, now: datetime) -> None:
        await unit.publish(CommitmentVerified(
            request_id=task.task_id, case_id=task.case_id, item_code=task.item_code, outcome=outcome,
            findings=findings, officer=officer, verified_at=now))
        await unit.store.save(task.decided(outcome.value, officer, now))

    async def give_opinion(self, task: Task, opinion: Opinion, officer: str, unit: DeskUnit, now: datetime) -> None:
        request = OpinionRequested.model_validate(task.payload)
        await unit.publish(OpinionIssued(
            request_id=request.request_id, case_id=request.case_id, item_code=request.item_code,
            decision=opinion.decision, conditions=opinion.conditions, reasons=opinion.reasons,
            grounds=opinion.grounds, officer=officer, decided_at=now,
        ))
        await unit.store.save(task.decided(opinion.decision.value, officer, now,
                                           awaiting_supplement=opinion.decision is Decision.SUPPLEMENT_REQUESTED))

    async def officer_decision(self, task_id: str, decision: OfficerDecision, officer: str) -> None:
        """An officer's decision (human-in-the-loop) on a task still open, waiting or parked: an opinion, the
        answer to a sharing request, or a verification, as the task's kind says."""

        async def decide(task: Task, unit: DeskUnit, now: datetime) -> None:
            if task.kind is TaskKind.SHARING and isinstance(decision, SharingAnswer):
                await self.answer_sharing(task, decision, officer, unit, now)
            elif task.kind is TaskKind.VERIFICATION and isinstance(decision, VerificationDecision):
                await self.give_verification(task, decision.outcome, decision.findings, officer, unit, now)
            elif task.kind is TaskKind.OPINION and isinstance(decision, Opinion):
                await self.give_opinion(task, decision, officer, unit, now)
            else:
                raise WrongDecision(f"{task_id} is a {task.kind.value} task: {type(decision).__name__} does not "
                                    "decide it")

        await self.decide_by_officer(task_id, decide)

    async def kind_of(self, task_id: str) -> TaskKind | None:
        task = await self.task(task_id)
        return task.kind if task else None


class CoordinationDesk(Desk):
    """The joint meeting's office: decides conflicts and the refusals to share that consumers escalated, and takes
    up escalated deadlines and sharing requests."""

    def __init__(self, arbiter: Arbiter, settings: Settings, clock: Clock, agreements: Agreements | None = None
                 ) -> None:
        super().__init__(COORDINATION, arbiter.pace, settings, clock)
        self.arbiter = arbiter
        self.agreements: Agreements = agreements or HttpAgreements(settings)
        self.on(ConflictRaised, self.on_conflict)
        self.on(bureau_v1.ConflictRaised, self.on_first_conflict)
        self.on(DeadlineEscalated, self.on_late_opinion)
        self.on(AgreementEscalated, self.on_late_agreement)
        self.on(AgreementStepEscalated, self.on_late_agreement_step)
        self.on(RefusalEscalated, self.on_escalated_refusal)

    async def on_conflict(self, conflict: ConflictRaised, unit: DeskUnit, now: datetime) -> None:
        await self.open_task(unit, conflict.conflict_id, TaskKind.CONFLICT, conflict.case_id,
                             f"stage-{conflict.stage}", conflict, now, self.ready_at(conflict.conflict_id, now))

    async def on_first_conflict(self, conflict: bureau_v1.ConflictRaised, unit: DeskUnit, now: datetime) -> None:
        """A conflict from a bureau that still speaks the first version (its refusals name no grounds)."""
        await self.on_conflict(conflict.upgraded(), unit, now)

    async def on_late_opinion(self, escalation: DeadlineEscalated, unit: DeskUnit, now: datetime) -> None:
        await unit.store.add(Task.noted(f"late:{escalation.request_id}", escalation.case_id, escalation.item_code,
                                        escalation.model_dump(mode="json"), now))

    async def on_late_agreement(self, escalation: AgreementEscalated, unit: DeskUnit, now: datetime) -> None:
        await unit.store.add(Task.noted(f"late:{escalation.agreement_id}", escalation.agreement_id,
                                        escalation.contract_id, escalation.model_dump(mode="json"), now))

    async def on_late_agreement_step(self, escalation: AgreementStepEscalated, unit: DeskUnit, now: datetime) -> None:
        await unit.store.add(Task.noted(f"late:{escalation.agreement_id}:{escalation.status.value}",
                                        escalation.agreement_id, escalation.contract_id,
                                        escalation.model_dump(mode="json"), now))

    async def on_escalated_refusal(self, escalation: RefusalEscalated, unit: DeskUnit, now: datetime) -> None:
        """A refusal to share escalated by its consumer: decided at the office's pace, by its deadline."""
        await self.open_task(unit, f"refusal:{escalation.agreement_id}", TaskKind.REFUSAL, escalation.agreement_id,
                             escalation.contract_id, escalation, now,
                             min(self.ready_at(escalation.agreement_id, now), escalation.due_at), escalation.due_at)

    async def apply_rules(self, task: Task, unit: DeskUnit, now: datetime) -> None:
        if task.kind is TaskKind.REFUSAL:
            resolution, conditions, reasons = self.arbiter.resolve_refusal(refusal_of(task))
            await self.decide_refusal(task, resolution, conditions, reasons, JOINT_MEETING_RULES, unit, now)
        else:
            resolution, conditions, reasons = self.arbiter.resolve(ConflictRaised.model_validate(task.payload))
            await self.give_resolution(task, resolution, conditions, reasons, JOINT_MEETING_RULES, unit, now)

    async def decide_refusal(self, task: Task, resolution: Resolution, conditions: list[str], reasons: list[str],
                             decided_by: str, unit: DeskUnit, now: datetime) -> None:
        """The office's decision at the exchange: the agreement in force on conditions, or the refusal upheld (both
        parties are told as ``exchange.agreement-changed``: the review waiting for the data goes on)."""
        escalation = RefusalEscalated.model_validate(task.payload)
        said = "; ".join(reasons) or resolution.value
        if resolution is Resolution.PROCEED_WITH_CONDITIONS:
            await self.agreements.proceed(self.code, escalation.agreement_id, said, conditions)
        else:
            await self.agreements.uphold(self.code, escalation.agreement_id, said)
        await unit.store.save(task.decided(resolution.value, decided_by, now))

    async def give_resolution(self, task: Task, resolution: Resolution, conditions: list[str], reasons: list[str],
                              decided_by: str, unit: DeskUnit, now: datetime) -> None:
        await unit.publish(ConflictResolved(
            conflict_id=task.task_id, case_id=task.case_id, resolution=resolution, conditions=conditions,
            reasons=reasons, decided_by=decided_by, decided_at=now,
        ))
        await unit.store.save(task.decided(resolution.value, decided_by, now))

    async def officer_resolution(self, task_id: str, resolution: Resolution, conditions: list[str],
                                 reasons: list[str], officer: str) -> None:
        async def decide(task: Task, unit: DeskUnit, now: datetime) -> None:
            if task.kind is TaskKind.REFUSAL:
                await self.decide_refusal(task, resolution, conditions, reasons, officer, unit, now)
            elif task.kind is TaskKind.CONFLICT:
                await self.give_resolution(task, resolution, conditions, reasons, officer, unit, now)
            else:
                raise TaskNotOpen(task_id)

        await self.decide_by_officer(task_id, decide)


JOINT_MEETING_RULES = "joint meeting rules"


def refusal_of(task: Task) -> SharingRefusal:
    """The escalated refusal a task of the office holds, as its rules read it: the typed ground, never the words."""
    escalation = RefusalEscalated.model_validate(task.payload)
    return SharingRefusal(escalation.agreement_id, escalation.consumer, escalation.provider, escalation.contract_id,
                          escalation.fields, escalation.purpose, escalation.ground, escalation.refusal)
