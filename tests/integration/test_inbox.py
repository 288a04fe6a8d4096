"""The kit's inbox on the real Kafka and PostgreSQL: an event delivered twice changes state once; the group's offsets
follow what was handled (``services.kit.commits``), and a group sent back gets records it had handled as no-ops."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg

from base.clock import SystemClock
from base.settings import ADMIN, Settings
from contracts.bureau import CaseCompleted, CaseOutcome
from contracts.departments import GATEWAY
from contracts.envelope import KafkaRecord, encode
from gateway.topics import DAY_MS, TopicSpec
from services.kit.service import Context, DepartmentService
from services.kit.subscription import WaitingConsumer
from tests.factories import T0
from tests.tools import Inspector, eventually, isolated_topics, produce


async def coordination_alone(stack: Settings, namespace: str, partitions: int = 1) -> tuple[Settings, str]:
    """Settings whose topics are the test's own, empty (the coordination office's deliver topic of ``partitions``
    and its ingress topic made), and the deliver topic."""
    isolated = stack.model_copy(update={"topic_namespace": namespace})
    topic = isolated.topics.deliver("coordination")
    await isolated_topics(stack, [TopicSpec(topic, partitions, DAY_MS),
                                  TopicSpec(isolated.topics.ingress("coordination"), 1, DAY_MS)])
    return isolated, topic


STEPS = "id bigserial PRIMARY KEY, case_id text NOT NULL, step int NOT NULL"  # a table of handled steps, in order


@asynccontextmanager
async def coordination_table(stack: Settings, table: str, columns: str) -> AsyncIterator[asyncpg.Connection]:
    """A table of the coordination office's own for the test's handlers, dropped afterwards; yields a connection of
    the office's role."""
    setup = await asyncpg.connect(stack.dsn("coordination"))
    await setup.execute(f"CREATE TABLE {table} ({columns})")
    try:
        yield setup
    finally:
        await setup.execute(f"DROP TABLE {table}")
        await setup.close()


@asynccontextmanager
async def running(service: DepartmentService) -> AsyncIterator[None]:
    """The service consuming and relaying until the block ends (and stopped then: a stop that takes a minute fails
    here, saying so, rather than holding the run)."""
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 60)
        except TimeoutError:
            raise AssertionError(f"{service.department}'s service did not stop within 60 s") from None


async def test_the_same_event_id_delivered_twice_changes_state_once(stack: Settings) -> None:
    run = uuid.uuid4().hex[:8]
    isolated, topic = await coordination_alone(stack, f"inbox-{run}")
    table = f"coordination.test_counts_{run}"
    service = DepartmentService("coordination", isolated, SystemClock(), group=f"coordination.test-inbox-{run}")

    @service.handles(CaseCompleted)
    async def count(event: CaseCompleted, ctx: Context) -> None:
        await ctx.connection.execute(
            f"INSERT INTO {table} VALUES ($1, 1) ON CONFLICT (case_id) DO UPDATE SET seen = {table}.seen + 1",
            event.case_id,
        )

    twice, once = f"G-IN-{uuid.uuid4().hex[:8]}", f"G-IN-{uuid.uuid4().hex[:8]}"
    repeated = encode(CaseCompleted(case_id=twice, outcome=CaseOutcome.COMPLETED, completed_at=T0), source="/t")
    other = encode(CaseCompleted(case_id=once, outcome=CaseOutcome.COMPLETED, completed_at=T0), source="/t")
    async with coordination_table(stack, table, "case_id text PRIMARY KEY, seen int NOT NULL") as setup, \
            running(service):
        # The gateway delivers at least once: the same record may arrive again after a retry.
        await produce(stack.kafka(GATEWAY), topic, repeated, repeated, other)  # only the gateway delivers

        async def counted() -> bool:
            return await setup.fetchval(f"SELECT count(*) FROM {table} WHERE case_id = ANY($1)", [twice, once]) == 2

        await eventually(counted)  # `other` came after both copies on the one partition: they were handled first
        seen = dict(await setup.fetch(f"SELECT case_id, seen FROM {table} WHERE case_id = ANY($1)", [twice, once]))
        assert seen == {twice: 1, once: 1}
        outcome = await setup.fetchval("SELECT outcome FROM coordination.inbox WHERE event_id = $1",
                                       dict(repeated.headers)["ce_id"].decode())
        assert outcome == "handled"


async def noting_service(stack: Settings, name: str) -> tuple[DepartmentService, str, list[str]]:
    """The coordination office's service alone on topics of its own (``name`` in their namespace and its group),
    noting the case of every CaseCompleted it handles; with its deliver topic and the cases noted."""
    run = uuid.uuid4().hex[:8]
    isolated, topic = await coordination_alone(stack, f"inbox-{name}-{run}")
    service = DepartmentService("coordination", isolated, SystemClock(), group=f"coordination.test-{name}-{run}")
    handled: list[str] = []

    @service.handles(CaseCompleted)
    async def note(event: CaseCompleted, ctx: Context) -> None:
        handled.append(event.case_id)

    return service, topic, handled


async def test_a_quiet_department_takes_a_record_on_the_kits_consumer(stack: Settings) -> None:
    """FastStream's subscriber builds the kit's consumer (``services.kit.subscription``, whose fetch answers only
    with records) with the options FastStream gave its own: on the secured broker, a record that reaches a
    department that had nothing to do is handled."""
    service, topic, handled = await noting_service(stack, "quiet")
    case = f"G-QU-{uuid.uuid4().hex[:8]}"
    async with running(service):
        subscriber = service.broker.subscribers[0]
        await eventually(lambda: subscriber.consumer is not None and bool(subscriber.consumer.assignment()))
        assert type(subscriber.consumer) is WaitingConsumer
        await produce(stack.kafka(GATEWAY), topic, encode(
            CaseCompleted(case_id=case, outcome=CaseOutcome.COMPLETED, completed_at=T0), source="/t"))
        await eventually(lambda: handled == [case])


async def test_a_record_that_says_it_is_json_and_is_not_is_kept_as_unreadable_and_the_events_around_it_handled(
        stack: Settings) -> None:
    """The department's subscriber hands the batch over as it came: FastStream's own decoding would parse each body
    its content-type calls JSON, and one that is not would fail the whole batch before the receiver saw it."""
    service, topic, handled = await noting_service(stack, "json")
    first, second, third = (f"G-JS-{uuid.uuid4().hex[:8]}" for _ in range(3))
    before, readable, after = (encode(CaseCompleted(case_id=case_id, outcome=CaseOutcome.COMPLETED, completed_at=T0),
                                      source="/t") for case_id in (first, second, third))
    broken = KafkaRecord(readable.key, b'{"case_id": "G-JS-', readable.headers)  # content-type: application/json
    broken_id = dict(broken.headers)["ce_id"].decode()
    async with running(service):
        await produce(stack.kafka(GATEWAY), topic, before, broken, after)

        async def kept() -> bool:
            return await service.pool.fetchval("SELECT outcome FROM coordination.inbox WHERE event_id = $1",
                                               broken_id) == "unreadable"

        await eventually(kept)
        await eventually(lambda: len(handled) == 2)
    assert sorted(handled) == sorted([first, third])


async def test_a_batch_of_many_cases_is_handled_on_lanes_once_each_and_in_order_per_case(stack: Settings) -> None:
    """The kit spreads a batch's cases over several transactions at once (services.kit.lanes): a handler
    that fails once rolls back only its lane's unit of work, which comes again, and every event ends handled once,
    each case's events in the order sent."""
    run = uuid.uuid4().hex[:8]
    isolated, topic = await coordination_alone(stack, f"lanes-{run}")
    table = f"coordination.test_lanes_{run}"
    service = DepartmentService("coordination", isolated, SystemClock(), group=f"coordination.test-lanes-{run}")
    cases = [f"G-LANE-{run}-{i}" for i in range(8)]
    failing = (cases[3], 2)
    failed: list[tuple[str, int]] = []

    @service.handles(CaseCompleted)
    async def record(event: CaseCompleted, ctx: Context) -> None:
        step = int((event.completed_at - T0).total_seconds())
        await ctx.connection.execute(f"INSERT INTO {table} (case_id, step) VALUES ($1, $2)", event.case_id, step)
        if (event.case_id, step) == failing and not failed:
            failed.append(failing)
            raise RuntimeError("a transient fault")

    sent = [encode(CaseCompleted(case_id=case, outcome=CaseOutcome.COMPLETED,
                                 completed_at=T0 + timedelta(seconds=step)), source="/t")
            for step in range(5) for case in cases]
    async with coordination_table(stack, table, STEPS) as setup, running(service):
        await produce(stack.kafka(GATEWAY), topic, *sent)

        async def all_handled() -> bool:
            return await setup.fetchval(f"SELECT count(DISTINCT (case_id, step)) FROM {table}") == len(sent)

        await eventually(all_handled)
        rows = await setup.fetch(f"SELECT case_id, step FROM {table} ORDER BY id")
        assert failed == [failing]  # it failed once, and its lane's work was undone: each event is there once
        assert len(rows) == len(sent)
        for case in cases:
            assert [r["step"] for r in rows if r["case_id"] == case] == list(range(5))


async def test_offsets_follow_what_was_handled_and_a_group_sent_back_finds_its_records_handled(stack: Settings) -> None:
    """The offsets are committed a little after the units of work (and at the latest when the service stops), not
    with each batch; a crash before that commit sends the group back, and what it then gets again is a no-op."""
    run = uuid.uuid4().hex[:8]
    isolated, topic = await coordination_alone(stack, f"commits-{run}")
    table = f"coordination.test_commits_{run}"
    group, inspector = f"coordination.test-commits-{run}", Inspector(stack.kafka(ADMIN))
    cases = [f"G-CO-{run}-{i}" for i in range(3)]

    def service() -> DepartmentService:
        department = DepartmentService("coordination", isolated, SystemClock(), group=group)

        @department.handles(CaseCompleted)
        async def count(event: CaseCompleted, ctx: Context) -> None:
            await ctx.connection.execute(
                f"INSERT INTO {table} VALUES ($1, 1) ON CONFLICT (case_id) DO UPDATE SET seen = {table}.seen + 1",
                event.case_id)

        return department

    async def committed() -> int:
        return (await inspector.committed(group, [(topic, 0)])).get((topic, 0), -1)

    def completed(case: str) -> KafkaRecord:
        return encode(CaseCompleted(case_id=case, outcome=CaseOutcome.COMPLETED, completed_at=T0), source="/t")

    async with coordination_table(stack, table, "case_id text PRIMARY KEY, seen int NOT NULL") as setup:
        async def seen() -> dict[str, int]:
            return dict(await setup.fetch(f"SELECT case_id, seen FROM {table}"))

        async with running(service()):
            await produce(stack.kafka(GATEWAY), topic, *[completed(case) for case in cases[:2]])

            async def all_committed() -> bool:
                return await committed() == 2

            await eventually(all_committed)  # without a stop: the interval's commit
            assert await seen() == {cases[0]: 1, cases[1]: 1}
            await produce(stack.kafka(GATEWAY), topic, completed(cases[2]))

            async def third_seen() -> bool:
                return cases[2] in await seen()

            await eventually(third_seen)
        assert await committed() == 3  # stopping committed what was handled

        await inspector.set_committed(group, {(topic, 0): 0})  # as if a crash had come before any commit
        async with running(service()):

            async def taken_again() -> bool:
                return await committed() == 3  # committed once the records sent again were received

            await eventually(taken_again)
            assert await seen() == {case: 1 for case in cases}  # received again, handled once


async def test_a_partition_given_to_another_instance_is_committed_as_far_as_it_was_handled(stack: Settings) -> None:
    """Two instances of a department in one group: when the second joins, the first commits how far it handled the
    partitions it gives up (both commit on a timer of an hour here: only that revocation can have committed), and
    every event is handled once, each case's in order, across the move."""
    run = uuid.uuid4().hex[:8]
    isolated, topic = await coordination_alone(stack, f"moves-{run}", partitions=2)
    table = f"coordination.test_moves_{run}"
    group, inspector = f"coordination.test-moves-{run}", Inspector(stack.kafka(ADMIN))
    cases = [f"G-MV-{run}-{i}" for i in range(6)]
    partitions = {(topic, 0), (topic, 1)}

    def instance() -> DepartmentService:
        department = DepartmentService("coordination", isolated, SystemClock(), group=group)
        department.commits.interval_seconds = 3600

        @department.handles(CaseCompleted)
        async def record(event: CaseCompleted, ctx: Context) -> None:
            await ctx.connection.execute(f"INSERT INTO {table} (case_id, step) VALUES ($1, $2)", event.case_id,
                                         int((event.completed_at - T0).total_seconds()))

        return department

    async def steps(first: int, last: int) -> None:
        await produce(stack.kafka(GATEWAY), topic, *[
            encode(CaseCompleted(case_id=case, outcome=CaseOutcome.COMPLETED,
                                 completed_at=T0 + timedelta(seconds=step)), source="/t")
            for step in range(first, last) for case in cases])

    async with coordination_table(stack, table, STEPS) as setup:
        def handled(count: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return await setup.fetchval(f"SELECT count(*) FROM {table}") == count
            return check

        async with running(instance()):
            await steps(0, 3)
            await eventually(handled(3 * len(cases)))
            assert set((await inspector.committed(group, sorted(partitions))).values()) <= {-1, -1001}  # none yet
            async with running(instance()):

                async def both_hold_a_partition() -> bool:
                    return sorted(len(held) for _, held in await inspector.members(group)) == [1, 1]

                await eventually(both_hold_a_partition)
                assert await inspector.caught_up(group, partitions)  # the first's handling, committed on revocation
                await steps(3, 6)
                await eventually(handled(6 * len(cases)))
        rows = await setup.fetch(f"SELECT case_id, step FROM {table} ORDER BY id")
        for case in cases:
            assert [r["step"] for r in rows if r["case_id"] == case] == list(range(6))
