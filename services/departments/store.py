"""Where a desk keeps its tasks, what it knows of cases and its mode: the ``DeskStore`` the handlers use, kept
in the department's schema in PostgreSQL (``PgDeskStore``; tests use an in-memory one)."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import asyncpg

from base.pages import Where, page
from contracts.exchange import AgreementChanged
from services.departments.rules import CaseFile
from services.departments.tasks import Task, TaskKind, TaskStatus


class Mode(StrEnum):
    RULES = "rules"
    HUMAN = "human"  # officers decide through the API or the command line


class DeskStore(Protocol):
    async def task(self, task_id: str, *, for_update: bool = False) -> Task | None: ...

    async def add(self, task: Task) -> None:
        """Keep a new task (one with the same id already kept stays as it is)."""

    async def save(self, task: Task) -> None: ...

    async def due(self, now: datetime, limit: int) -> list[Task]:
        """Open tasks the rules may decide now, earliest first (locked for this unit of work)."""

    async def of_case(self, case_id: str) -> list[Task]:
        """A case's tasks, locked for this unit of work (what it saves of them is not overtaken by a decision)."""

    async def case_file(self, case_id: str) -> CaseFile: ...

    async def file_suspension(self, case_id: str, suspended: bool) -> None: ...

    async def file_survey(self, case_id: str, survey_at: datetime) -> None: ...

    async def file_registration(self, case_id: str, registration: dict[str, Any]) -> None: ...

    async def mode(self) -> Mode: ...

    async def set_mode(self, mode: Mode) -> None: ...

    async def lock_agreement(self, agreement_id: str) -> None:
        """Hold the agreement for this unit of work: its answer and the task waiting for it are filed one after
        the other, never both unseen by each other."""

    async def awaiting(self, agreement_id: str) -> Task | None:
        """The task whose review asked for the agreement's data (locked for this unit of work)."""

    async def file_answer(self, changed: AgreementChanged, at: datetime) -> None:
        """Keep an answer no task waits for yet (the latest, if there are several)."""

    async def answer(self, agreement_id: str) -> AgreementChanged | None:
        """The answer kept for the agreement, as the exchange told it."""


COLUMNS = tuple(f.name for f in fields(Task))


def _task(row: asyncpg.Record) -> Task:
    values = {name: row[name] for name in COLUMNS}
    values["kind"] = TaskKind(values["kind"])
    values["status"] = TaskStatus(values["status"])
    values["payload"] = json.loads(values["payload"])
    return Task(**values)


class PgDeskStore:
    def __init__(self, connection: asyncpg.Connection, schema: str) -> None:
        self.connection = connection
        self.schema = schema

    async def task(self, task_id: str, *, for_update: bool = False) -> Task | None:
        row = await self.connection.fetchrow(
            f"SELECT * FROM {self.schema}.tasks WHERE task_id = $1" + (" FOR UPDATE" if for_update else ""), task_id)
        return _task(row) if row else None

    async def add(self, task: Task) -> None:
        await self._write(task, "ON CONFLICT (task_id) DO NOTHING")

    async def save(self, task: Task) -> None:
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in COLUMNS if name != "task_id")
        await self._write(task, f"ON CONFLICT (task_id) DO UPDATE SET {updates}")

    async def _write(self, task: Task, on_conflict: str) -> None:
        values = [getattr(task, name) for name in COLUMNS]
        values[COLUMNS.index("payload")] = json.dumps(task.payload, ensure_ascii=False)
        placeholders = ", ".join(f"${i}" for i in range(1, len(COLUMNS) + 1))
        await self.connection.execute(
            f"INSERT INTO {self.schema}.tasks ({', '.join(COLUMNS)}) VALUES ({placeholders}) {on_conflict}", *values)

    async def due(self, now: datetime, limit: int) -> list[Task]:
        rows = await self.connection.fetch(
            f"SELECT * FROM {self.schema}.tasks WHERE status = $1 AND decide_at <= $2"
            " ORDER BY decide_at LIMIT $3 FOR UPDATE SKIP LOCKED", TaskStatus.OPEN.value, now, limit)
        return [_task(r) for r in rows]

    async def next_decision(self) -> datetime | None:
        """When the desk next decides by the rules: its earliest open task's time to be decided, or None (no open
        task, or officers decide). One statement, no transaction."""
        due: datetime | None = await self.connection.fetchval(
            f"SELECT CASE WHEN (SELECT mode FROM {self.schema}.desk) = $1 THEN (SELECT decide_at FROM {self.schema}"
            ".tasks WHERE status = $2 ORDER BY decide_at LIMIT 1) END",  # the earliest: the index's first entry
            Mode.RULES.value, TaskStatus.OPEN.value)
        return due

    async def of_case(self, case_id: str) -> list[Task]:
        # FOR UPDATE: a task the desk is deciding now is read once that decision has committed, never before it (a
        # suspension saved over a decision had reopened the task, and it was decided a second time)
        rows = await self.connection.fetch(
            f"SELECT * FROM {self.schema}.tasks WHERE case_id = $1 ORDER BY task_id FOR UPDATE", case_id)
        return [_task(r) for r in rows]

    async def page(self, status: TaskStatus | None, case_id: str | None, limit: int,
                   offset: int) -> tuple[list[Task], int]:
        """The desk's tasks of the status and case given (each: all when None), oldest first, ``limit`` of them
        from ``offset`` on, and how many match in all."""
        where = Where()
        if status is not None:
            where.term(f"status = {where.given(status.value)}")
        if case_id is not None:
            where.term(f"case_id = {where.given(case_id)}")
        rows, total = await page(self.connection, f"{self.schema}.tasks", where, "*", "received_at, task_id", limit,
                                 offset)
        return [_task(r) for r in rows], total

    async def case_file(self, case_id: str) -> CaseFile:
        row = await self.connection.fetchrow(f"SELECT * FROM {self.schema}.case_files WHERE case_id = $1", case_id)
        if row is None:
            return CaseFile(case_id, None, None)
        registration = json.loads(row["registration"]) if row["registration"] else None
        return CaseFile(case_id, row["survey_at"], registration, row["suspended"])

    async def file_suspension(self, case_id: str, suspended: bool) -> None:
        await self._file(case_id, "suspended", suspended)

    async def file_survey(self, case_id: str, survey_at: datetime) -> None:
        await self._file(case_id, "survey_at", survey_at)

    async def file_registration(self, case_id: str, registration: dict[str, Any]) -> None:
        await self._file(case_id, "registration", json.dumps(registration, ensure_ascii=False))

    async def _file(self, case_id: str, column: str, value: Any) -> None:
        await self.connection.execute(
            f"INSERT INTO {self.schema}.case_files (case_id, {column}) VALUES ($1, $2)"
            f" ON CONFLICT (case_id) DO UPDATE SET {column} = $2", case_id, value)

    async def mode(self) -> Mode:
        return Mode(await self.connection.fetchval(f"SELECT mode FROM {self.schema}.desk"))

    async def set_mode(self, mode: Mode) -> None:
        await self.connection.execute(f"UPDATE {self.schema}.desk SET mode = $1", mode.value)

    async def lock_agreement(self, agreement_id: str) -> None:
        await self.connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{self.schema}/{agreement_id}")

    async def awaiting(self, agreement_id: str) -> Task | None:
        row = await self.connection.fetchrow(
            f"SELECT * FROM {self.schema}.tasks WHERE agreement_id = $1 FOR UPDATE", agreement_id)
        return _task(row) if row else None

    async def file_answer(self, changed: AgreementChanged, at: datetime) -> None:
        await self.connection.execute(
            f"INSERT INTO {self.schema}.sharing_answers (agreement_id, outcome, reasons, answered_at, told)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (agreement_id) DO UPDATE SET outcome = EXCLUDED.outcome,"
            " reasons = EXCLUDED.reasons, answered_at = EXCLUDED.answered_at, told = EXCLUDED.told",
            changed.agreement_id, changed.change.value, changed.reasons, at, changed.model_dump_json())

    async def answer(self, agreement_id: str) -> AgreementChanged | None:
        told = await self.connection.fetchval(
            f"SELECT told FROM {self.schema}.sharing_answers WHERE agreement_id = $1", agreement_id)
        return AgreementChanged.model_validate_json(told) if told else None
