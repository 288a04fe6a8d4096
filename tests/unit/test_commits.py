"""A department's consumed offsets (``services.kit.commits``): committed up to the first record still being handled,
within an interval, on revocation and on stop; never ahead of a record not handled; kept when a commit fails."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from services.kit.commits import Commits
from tests.tools import eventually

A, B = TopicPartition("deliver.water", 0), TopicPartition("deliver.water", 1)


def record(tp: TopicPartition, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


class FakeConsumer:
    def __init__(self, assignment: set[TopicPartition], failures: int = 0) -> None:
        self.owned = assignment
        self.failures = failures
        self.commits: list[dict[TopicPartition, int]] = []
        self.paused: set[TopicPartition] = set()

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the coordinator is away")
        self.commits.append(dict(offsets))

    def assignment(self) -> set[TopicPartition]:
        return self.owned

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused |= set(partitions)


def handle(commits: Commits, consumer: FakeConsumer, *records: ConsumerRecord[bytes, bytes]) -> None:
    commits.taken(consumer, records)
    commits.handled(records)


async def test_a_flush_commits_past_the_last_handled_record_of_each_partition_once() -> None:
    consumer, commits = FakeConsumer({A, B}), Commits("water")
    handle(commits, consumer, record(A, 3), record(A, 4), record(B, 9))
    handle(commits, consumer, record(A, 5))
    await commits.flush()
    await commits.flush()  # nothing new since
    assert consumer.commits == [{A: 6, B: 10}]


async def test_the_offset_stops_at_the_first_record_still_being_handled() -> None:
    """Lanes finish out of order: a later record handled first moves nothing past an earlier one still under way."""
    consumer, commits = FakeConsumer({A}), Commits("water")
    early, middle, late = record(A, 10), record(A, 11), record(A, 12)
    commits.taken(consumer, [early, middle, late])
    commits.handled([late])
    await commits.flush()
    assert consumer.commits == [{A: 10}]  # nothing handled before 10 was taken here: the group starts at 10 again
    commits.handled([early])
    await commits.flush()
    commits.handled([middle])
    await commits.flush()
    assert consumer.commits == [{A: 10}, {A: 11}, {A: 13}]


async def test_nothing_is_committed_before_a_record_is_handled() -> None:
    consumer, commits = FakeConsumer({A}), Commits("water")
    commits.taken(consumer, [record(A, 0)])
    await commits.flush()
    assert consumer.commits == []


async def test_a_failed_commit_keeps_its_offsets_for_the_next_and_newer_ones_win() -> None:
    consumer, commits = FakeConsumer({A, B}, failures=1), Commits("water")
    handle(commits, consumer, record(A, 3), record(B, 1))
    await commits.flush()
    assert consumer.commits == []
    handle(commits, consumer, record(A, 7))
    await commits.flush()
    assert consumer.commits == [{A: 8, B: 2}]


async def test_offsets_of_partitions_no_longer_assigned_are_dropped() -> None:
    consumer, commits = FakeConsumer({A, B}), Commits("water")
    handle(commits, consumer, record(A, 3), record(B, 4))
    consumer.owned = {B}  # A went to another member: it reads from the group's last commit
    await commits.flush()
    consumer.owned = {A, B}
    await commits.flush()
    assert consumer.commits == [{B: 5}]


async def test_revocation_waits_for_what_was_taken_then_commits_and_forgets_the_partition() -> None:
    consumer, commits = FakeConsumer({A}), Commits("water", interval_seconds=3600)
    first, second = record(A, 2), record(A, 3)
    commits.taken(consumer, [first, second])
    commits.handled([first])
    revoking = asyncio.create_task(commits.on_partitions_revoked({A}))
    await eventually(lambda: not commits._progress.is_set())  # the marker: it waits for progress, 3 still under way
    assert not revoking.done() and consumer.commits == []
    commits.handled([second])
    await revoking
    assert consumer.commits == [{A: 4}]
    commits.handled([record(A, 4)])  # taken before the partition went: its new owner reads it again
    await commits.flush()
    assert consumer.commits == [{A: 4}]


async def test_running_commits_an_interval_after_a_unit_of_work_and_stopping_commits_the_rest() -> None:
    consumer, commits = FakeConsumer({A, B}), Commits("water", interval_seconds=0.01)
    running = asyncio.create_task(commits.run())
    handle(commits, consumer, record(A, 0))

    async def committed() -> bool:
        return consumer.commits == [{A: 1}]

    await eventually(committed, timeout=5)
    slow = Commits("water", interval_seconds=3600)
    waiting = asyncio.create_task(slow.run())
    handle(slow, consumer, record(B, 4))
    slow.pause()
    assert consumer.paused == {A, B}
    await slow.stop(waiting)  # the interval has not passed: stopping commits it
    assert consumer.commits == [{A: 1}, {B: 5}]
    assert waiting.cancelled()
    await commits.stop(running)


@pytest.mark.parametrize("failures", [1, 2])
async def test_running_tries_a_failed_commit_again(failures: int) -> None:
    consumer, commits = FakeConsumer({A}, failures=failures), Commits("water", interval_seconds=0.01)
    running = asyncio.create_task(commits.run())
    handle(commits, consumer, record(A, 41))

    async def committed() -> bool:
        return consumer.commits == [{A: 42}]

    await eventually(committed, timeout=5)
    await commits.stop(running)
