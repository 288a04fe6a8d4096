"""Lists that grow with the cases come a page at a time, on PostgreSQL: a desk's tasks (oldest first) and the
sharing agreements (newest first, or by where they stand for the console), each page of the filters given and in
an order that is total, so that the pages of a list hold each of its rows once; and how many match in all."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import pytest

from base.calendar import WorkingDayCalendar
from base.settings import Settings
from contracts.bureau import CaseSubmitted
from contracts.departments import GATEWAY, PLANNING
from deploy.processes import AppProcesses
from gateway.agreements import AgreementStore, Standing, Status
from gateway.notices import Notices
from services.departments.store import PgDeskStore
from services.departments.tasks import Task, TaskKind, TaskStatus
from tests.e2e.cases import desks

AT = datetime(2101, 3, 1, 12, 0, tzinfo=UTC)  # far past any clock of the tests: no sweep of the exchange acts on these
DAY = timedelta(days=1)


async def all_pages(read: Callable[[int, int], Awaitable[tuple[list[Any], int]]], limit: int) -> tuple[list[Any], int]:
    """Every row of a list read page by page, and the totals each page told."""
    rows: list[Any] = []
    totals = set()
    offset = 0
    while True:
        page, total = await read(limit, offset)
        assert len(page) <= limit
        rows += page
        totals.add(total)
        offset += len(page)
        if not page or offset >= total:
            break
    assert len(totals) == 1, totals
    return rows, totals.pop()


# --- a desk's tasks ---------------------------------------------------------------------------------------------
@pytest.fixture
async def planning(stack: Settings) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(stack.dsn(PLANNING))
    try:
        yield connection
    finally:
        await connection.execute("DELETE FROM planning.tasks WHERE case_id LIKE 'G-PAGES-%'")
        await connection.close()


STATUSES = [TaskStatus.DECIDED, TaskStatus.OPEN, TaskStatus.DECIDED, TaskStatus.NOTED, TaskStatus.DECIDED,
            TaskStatus.AWAITING_SUPPLEMENT, TaskStatus.DECIDED]


async def file_tasks(connection: asyncpg.Connection) -> tuple[str, list[Task]]:
    """Seven tasks of one case received in a shuffled order, and one of another case, all in 2101."""
    case = f"G-PAGES-{uuid.uuid4().hex[:8]}"
    received = [AT + timedelta(minutes=m) for m in random.Random(5).sample(range(100), len(STATUSES))]
    tasks = [Task(f"{case}/T{i}", TaskKind.OPINION, case, "NRP-101", {}, status, at, AT + 400 * DAY)
             for i, (status, at) in enumerate(zip(STATUSES, received, strict=True))]
    store = PgDeskStore(connection, PLANNING)
    for task in [*tasks, Task(f"{case}-2/T0", TaskKind.OPINION, f"{case}-2", "NRP-101", {}, TaskStatus.DECIDED, AT,
                              AT + 400 * DAY)]:
        await store.add(task)
    return case, tasks


async def test_a_desks_tasks_come_a_page_at_a_time_oldest_first_of_the_case_and_status_given(
        planning: asyncpg.Connection) -> None:
    case, tasks = await file_tasks(planning)
    store = PgDeskStore(planning, PLANNING)
    oldest_first = [t.task_id for t in sorted(tasks, key=lambda t: t.received_at)]

    rows, total = await all_pages(lambda limit, offset: store.page(None, case, limit, offset), 3)
    assert [t.task_id for t in rows] == oldest_first and total == 7
    assert rows[0] == min(tasks, key=lambda t: t.received_at)  # read back whole

    decided, total = await all_pages(lambda limit, offset: store.page(TaskStatus.DECIDED, case, limit, offset), 2)
    assert [t.task_id for t in decided] == [i for i in oldest_first if i.endswith(("T0", "T2", "T4", "T6"))]
    assert total == 4
    assert await store.page(TaskStatus.PARKED, case, 5, 0) == ([], 0)
    past_the_end, total = await store.page(None, case, 5, 10)
    assert past_the_end == [] and total == 7


async def test_the_desks_api_pages_a_cases_tasks_and_reads_one_by_its_id(
        stack: Settings, exchange: AppProcesses, planning: asyncpg.Connection) -> None:
    case, tasks = await file_tasks(planning)
    oldest_first = [t.task_id for t in sorted(tasks, key=lambda t: t.received_at)]
    seen: list[str] = []
    async with desks(stack, PLANNING) as http:
        offset: int | None = 0
        while offset is not None:
            answer = await http.get("/v1/departments/planning/tasks", params={"case": case, "limit": 3,
                                                                             "offset": offset})
            assert answer.status_code == 200, answer.text
            page = answer.json()
            assert page["total"] == 7
            seen += [t["task_id"] for t in page["tasks"]]
            offset = page["next_offset"]
        assert seen == oldest_first
        one = await http.get(f"/v1/departments/planning/tasks/{tasks[3].task_id}")
        assert one.status_code == 200 and one.json()["status"] == "noted" and one.json()["case_id"] == case
        assert (await http.get(f"/v1/departments/planning/tasks/{case}/none")).status_code == 404
        assert (await http.get("/v1/departments/planning/tasks", params={"status": "lost"})).status_code == 422
        assert (await http.get("/v1/departments/planning/tasks", params={"limit": 201})).status_code == 422


# --- agreements -------------------------------------------------------------------------------------------------
@pytest.fixture
async def gateway(stack: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(stack.dsn(GATEWAY), min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.execute("DELETE FROM gateway.agreements WHERE id LIKE 'AGR-PAGES-%'")
        await pool.close()


# Each agreement: its status, due, escalated, valid from and until (days from AT), case; and where it stands at AT.
AGREEMENTS: list[tuple[Status, int, bool, int, int, str | None, Standing]] = [
    (Status.PENDING, 3, False, 0, 30, None, Standing.PENDING),
    (Status.PENDING, 1, False, 0, 30, "C1", Standing.PENDING),
    (Status.COUNTERED, 2, False, 0, 30, None, Standing.PENDING),
    (Status.PENDING, -1, False, 0, 30, None, Standing.OVERDUE),  # its time is up
    (Status.PENDING, 5, True, 0, 30, "C1", Standing.OVERDUE),  # escalated as late before it was due
    (Status.ESCALATED, 4, True, 0, 30, None, Standing.OVERDUE),  # a refusal before the office
    (Status.APPROVED, 0, False, -2, 30, "C1", Standing.IN_FORCE),
    (Status.APPROVED, 0, False, 0, 1, None, Standing.IN_FORCE),  # from this very instant
    (Status.APPROVED, 0, False, 1, 30, None, Standing.ENDED),  # not yet in force
    (Status.APPROVED, 0, False, -30, 0, None, Standing.ENDED),  # expired this very instant
    (Status.SUSPENDED, 0, False, -2, 30, None, Standing.ENDED),
    (Status.REVOKED, 0, False, -2, 30, "C1", Standing.ENDED),
    (Status.REJECTED, -3, False, 0, 30, None, Standing.ENDED),
    (Status.UPHELD, 0, True, 0, 30, None, Standing.ENDED),
    (Status.ENDED, 0, False, -2, 30, "C1", Standing.ENDED),
]


async def file_agreements(pool: asyncpg.Pool) -> tuple[str, str, dict[str, Standing], dict[str, str | None]]:
    """The agreements above between the bureau and a consumer of this test's own (so that no other test's are
    counted), each requested a minute after the one before, in a shuffled order; their ids by standing, by case."""
    run = uuid.uuid4().hex[:8]
    consumer = "".join(random.choices(string.ascii_lowercase, k=12))
    case = f"G-PAGES-{run}"
    standing, cases = {}, {}
    for n in random.Random(8).sample(range(len(AGREEMENTS)), len(AGREEMENTS)):
        status, due, escalated, start, end, scope, where = AGREEMENTS[n]
        agreement_id = f"AGR-PAGES-{run}-{n:02d}"
        await pool.execute(
            "INSERT INTO gateway.agreements (id, contract_id, provider, consumer, fields, purpose, legal_basis,"
            " valid_from, valid_until, status, requested_at, remind_at, due_at, escalated_at, case_id)"
            " VALUES ($1, $2, 'bureau', $3, $4, 'pages', 'basis', $5, $6, $7, $8, $8, $9, $10, $11)",
            agreement_id, CaseSubmitted.CONTRACT.id, consumer, ["contact_phone"], AT + start * DAY, AT + end * DAY,
            status.value, AT - 100 * DAY + n * timedelta(minutes=1), AT + due * DAY,
            AT - DAY if escalated else None, case if scope else None)
        standing[agreement_id], cases[agreement_id] = where, case if scope else None
    return consumer, case, standing, cases


def store(pool: asyncpg.Pool) -> AgreementStore:
    """The store as its lists use it: no step is taken, so no notice is sent."""
    return AgreementStore(pool, cast(Notices, None), WorkingDayCalendar())


async def test_agreements_come_a_page_at_a_time_newest_first_of_the_party_statuses_and_case_given(
        gateway: asyncpg.Pool) -> None:
    consumer, case, _, cases = await file_agreements(gateway)
    agreements = store(gateway)
    newest_first = sorted(cases, reverse=True)  # requested a minute apart, in the order of their numbers

    rows, total = await all_pages(lambda limit, offset: agreements.page(consumer, [], None, limit, offset), 4)
    assert [a.id for a in rows] == newest_first and total == len(AGREEMENTS)

    suspended_or_revoked, _ = await agreements.page(consumer, [Status.SUSPENDED, Status.REVOKED], None, 50, 0)
    assert {a.status for a in suspended_or_revoked} == {Status.SUSPENDED, Status.REVOKED}
    assert len(suspended_or_revoked) == 2

    of_the_case, total = await all_pages(lambda limit, offset: agreements.page(consumer, [], case, limit, offset), 2)
    assert [a.id for a in of_the_case] == [i for i in newest_first if cases[i] == case] and total == 5
    assert await agreements.page(consumer, [Status.APPROVED], case, 50, 0) == (
        [a for a in of_the_case if a.status is Status.APPROVED], 1)
    assert await agreements.page("nobody", [], None, 50, 0) == ([], 0)


async def test_the_console_counts_the_agreements_by_where_they_stand_and_pages_each(gateway: asyncpg.Pool) -> None:
    consumer, _, standing, _ = await file_agreements(gateway)
    agreements = store(gateway)
    due = {f"{i:02d}": AGREEMENTS[i][1] for i in range(len(AGREEMENTS))}

    first = await agreements.by_standing(consumer, AT, 2)
    assert list(first) == list(Standing)
    for kind, (shown, total) in first.items():
        ids = [a.id for a in shown]
        assert total == sum(1 for s in standing.values() if s is kind), kind
        assert len(ids) == min(2, total) and all(standing[i] is kind for i in ids), (kind, ids)
    pending = [a.id for a in first[Standing.PENDING][0]]  # someone's move: the earliest due first
    assert [due[i[-2:]] for i in pending] == [1, 2]

    ended, total = await all_pages(
        lambda limit, offset: _one(agreements.by_standing(consumer, AT, limit, offset, Standing.ENDED)), 3)
    assert [a.id for a in ended] == sorted((i for i, s in standing.items() if s is Standing.ENDED), reverse=True)
    assert total == 7  # the rest newest first, each once
    overdue, total = await all_pages(
        lambda limit, offset: _one(agreements.by_standing(consumer, AT, limit, offset, Standing.OVERDUE)), 1)
    assert [due[a.id[-2:]] for a in overdue] == [-1, 4, 5] and total == 3
    assert await agreements.by_standing("nobody", AT, 5) == {kind: ([], 0) for kind in Standing}


async def _one(found: Awaitable[dict[Standing, tuple[list[Any], int]]]) -> tuple[list[Any], int]:
    [(shown, total)] = (await found).values()
    return shown, total
