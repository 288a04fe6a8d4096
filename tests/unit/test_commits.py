"""A department's consumed offsets (``services.kit.commits``): committed after what was handled, within an interval,
on revocation and on stop; never ahead of a batch that has not committed; kept when a commit fails."""

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

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the coordinator is away")
        self.commits.append(dict(offsets))

    def assignment(self) -> set[TopicPartition]:
        return self.owned


async def test_a_flush_commits_the_offset_after_the_last_handled_record_of_each_partition_once() -> None:
    consumer, commits = FakeConsumer({A, B}), Commits("water")
    commits.handled(consumer, [record(A, 3), record(A, 4), record(B, 9)])
    commits.handled(consumer, [record(A, 5)])
    await commits.flush()
    await commits.flush()  # nothing new since
    assert consumer.commits == [{A: 6, B: 10}]


async def test_nothing_is_committed_before_a_batch_is_handled() -> None:
    consumer, commits = FakeConsumer({A}), Commits("water")
    await commits.flush()
    commits.handled(consumer, [record(A, 0)])
    await commits.flush()
    assert consumer.commits == [{A: 1}]


async def test_a_failed_commit_keeps_its_offsets_for_the_next_and_newer_ones_win() -> None:
    consumer, commits = FakeConsumer({A, B}, failures=1), Commits("water")
    commits.handled(consumer, [record(A, 3), record(B, 1)])
    await commits.flush()
    assert consumer.commits == []
    commits.handled(consumer, [record(A, 7)])
    await commits.flush()
    assert consumer.commits == [{A: 8, B: 2}]


async def test_offsets_of_partitions_no_longer_assigned_are_dropped() -> None:
    consumer, commits = FakeConsumer({A, B}), Commits("water")
    commits.handled(consumer, [record(A, 3), record(B, 4)])
    consumer.owned = {B}  # A went to another member: it reads from the group's last commit
    await commits.flush()
    consumer.owned = {A, B}
    await commits.flush()
    assert consumer.commits == [{B: 5}]


async def test_revocation_commits_what_is_pending_before_the_partitions_go() -> None:
    consumer, commits = FakeConsumer({A}), Commits("water", interval_seconds=3600)
    commits.handled(consumer, [record(A, 2)])
    await commits.on_partitions_revoked({A})
    assert consumer.commits == [{A: 3}]


async def test_running_commits_an_interval_after_a_batch_and_stopping_commits_the_rest() -> None:
    consumer, commits = FakeConsumer({A, B}), Commits("water", interval_seconds=0.01)
    running = asyncio.create_task(commits.run())
    commits.handled(consumer, [record(A, 0)])

    async def committed() -> bool:
        return consumer.commits == [{A: 1}]

    await eventually(committed, timeout=5)
    slow = Commits("water", interval_seconds=3600)
    waiting = asyncio.create_task(slow.run())
    slow.handled(consumer, [record(B, 4)])
    await slow.stop(waiting)  # the interval has not passed: stopping commits it
    assert consumer.commits == [{A: 1}, {B: 5}]
    assert waiting.cancelled()
    await commits.stop(running)


@pytest.mark.parametrize("failures", [1, 2])
async def test_running_tries_a_failed_commit_again(failures: int) -> None:
    consumer, commits = FakeConsumer({A}, failures=failures), Commits("water", interval_seconds=0.01)
    running = asyncio.create_task(commits.run())
    commits.handled(consumer, [record(A, 41)])

    async def committed() -> bool:
        return consumer.commits == [{A: 42}]

    await eventually(committed, timeout=5)
    await commits.stop(running)
