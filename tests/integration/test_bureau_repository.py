"""A case is read back from PostgreSQL as it was saved, every field of its requests and conflicts included (their
lists of times, enums and nested records are jsonb), and saving a case loaded and left unchanged writes none of its
request or conflict rows again: a unit of work writes only the rows it changed. A page of cases applies the filters
given, and the agents' open cases are counted on their index."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from base.calendar import CHINA, WorkingDayCalendar
from base.settings import Settings
from contracts.bureau import DataOutcome, Decision, RefusalGround, Verification
from contracts.coordination import Resolution
from contracts.departments import BUREAU
from contracts.refusal_grounds import SharingGround
from services.bureau import repository
from services.bureau.catalogue import load_catalogue
from services.bureau.model import Case, CaseStatus, Conflict, DataWait, Reopening, RequestStatus
from services.bureau.repository import AGENT_LOAD, PgCases
from services.bureau.samples import application

SUBMITTED = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=CHINA)


@pytest.fixture
async def connection(stack: Settings) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(stack.dsn(BUREAU))
    try:
        yield connection
    finally:
        await connection.close()


def _case_with_every_field() -> Case:
    case, _ = Case.open(application(random.Random(11)), "王芳", SUBMITTED, load_catalogue(), WorkingDayCalendar(),
                        case_id=f"G-REPO-{uuid.uuid4().hex[:8]}")
    later = SUBMITTED + timedelta(days=3, microseconds=7)
    first, second = case.requests[0], case.requests[1]
    first.status, first.decision, first.decided_at = RequestStatus.DECIDED, Decision.REJECTED, later
    first.grounds = [RefusalGround.ECOLOGICAL_RED_LINE]
    first.reasons, first.conditions, first.findings = ["红线内 (line 3)"], ["条件一", "条件二"], ["现场核查: 不符"]
    first.reminded = [0.5, 0.8]
    first.on_commitment, first.verify_by, first.verification = True, later, Verification.FAILED
    first.data_waits = [
        DataWait("AGR-1", "planning", "planning.site-plan", ["parcel", "area"], SUBMITTED, later,
                 DataOutcome.WITHHELD, SharingGround.PERSONAL_INFORMATION, True),
        DataWait("AGR-2", "housing", "housing.record", ["owner"], later.astimezone(UTC)),
    ]
    second.paused_since, second.paused_days, second.supplements = later, 1.25, 2
    case.reopened = [Reopening(later, later + timedelta(hours=1))]
    case.reasons, case.stage_started = ["重新提交"], {1: SUBMITTED, 2: later}
    case.conflicts = [Conflict("CF-1", 1, later, later, Resolution.PROCEED_WITH_CONDITIONS, ["协调条件"], ["理由"]),
                      Conflict("CF-2", 2, later)]
    return case


async def _row_versions(connection: asyncpg.Connection, case_id: str) -> list[tuple[str, str]]:
    """Each request and conflict row's id and the transaction that last wrote it."""
    rows = await connection.fetch(
        "SELECT request_id AS id, xmin::text AS written FROM bureau.requests WHERE case_id = $1"
        " UNION ALL SELECT conflict_id, xmin::text FROM bureau.conflicts WHERE case_id = $1 ORDER BY 1", case_id)
    return [(r["id"], r["written"]) for r in rows]


async def test_a_case_reads_back_as_saved_and_an_unchanged_one_writes_no_row_again(
        connection: asyncpg.Connection) -> None:
    case = _case_with_every_field()
    try:
        await repository.save(connection, case, None)
        loaded = await repository.load(connection, case.case_id)
        assert loaded == case
        written = await _row_versions(connection, case.case_id)
        assert len(written) == len(case.requests) + len(case.conflicts)

        cases = PgCases(connection)
        async with connection.transaction():
            unchanged = await cases.load(case.case_id, for_update=True)
            assert unchanged is not None
            await cases.save(unchanged, None)
        assert await _row_versions(connection, case.case_id) == written

        async with connection.transaction():
            changed = await cases.load(case.case_id, for_update=True)
            assert changed is not None
            changed.requests[1].reminded.append(0.5)
            await cases.save(changed, None)
        rewritten = {row for row in await _row_versions(connection, case.case_id) if row not in written}
        assert [request_id for request_id, _ in rewritten] == [case.requests[1].request_id]
        assert await repository.load(connection, case.case_id) == changed
    finally:
        for table in ("requests", "conflicts", "cases"):
            await connection.execute(f"DELETE FROM bureau.{table} WHERE case_id = $1", case.case_id)


async def test_a_page_of_cases_applies_the_filters_given_and_only_those(connection: asyncpg.Connection) -> None:
    run = uuid.uuid4().hex[:8]
    opened = []
    for n, (agent, status) in enumerate([("王芳", CaseStatus.IN_PROGRESS), ("李强", CaseStatus.SUSPENDED),
                                         ("王芳", CaseStatus.COMPLETED)]):
        case, _ = Case.open(application(random.Random(n)), agent, SUBMITTED + timedelta(hours=n), load_catalogue(),
                            WorkingDayCalendar(), case_id=f"G-FIND-{run}-{n}")
        case.status = status
        opened.append(case)
    ids = [c.case_id for c in opened]
    try:
        for case in opened:
            await repository.save(connection, case, None)
        assert await repository.find(connection, ids, [], None, 10, 0) == (ids[::-1], 3)  # newest first
        assert await repository.find(connection, ids, [], None, 1, 1) == ([ids[1]], 3)
        assert await repository.find(connection, ids, [CaseStatus.IN_PROGRESS, CaseStatus.COMPLETED], "王芳", 10, 0) \
            == ([ids[2], ids[0]], 2)
        assert await repository.find(connection, ids, [], "李强", None, 0) == ([ids[1]], 1)
        assert await repository.find(connection, ids, [], None, 10, 0, applicant=True) == ([ids[1]], 1)  # suspended
        page, total = await repository.find(connection, [], [CaseStatus.SUSPENDED], None, 500, 0)
        assert ids[1] in page and ids[0] not in page and total >= 1
    finally:
        for table in ("requests", "conflicts", "cases"):
            await connection.execute(f"DELETE FROM bureau.{table} WHERE case_id = ANY($1)", ids)


async def test_the_cases_something_may_hold_up_are_those_whose_case_says_so(connection: asyncpg.Connection) -> None:
    """Cases in each of the ways a case is held up, and in the ways it is not: the statement's choice is the cases
    whose ``Case.stuck`` names something at that instant, so that the page of the cases held up reads those alone."""
    run = uuid.uuid4().hex[:8]
    now = SUBMITTED + timedelta(days=1)
    later = now + timedelta(days=30)

    def suspended(case: Case) -> None:
        case.status = CaseStatus.SUSPENDED

    def conflict(case: Case) -> None:
        case.conflicts = [Conflict(f"CF-{case.case_id}", 1, now)]

    def decided_conflict(case: Case) -> None:
        case.conflicts = [Conflict(f"CF-{case.case_id}", 1, now, now, Resolution.PROCEED_WITH_CONDITIONS)]

    def supplement(case: Case) -> None:
        case.requests[0].status, case.requests[0].paused_since = RequestStatus.AWAITING_SUPPLEMENT, now

    def overdue(case: Case) -> None:
        case.requests[0].due_at = now - timedelta(hours=1)

    def overdue_but_paused(case: Case) -> None:
        case.requests[0].due_at, case.requests[0].paused_since = now - timedelta(hours=1), now - timedelta(days=1)

    def overdue_but_decided(case: Case) -> None:
        case.requests[0].due_at, case.requests[0].status = now - timedelta(hours=1), RequestStatus.DECIDED

    def waits_for_data(case: Case) -> None:
        case.requests[0].data_waits = [DataWait("AGR-W", "planning", "planning.site-plan", ["parcel"], now)]

    def had_its_data(case: Case) -> None:
        case.requests[0].data_waits = [DataWait("AGR-W", "planning", "planning.site-plan", ["parcel"], now, now,
                                                DataOutcome.SHARED)]

    def moving(case: Case) -> None:
        for request in case.requests:
            request.due_at = later

    changes = [suspended, conflict, decided_conflict, supplement, overdue, overdue_but_paused, overdue_but_decided,
               waits_for_data, had_its_data, moving]
    opened = []
    for n, change in enumerate(changes):
        case, _ = Case.open(application(random.Random(40 + n)), "王芳", SUBMITTED, load_catalogue(),
                            WorkingDayCalendar(), case_id=f"G-HELD-{run}-{n}")
        for request in case.requests:
            request.due_at = later
        change(case)
        opened.append(case)
    ids = [c.case_id for c in opened]
    try:
        for case in opened:
            await repository.save(connection, case, None)
        found, _ = await repository.find(connection, ids, [], None, None, 0, held_at=now)
        assert set(found) == {c.case_id for c in opened if c.stuck(now)}
        assert len(found) == 5  # suspended, the conflict, the supplement, overdue, waiting for data
    finally:
        for table in ("requests", "conflicts", "cases"):
            await connection.execute(f"DELETE FROM bureau.{table} WHERE case_id = ANY($1)", ids)


async def test_the_agents_open_cases_are_counted_on_their_index(connection: asyncpg.Connection) -> None:
    """The query's predicate and the partial index's must stay the same words, or every submission scans every
    case ever opened: with sequential scans off, the plan names the index."""
    async with connection.transaction():
        await connection.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in await connection.fetch(f"EXPLAIN {AGENT_LOAD}"))
    assert "cases_open_by_agent" in plan, plan
