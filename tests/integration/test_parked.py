"""Parked events on the real Kafka and PostgreSQL: an event whose handler kept failing is kept with its record,
listed, and run again once the cause is gone, by the department's own service (its handler, unit of work and
outbox), with its effects there once; `concord inbox` does it as the department, for a reviewing department and
for the bureau."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from base.clock import SystemClock
from base.settings import ADMIN, Settings
from contracts.bureau import CaseCompleted, CaseOutcome
from contracts.departments import GATEWAY
from contracts.envelope import SENDER_HEADER, KafkaRecord, encode
from deploy.processes import AppProcesses
from gateway.topics import DAY_MS, TopicSpec
from services.kit.inbox import MAX_ATTEMPTS, NotReplayable, Outcome, PgInbox, Unreplayable
from services.kit.service import Context, DepartmentService
from tests.factories import T0, opinion_issued, opinion_requested
from tests.tools import Tail, eventually, header, isolated_topics, produce, run_concord


def from_sender(record: KafkaRecord, sender: str) -> KafkaRecord:
    """A record as the gateway delivers it: with the department it came from."""
    return KafkaRecord(record.key, record.value, [*record.headers, (SENDER_HEADER, sender.encode())])


async def outcome_of(connection: asyncpg.Connection, schema: str, event_id: str) -> str | None:
    outcome: str | None = await connection.fetchval(f"SELECT outcome FROM {schema}.inbox WHERE event_id = $1",
                                                    event_id)
    return outcome


class Blocked:
    """A department's table of its own: while a case is in it, the test's handler fails on that case's events."""

    def __init__(self, connection: asyncpg.Connection, table: str) -> None:
        self.connection = connection
        self.table = table

    async def block(self, case_id: str) -> None:
        await self.connection.execute(f"INSERT INTO {self.table} VALUES ($1)", case_id)

    async def free(self, case_id: str) -> None:
        await self.connection.execute(f"DELETE FROM {self.table} WHERE case_id = $1", case_id)


async def park_at(connection: asyncpg.Connection, schema: str, event_id: str) -> None:
    async def parked() -> bool:
        return await outcome_of(connection, schema, event_id) == Outcome.PARKED.value

    await eventually(parked, timeout=60)


@pytest_asyncio.fixture
async def coordination(stack: Settings) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(stack.dsn("coordination"))  # the department's own role and tables
    try:
        yield connection
    finally:
        await connection.close()


async def test_an_event_parked_by_a_failing_handler_runs_again_once_the_cause_is_gone_and_takes_effect_once(
    stack: Settings, coordination: asyncpg.Connection
) -> None:
    run = uuid.uuid4().hex[:8]
    isolated = stack.model_copy(update={"topic_namespace": f"parked-{run}"})  # topics of its own, empty
    deliver, ingress = isolated.topics.deliver("coordination"), isolated.topics.ingress("coordination")
    await isolated_topics(stack, [TopicSpec(deliver, 1, DAY_MS), TopicSpec(ingress, 1, DAY_MS)])
    blocked, effects = f"coordination.test_blocked_{run}", f"coordination.test_effects_{run}"
    await coordination.execute(f"CREATE TABLE {blocked} (case_id text PRIMARY KEY)")
    await coordination.execute(f"CREATE TABLE {effects} (case_id text NOT NULL, at timestamptz NOT NULL)")
    marker = Blocked(coordination, blocked)

    def service() -> DepartmentService:
        """The department's service with its handler: one consumes, another replays, as `concord inbox` does."""
        made = DepartmentService("coordination", isolated, SystemClock(), group=f"coordination.test-parked-{run}")

        @made.handles(CaseCompleted)
        async def complete(event: CaseCompleted, ctx: Context) -> None:
            await ctx.connection.execute(f"INSERT INTO {effects} VALUES ($1, now())", event.case_id)
            if await ctx.connection.fetchval(f"SELECT 1 FROM {blocked} WHERE case_id = $1", event.case_id):
                raise RuntimeError(f"case {event.case_id} is blocked")
            await ctx.publish(opinion_issued(event.case_id))

        return made

    stuck, passing = f"G-PARK-{run}-1", f"G-PARK-{run}-2"
    first = encode(CaseCompleted(case_id=stuck, outcome=CaseOutcome.COMPLETED, completed_at=T0), source="/t")
    second = encode(CaseCompleted(case_id=passing, outcome=CaseOutcome.COMPLETED, completed_at=T0), source="/t")
    stuck_id, passing_id = (dict(r.headers)["ce_id"].decode() for r in (first, second))
    await marker.block(stuck)
    consuming, replaying = service(), service()
    stop = asyncio.Event()
    running = asyncio.create_task(consuming.run(stop))
    await replaying.connect()
    try:
        async with Tail(stack.kafka(ADMIN), ingress) as published:
            await produce(stack.kafka(GATEWAY), deliver, from_sender(first, "bureau"), from_sender(second, "bureau"))
            await park_at(coordination, "coordination", stuck_id)
            await published.wait_for(lambda r: r.key == passing.encode())  # the stream went on

            [listed] = [p for p in await PgInbox(coordination, "coordination").parked_events()
                        if p.event_id == stuck_id]
            assert (listed.contract, listed.sender, listed.attempts) == ("bureau.case-completed", "bureau",
                                                                         MAX_ATTEMPTS)
            assert f"case {stuck} is blocked" in listed.error

            # The cause is still there: the replay fails, its changes are undone, the event stays parked.
            again = await replaying.replay(stuck_id)
            assert again.outcome is Outcome.PARKED and again.error and "is blocked" in again.error
            assert await coordination.fetchval("SELECT attempts FROM coordination.inbox WHERE event_id = $1",
                                               stuck_id) == MAX_ATTEMPTS + 1

            await marker.free(stuck)
            done = await replaying.replay(stuck_id)
            assert done.outcome is Outcome.HANDLED and done.error is None
            row = await coordination.fetchrow("SELECT outcome, replayed_at FROM coordination.inbox WHERE event_id = $1",
                                              stuck_id)
            assert row["outcome"] == Outcome.HANDLED.value and row["replayed_at"] is not None
            assert await coordination.fetchval(f"SELECT count(*) FROM {effects} WHERE case_id = $1", stuck) == 1
            # What the handler published went out through the outbox, relayed by the running service, once.
            await published.wait_for(lambda r: r.key == stuck.encode())
            [sent] = [r for r in await published.drain() if r.key == stuck.encode()]
            assert header(sent, "ce_type") == "bureau.opinion-issued"

            for event_id, why in ((stuck_id, Unreplayable.REPLAYED), (passing_id, Unreplayable.HANDLED),
                                  (f"no-such-{run}", Unreplayable.UNKNOWN)):
                with pytest.raises(NotReplayable) as refused:
                    await replaying.replay(event_id)
                assert refused.value.why is why
            assert await coordination.fetchval(f"SELECT count(*) FROM {effects} WHERE case_id = $1", stuck) == 1
    finally:
        stop.set()
        await running
        await replaying.disconnect()
        await coordination.execute(f"DROP TABLE {blocked}, {effects}")


async def test_concord_inbox_lists_a_departments_parked_event_and_replays_it_as_the_department(
    stack: Settings, exchange: AppProcesses
) -> None:
    """Planning's real desk opens a task for a request; a trigger of the test's makes that fail while the case is
    marked. The event is parked, listed, refused a replay while the mark stands, then replayed: one task."""
    run = uuid.uuid4().hex[:8]
    case_id = f"G-PARK-{run}"
    planning = await asyncpg.connect(stack.dsn("planning"))
    blocked = f"planning.test_blocked_{run}"
    await planning.execute(f"CREATE TABLE {blocked} (case_id text PRIMARY KEY)")
    await planning.execute(f"""
        CREATE FUNCTION planning.test_block_{run}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM {blocked} WHERE case_id = NEW.case_id) THEN
                RAISE EXCEPTION 'case % is blocked by the test', NEW.case_id;
            END IF;
            RETURN NEW;
        END $$""")
    await planning.execute(f"CREATE TRIGGER test_block_{run} BEFORE INSERT ON planning.tasks FOR EACH ROW"
                           f" EXECUTE FUNCTION planning.test_block_{run}()")
    marker = Blocked(planning, blocked)
    await marker.block(case_id)
    request = encode(opinion_requested(case_id), source="/concord/bureau")
    event_id = dict(request.headers)["ce_id"].decode()
    try:
        await produce(stack.kafka("bureau"), "ingress.bureau", request)
        await park_at(planning, "planning", event_id)

        listed = await run_concord("inbox", "parked", "planning", "--json")
        assert listed.code == 0, listed.err
        [entry] = [e for e in json.loads(listed.out) if e["event_id"] == event_id]
        assert (entry["contract"], entry["sender"], entry["attempts"]) == ("bureau.opinion-requested", "bureau",
                                                                           MAX_ATTEMPTS)
        assert "blocked by the test" in entry["error"] and entry["parked_at"]
        table = await run_concord("inbox", "parked", "planning")
        assert table.code == 0 and event_id in table.out

        failed = await run_concord("inbox", "replay", "planning", event_id)
        assert failed.code == 1 and "failed again" in failed.err and "blocked by the test" in failed.err
        assert await outcome_of(planning, "planning", event_id) == Outcome.PARKED.value

        await marker.free(case_id)
        replayed = await run_concord("inbox", "replay", "planning", event_id, "--json")
        assert replayed.code == 0, replayed.err
        assert json.loads(replayed.out) == {"department": "planning", "event_id": event_id, "outcome": "handled",
                                            "error": None}
        assert await planning.fetchval("SELECT count(*) FROM planning.tasks WHERE case_id = $1", case_id) == 1
        assert event_id not in (await run_concord("inbox", "parked", "planning")).out

        twice = await run_concord("inbox", "replay", "planning", event_id, "--json")
        assert twice.code == 1 and json.loads(twice.out)["why"] == "replayed"
        assert "handled by a replay already" in twice.err
        assert await planning.fetchval("SELECT count(*) FROM planning.tasks WHERE case_id = $1", case_id) == 1
    finally:
        await planning.execute(f"DROP TRIGGER test_block_{run} ON planning.tasks")
        await planning.execute(f"DROP FUNCTION planning.test_block_{run}(); DROP TABLE {blocked}")
        await planning.close()


async def test_the_bureau_replays_a_parked_event_with_its_own_handler(stack: Settings, exchange: AppProcesses) -> None:
    """The bureau's unit of work fails while the event is marked (a trigger on its inbox refuses to record it
    handled), so the opinion is parked; once unmarked, `concord inbox replay bureau` runs the bureau's handler."""
    run = uuid.uuid4().hex[:8]
    bureau = await asyncpg.connect(stack.dsn("bureau"))
    blocked = f"bureau.test_blocked_{run}"
    await bureau.execute(f"CREATE TABLE {blocked} (event_id text PRIMARY KEY)")
    await bureau.execute(f"""
        CREATE FUNCTION bureau.test_block_{run}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.outcome = 'handled' AND EXISTS (SELECT 1 FROM {blocked} WHERE event_id = NEW.event_id) THEN
                RAISE EXCEPTION 'event % is blocked by the test', NEW.event_id;
            END IF;
            RETURN NEW;
        END $$""")
    await bureau.execute(f"CREATE TRIGGER test_block_{run} BEFORE INSERT ON bureau.inbox FOR EACH ROW"
                         f" EXECUTE FUNCTION bureau.test_block_{run}()")
    opinion = encode(opinion_issued(f"G-PARK-{run}"), source="/concord/planning")
    event_id = dict(opinion.headers)["ce_id"].decode()
    await bureau.execute(f"INSERT INTO {blocked} VALUES ($1)", event_id)
    try:
        await produce(stack.kafka("planning"), "ingress.planning", opinion)
        await park_at(bureau, "bureau", event_id)
        listed = await run_concord("inbox", "parked", "bureau", "--json")
        assert event_id in {e["event_id"] for e in json.loads(listed.out)}

        await bureau.execute(f"DELETE FROM {blocked} WHERE event_id = $1", event_id)
        replayed = await run_concord("inbox", "replay", "bureau", event_id)
        assert replayed.code == 0, replayed.err
        assert "handled by a replay" in replayed.out
        assert await outcome_of(bureau, "bureau", event_id) == Outcome.HANDLED.value

        unknown = await run_concord("inbox", "replay", "bureau", f"no-such-{run}")
        assert unknown.code == 1 and "is not in its inbox" in unknown.err
    finally:
        await bureau.execute(f"DROP TRIGGER test_block_{run} ON bureau.inbox")
        await bureau.execute(f"DROP FUNCTION bureau.test_block_{run}(); DROP TABLE {blocked}")
        await bureau.close()
