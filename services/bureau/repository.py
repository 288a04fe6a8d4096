"""Cases in PostgreSQL (schema ``bureau``): a case row, a row per opinion request, a row per conflict."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg
import orjson

from base.pages import Where, page
from contracts.bureau import DataOutcome, Decision, RefusalGround, Verification
from contracts.coordination import Resolution
from contracts.refusal_grounds import SharingGround
from services.bureau.model import (
    Case,
    CaseApplication,
    CaseStatus,
    Conflict,
    DataWait,
    OpinionRequest,
    Reopening,
    RequestStatus,
)

JSON_FIELDS = {"reasons", "documents", "promised_documents", "conditions", "reminded", "grounds", "findings",
               "data_waits", "reopened"}
CASE_COLUMNS = ("case_id", "agent", "catalogue_version", "status", "stage", "submitted_at", "completed_at", "reasons",
                "documents", "promised_documents", "promised_by", "suspended_at", "survey_at", "resubmissions",
                "reopened")
REQUEST_COLUMNS = tuple(f.name for f in dataclasses.fields(OpinionRequest))
CONFLICT_COLUMNS = tuple(f.name for f in dataclasses.fields(Conflict))


def _json(value: Any) -> str:
    """A value as a jsonb column holds it: dataclasses as objects, times in ISO 8601 (RFC 3339), enums by value
    (orjson's own rules for them: a case's dozen requests are written out on every load and save, ``Rows``)."""
    return orjson.dumps(value).decode()


def _wait(raw: dict[str, Any]) -> DataWait:
    return DataWait(
        raw["agreement_id"], raw["provider"], raw["contract_id"], raw["fields"], datetime.fromisoformat(raw["since"]),
        datetime.fromisoformat(raw["until"]) if raw["until"] else None,
        DataOutcome(raw["outcome"]) if raw["outcome"] else None,
        SharingGround(raw["ground"]) if raw["ground"] else None, raw["escalated"])


def _to_row(obj: Any, columns: tuple[str, ...]) -> list[Any]:
    values = []
    for name in columns:
        value = getattr(obj, name)
        if name in JSON_FIELDS:
            value = _json(value)
        elif hasattr(value, "value"):
            value = value.value
        values.append(value)
    return values


def _from_row(row: asyncpg.Record, columns: tuple[str, ...]) -> dict[str, Any]:
    return {name: orjson.loads(row[name]) if name in JSON_FIELDS else row[name] for name in columns}


def _upsert(table: str, key: str, columns: tuple[str, ...], extra: tuple[str, ...] = ()) -> str:
    names = (*columns, *extra)
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names if n != key)
    return (f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders})"
            f" ON CONFLICT ({key}) DO UPDATE SET {updates}")


CASE_UPSERT = _upsert("bureau.cases", "case_id", CASE_COLUMNS,
                      ("application", "stage_started", "stage_completed", "next_check_at"))
REQUEST_UPSERT = _upsert("bureau.requests", "request_id", (*REQUEST_COLUMNS, "case_id"))
CONFLICT_UPSERT = _upsert("bureau.conflicts", "conflict_id", (*CONFLICT_COLUMNS, "case_id"))


def _stamps(raw: str) -> dict[int, datetime]:
    return {int(k): datetime.fromisoformat(v) for k, v in orjson.loads(raw).items()}


# A case with its requests and conflicts in one statement (the bureau loads a case for every event it handles): the
# rows of the two come as arrays of the tables' row types, which asyncpg reads as records.
LOAD = ("SELECT c.*,"
        " ARRAY(SELECT r FROM bureau.requests r WHERE r.case_id = c.case_id ORDER BY r.requested_at, r.request_id)"
        " AS case_requests,"
        " ARRAY(SELECT x FROM bureau.conflicts x WHERE x.case_id = c.case_id ORDER BY x.raised_at) AS case_conflicts"
        " FROM bureau.cases c WHERE c.case_id = $1")


async def load(connection: asyncpg.Connection, case_id: str, *, for_update: bool = False) -> Case | None:
    """A case, with its requests and conflicts; ``for_update``: locked for the unit of work. The lock is taken by
    a statement of its own: a statement reads what was committed when it began, so one that waited for the lock
    would read the requests as they were before the unit of work that held it, and a save would write them back."""
    if for_update and await connection.fetchval(
            "SELECT true FROM bureau.cases WHERE case_id = $1 FOR UPDATE", case_id) is None:
        return None
    row = await connection.fetchrow(LOAD, case_id)
    return None if row is None else _case(row, row["case_requests"], row["case_conflicts"])


async def load_many(connection: asyncpg.Connection, case_ids: list[str]) -> list[Case]:
    """Several cases in three queries, for reading (not for changing)."""
    rows = await connection.fetch("SELECT * FROM bureau.cases WHERE case_id = ANY($1)", case_ids)
    requests = await connection.fetch(
        "SELECT * FROM bureau.requests WHERE case_id = ANY($1) ORDER BY requested_at, request_id", case_ids)
    conflicts = await connection.fetch(
        "SELECT * FROM bureau.conflicts WHERE case_id = ANY($1) ORDER BY raised_at", case_ids)
    by_case: dict[str, tuple[list[asyncpg.Record], list[asyncpg.Record]]] = {r["case_id"]: ([], []) for r in rows}
    for r in requests:
        by_case[r["case_id"]][0].append(r)
    for c in conflicts:
        by_case[c["case_id"]][1].append(c)
    return [_case(row, *by_case[row["case_id"]]) for row in rows]


def _case(row: asyncpg.Record, requests: list[asyncpg.Record], conflicts: list[asyncpg.Record]) -> Case:
    fields = _from_row(row, CASE_COLUMNS)
    fields["status"] = CaseStatus(fields["status"])
    fields["reopened"] = [Reopening(datetime.fromisoformat(r["completed_at"]), datetime.fromisoformat(r["reopened_at"]))
                          for r in fields["reopened"]]
    case = Case(application=CaseApplication.model_validate_json(row["application"]),
                stage_started=_stamps(row["stage_started"]), stage_completed=_stamps(row["stage_completed"]), **fields)
    for r in requests:
        values = _from_row(r, REQUEST_COLUMNS)
        values["status"] = RequestStatus(values["status"])
        values["decision"] = Decision(values["decision"]) if values["decision"] else None
        values["grounds"] = [RefusalGround(g) for g in values["grounds"]]
        values["verification"] = Verification(values["verification"]) if values["verification"] else None
        values["data_waits"] = [_wait(w) for w in values["data_waits"]]
        case.requests.append(OpinionRequest(**values))
    for c in conflicts:
        values = _from_row(c, CONFLICT_COLUMNS)
        values["resolution"] = Resolution(values["resolution"]) if values["resolution"] else None
        case.conflicts.append(Conflict(**values))
    return case


@dataclass(frozen=True)
class Rows:
    """A case's request and conflict rows as last loaded or saved: a save writes only the rows that differ (an
    event changes one request or two of the dozen a case has)."""

    requests: dict[str, list[Any]]
    conflicts: dict[str, list[Any]]

    @classmethod
    def of(cls, case: Case) -> Rows:
        return cls({r.request_id: [*_to_row(r, REQUEST_COLUMNS), case.case_id] for r in case.requests},
                   {c.conflict_id: [*_to_row(c, CONFLICT_COLUMNS), case.case_id] for c in case.conflicts})


async def save(connection: asyncpg.Connection, case: Case, next_check_at: datetime | None,
               before: Rows | None = None) -> Rows:
    """Write a case; of its requests and conflicts, those that differ from ``before`` (all when not given).
    Returns its rows as now written."""
    stamps = [orjson.dumps(s, option=orjson.OPT_NON_STR_KEYS).decode()
              for s in (case.stage_started, case.stage_completed)]
    await connection.execute(CASE_UPSERT, *_to_row(case, CASE_COLUMNS), case.application.model_dump_json(), *stamps,
                             next_check_at)
    now = Rows.of(case)
    old = before or Rows({}, {})
    changed = [row for key, row in now.requests.items() if old.requests.get(key) != row]
    if changed:
        await connection.executemany(REQUEST_UPSERT, changed)
    changed = [row for key, row in now.conflicts.items() if old.conflicts.get(key) != row]
    if changed:
        await connection.executemany(CONFLICT_UPSERT, changed)
    return now


class Cases(Protocol):
    """Where the bureau's handlers find and keep cases (``PgCases``; the fast tests use an in-memory one)."""

    async def load(self, case_id: str, *, for_update: bool = False) -> Case | None: ...

    async def save(self, case: Case, next_check_at: datetime | None) -> None: ...


class PgCases:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection
        self._rows: dict[str, Rows] = {}  # as loaded in this unit of work

    async def load(self, case_id: str, *, for_update: bool = False) -> Case | None:
        case = await load(self.connection, case_id, for_update=for_update)
        if case is not None:
            self._rows[case_id] = Rows.of(case)
        return case

    async def save(self, case: Case, next_check_at: datetime | None) -> None:
        self._rows[case.case_id] = await save(self.connection, case, next_check_at, self._rows.get(case.case_id))


# A case waits for its applicant when a department asked for a supplement, documents were promised, or it was
# refused or suspended (the enterprise may answer): what an enterprise, or its agent, looks at.
AWAITS_APPLICANT = (
    f"(c.status IN ('{CaseStatus.REJECTED.value}', '{CaseStatus.SUSPENDED.value}')"
    " OR c.promised_documents::jsonb <> '[]'::jsonb"
    f" OR EXISTS (SELECT 1 FROM bureau.requests r WHERE r.case_id = c.case_id"
    f" AND r.status = '{RequestStatus.AWAITING_SUPPLEMENT.value}'))")


# What may hold a case up at an instant ``{at}``, as ``Case.stuck`` reads it from the case (which says what): its
# suspension, a conflict the coordination office has not decided, or an open request awaiting a supplement, past its
# due time with its clock running, or waiting for another department's data. The page of the cases held up reads
# these cases whole, not every open case (6,000 at once in the 10,000-case demo, each with its requests).
MAY_BE_HELD = (
    f"(c.status = '{CaseStatus.SUSPENDED.value}'"
    " OR EXISTS (SELECT 1 FROM bureau.conflicts k WHERE k.case_id = c.case_id AND k.resolution IS NULL)"
    " OR EXISTS (SELECT 1 FROM bureau.requests r WHERE r.case_id = c.case_id"
    f" AND (r.status = '{RequestStatus.AWAITING_SUPPLEMENT.value}' OR r.status = '{RequestStatus.PENDING.value}'"
    " AND (r.paused_since IS NULL AND r.due_at <= {at} OR r.data_waits @> '[{{\"until\": null}}]'))))")


async def find(connection: asyncpg.Connection, ids: list[str], statuses: list[CaseStatus], agent: str | None,
               limit: int | None, offset: int, applicant: bool = False,
               held_at: datetime | None = None) -> tuple[list[str], int]:
    """Case ids, newest first, among those named and of the statuses and agent given (each: all when none), and
    (``applicant``) only those waiting for their applicant, and (``held_at``) only those something may hold up at
    that instant; a page of them and how many."""
    where = Where()
    if ids:
        where.term(f"c.case_id = ANY({where.given(ids)}::text[])")
    if statuses:
        where.term(f"c.status = ANY({where.given([s.value for s in statuses])}::text[])")
    if agent is not None:
        where.term(f"c.agent = {where.given(agent)}")
    if applicant:
        where.term(AWAITS_APPLICANT)
    if held_at is not None:
        where.term(MAY_BE_HELD.format(at=where.given(held_at)))
    rows, total = await page(connection, "bureau.cases c", where, "c.case_id", "c.submitted_at DESC, c.case_id",
                             limit, offset)
    return [r["case_id"] for r in rows], total


# Open cases by agent, on the partial index of migration 006, whose predicate this must keep word for word.
AGENT_LOAD = ("SELECT agent, count(*) FROM bureau.cases WHERE status NOT IN ("
              + ", ".join(f"'{s.value}'" for s in CaseStatus if s.ended) + ") GROUP BY agent")


async def open_cases_by_agent(pool: asyncpg.Pool) -> dict[str, int]:
    return {r["agent"]: r["count"] for r in await pool.fetch(AGENT_LOAD)}


async def next_due(connection: asyncpg.Connection) -> datetime | None:
    """When the bureau next has something to do by the clock: a case's next check, or a sharing request it
    provides data for to be answered (None: nothing). One statement, on the two tables' partial indexes."""
    due: datetime | None = await connection.fetchval(
        "SELECT least((SELECT min(next_check_at) FROM bureau.cases WHERE next_check_at IS NOT NULL),"
        " (SELECT min(decide_at) FROM bureau.sharing_requests WHERE decided_at IS NULL))")
    return due


async def due_for_check(connection: asyncpg.Connection, now: datetime, limit: int = 200) -> list[str]:
    rows = await connection.fetch(
        "SELECT case_id FROM bureau.cases WHERE next_check_at <= $1 ORDER BY next_check_at LIMIT $2", now, limit
    )
    return [r["case_id"] for r in rows]
