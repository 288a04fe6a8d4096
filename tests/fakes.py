"""In-memory stand-ins for the small interfaces handlers get their I/O through: a desk's store and unit, the
bureau's cases and unit, a department's inbox, the exchange's sharing agreements. Each keeps what was written as
plain values, and undoes a savepoint's writes when its block raises, as PostgreSQL would."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from contracts.base import Event
from contracts.exchange import AgreementChanged
from contracts.refusal_grounds import SharingGround
from services.bureau.model import Case
from services.departments.rules import CaseFile
from services.departments.store import DeskStore, Mode
from services.departments.tasks import Task
from services.kit.agreements import SharingRequest
from services.kit.inbox import Delivered, Outcome, ParkedEvent, Transit


class Snapshots:
    """A savepoint over the fields named: their values are restored if the block raises."""

    def __init__(self, *names: str) -> None:
        self._names = names

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        saved = {name: copy.deepcopy(getattr(self, name)) for name in self._names}
        try:
            yield
        except BaseException:
            for name, value in saved.items():
                setattr(self, name, value)
            raise


class MemoryDeskStore:
    def __init__(self, mode: Mode = Mode.RULES) -> None:
        self.tasks: dict[str, Task] = {}
        self.files: dict[str, CaseFile] = {}
        self.answers: dict[str, AgreementChanged] = {}
        self._mode = mode

    async def task(self, task_id: str, *, for_update: bool = False) -> Task | None:
        return self.tasks.get(task_id)

    async def add(self, task: Task) -> None:
        self.tasks.setdefault(task.task_id, task)

    async def save(self, task: Task) -> None:
        self.tasks[task.task_id] = task

    async def due(self, now: datetime, limit: int) -> list[Task]:
        due = sorted((t for t in self.tasks.values() if t.due_for_rules(now)), key=lambda t: t.decide_at)
        return due[:limit]

    async def of_case(self, case_id: str) -> list[Task]:
        return [t for t in self.tasks.values() if t.case_id == case_id]

    async def case_file(self, case_id: str) -> CaseFile:
        return self.files.get(case_id, CaseFile(case_id, None, None))

    async def file_suspension(self, case_id: str, suspended: bool) -> None:
        self.files[case_id] = replace(await self.case_file(case_id), suspended=suspended)

    async def file_survey(self, case_id: str, survey_at: datetime) -> None:
        self.files[case_id] = replace(await self.case_file(case_id), survey_at=survey_at)

    async def file_registration(self, case_id: str, registration: dict[str, Any]) -> None:
        self.files[case_id] = replace(await self.case_file(case_id), registration=registration)

    async def mode(self) -> Mode:
        return self._mode

    async def set_mode(self, mode: Mode) -> None:
        self._mode = mode

    async def lock_agreement(self, agreement_id: str) -> None:
        return None

    async def awaiting(self, agreement_id: str) -> Task | None:
        return next((t for t in self.tasks.values() if t.agreement_id == agreement_id), None)

    async def file_answer(self, changed: AgreementChanged, at: datetime) -> None:
        self.answers[changed.agreement_id] = changed

    async def answer(self, agreement_id: str) -> AgreementChanged | None:
        return self.answers.get(agreement_id)


class MemoryDeskUnit(Snapshots):
    def __init__(self, store: MemoryDeskStore | None = None) -> None:
        super().__init__("published", "store")
        self.store: DeskStore = store or MemoryDeskStore()
        self.published: list[Event] = []

    async def publish(self, event: Event) -> str:
        self.published.append(event)
        return f"event-{len(self.published)}"


class MemoryCases:
    def __init__(self, *cases: Case) -> None:
        self.cases = {c.case_id: copy.deepcopy(c) for c in cases}
        self.next_checks: dict[str, datetime | None] = {}

    async def load(self, case_id: str, *, for_update: bool = False) -> Case | None:
        case = self.cases.get(case_id)
        return copy.deepcopy(case) if case else None

    async def save(self, case: Case, next_check_at: datetime | None) -> None:
        self.cases[case.case_id] = copy.deepcopy(case)
        self.next_checks[case.case_id] = next_check_at


class MemoryCaseUnit:
    def __init__(self, *cases: Case) -> None:
        self.cases = MemoryCases(*cases)
        self.published: list[Event] = []

    async def publish(self, event: Event) -> str:
        self.published.append(event)
        return f"event-{len(self.published)}"


PARKED_AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


class MemoryInbox(Snapshots):
    def __init__(self) -> None:
        super().__init__("kept", "parked", "replayed")
        self.kept: dict[str, tuple[Outcome, str]] = {}
        self.parked: dict[str, ParkedEvent] = {}  # what was parked, with its record and attempts
        self.replayed: set[str] = set()

    async def claim(self, event_id: str, contract: str, sender: str, transit: Transit) -> bool:
        if event_id in self.kept:
            return False
        self.kept[event_id] = (Outcome.HANDLED, "")
        return True

    async def keep(self, event_id: str, contract: str, sender: str, outcome: Outcome, detail: str) -> None:
        self.kept.setdefault(event_id, (outcome, detail))

    async def park(self, event_id: str, contract: str, sender: str, record: Delivered, attempts: int,
                   error: str) -> None:
        if event_id not in self.kept:
            self.kept[event_id] = (Outcome.PARKED, error)
            self.parked[event_id] = ParkedEvent(event_id, contract, sender, PARKED_AT, attempts, error,
                                                record)

    async def unpark(self, event_id: str) -> bool:
        if self.kept.get(event_id, (None, ""))[0] is not Outcome.PARKED:
            return False
        self.kept[event_id] = (Outcome.HANDLED, self.kept[event_id][1])
        self.replayed.add(event_id)
        return True

    async def repark(self, event_id: str, error: str) -> None:
        parked = self.parked[event_id]
        self.kept[event_id] = (Outcome.PARKED, error)
        self.parked[event_id] = replace(parked, attempts=(parked.attempts or 0) + 1, error=error)


class MemoryAgreements:
    """The exchange's agreements as the departments see them: requests made, and each party's steps on them (the
    last step of each agreement in ``decided``; escalations, and the office's decisions, kept apart too)."""

    def __init__(self) -> None:
        self.requested: dict[str, tuple[str, SharingRequest]] = {}  # agreement id -> consumer, request
        self.keys: dict[tuple[str, str], str] = {}  # consumer, Idempotency-Key -> the agreement its request made
        self.decided: dict[str, tuple[str, str, str]] = {}  # agreement id -> who, step, reasons
        self.grounds: dict[str, SharingGround] = {}  # agreement id -> the ground of its refusal or counter-offer
        self.offered: dict[str, tuple[str, ...]] = {}  # agreement id -> the fields a counter-offer offered
        self.escalated: dict[str, tuple[str, str]] = {}  # agreement id -> consumer, reasons
        self.conditions: dict[str, list[str]] = {}  # agreement id -> the office's conditions (proceeded)

    async def request(self, department: str, request: SharingRequest, key: str | None = None) -> str:
        if key is not None and (department, key) in self.keys:
            return self.keys[department, key]
        agreement_id = f"AGR-{len(self.requested) + 1:04d}"
        self.requested[agreement_id] = (department, request)
        if key is not None:
            self.keys[department, key] = agreement_id
        return agreement_id

    async def approve(self, department: str, agreement_id: str) -> None:
        self.decided[agreement_id] = (department, "approved", "")

    async def reject(self, department: str, agreement_id: str, reasons: str, ground: SharingGround) -> None:
        self.decided[agreement_id] = (department, "rejected", reasons)
        self.grounds[agreement_id] = ground

    async def counter_offer(self, department: str, agreement_id: str, fields: tuple[str, ...], reasons: str,
                            ground: SharingGround) -> None:
        self.decided[agreement_id] = (department, "countered", reasons)
        self.grounds[agreement_id], self.offered[agreement_id] = ground, fields

    async def accept(self, department: str, agreement_id: str) -> None:
        self.decided[agreement_id] = (department, "accepted", "")

    async def decline(self, department: str, agreement_id: str, reasons: str) -> None:
        self.decided[agreement_id] = (department, "declined", reasons)

    async def escalate_refusal(self, department: str, agreement_id: str, reasons: str) -> None:
        self.escalated[agreement_id] = (department, reasons)

    async def proceed(self, department: str, agreement_id: str, reasons: str, conditions: list[str]) -> None:
        self.decided[agreement_id] = (department, "proceeded", reasons)
        self.conditions[agreement_id] = conditions

    async def uphold(self, department: str, agreement_id: str, reasons: str) -> None:
        self.decided[agreement_id] = (department, "upheld", reasons)
