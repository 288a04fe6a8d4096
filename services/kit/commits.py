"""A department's consumed offsets, committed to its group a little after its units of work, never ahead of them.

What a department handled is kept in its own PostgreSQL transaction, the inbox with it (``services.kit.inbox``): a
record delivered again after a restart is a no-op. The group's offsets only say where a consumer starts again, so
they may lag what was handled, never run ahead of it. Records are handled on lanes, not in the order fetched
(``services.kit.lanes``): a partition's offset moves up to its first record still being handled (or past the last
one taken, when none is), and is committed to the group within ``COMMIT_INTERVAL_SECONDS``, when the partition is
revoked (once what was taken of it is handled, or ``REVOKE_WAIT_SECONDS`` have passed), and when the service stops.
The broker gets one commit a department an interval instead of one a batch, and the consumer does not wait for it.
What a crash leaves uncommitted is delivered again, and the inbox finds it handled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Protocol

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

log = logging.getLogger("concord.kit")
COMMIT_INTERVAL_SECONDS = 0.5
REVOKE_WAIT_SECONDS = 10.0  # well below the group's rebalance timeout


class Consumer(Protocol):
    """What committing needs of a consumer (aiokafka's ``AIOKafkaConsumer``)."""

    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...

    def assignment(self) -> set[TopicPartition]: ...

    def pause(self, *partitions: TopicPartition) -> None: ...


class Commits(ConsumerRebalanceListener):  # type: ignore[misc]
    """Where each partition's records are handled up to, waiting to be committed to the group."""

    def __init__(self, department: str, interval_seconds: float = COMMIT_INTERVAL_SECONDS) -> None:
        self.department = department
        self.interval_seconds = interval_seconds
        self.pending: dict[TopicPartition, int] = {}
        self._in_flight: dict[TopicPartition, set[int]] = {}  # offsets taken and not yet handled
        self._ends: dict[TopicPartition, int] = {}  # past the last offset taken
        self._consumer: Consumer | None = None
        self._due = asyncio.Event()
        self._progress = asyncio.Event()
        self._flushing = asyncio.Lock()

    def taken(self, consumer: Consumer, records: Iterable[ConsumerRecord[bytes, bytes]]) -> None:
        """These records are to be handled (the consumer fetched them, in offset order for each partition)."""
        self._consumer = consumer
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self._in_flight.setdefault(tp, set()).add(record.offset)
            self._ends[tp] = max(self._ends.get(tp, 0), record.offset + 1)

    def handled(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> None:
        """The unit of work of these records has committed: their partitions' offsets may move on."""
        touched: set[TopicPartition] = set()
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            if tp in self._ends:  # else taken before the partition was revoked: its new owner reads it again
                self._in_flight[tp].discard(record.offset)
                touched.add(tp)
        for tp in touched:
            waiting = self._in_flight[tp]
            self.pending[tp] = max(self.pending.get(tp, 0), min(waiting) if waiting else self._ends[tp])
        self._progress.set()
        self._due.set()

    async def run(self) -> None:
        """Commit what is pending an interval after it became so, until cancelled."""
        while True:
            await self._due.wait()
            await asyncio.sleep(self.interval_seconds)
            self._due.clear()
            await self.flush()

    async def flush(self) -> None:
        """Commit what is pending. Offsets of partitions this consumer no longer has are dropped (their new owner
        reads from the group's last commit: what it finds handled is a no-op); those a failed commit leaves are
        kept for the next one."""
        async with self._flushing:
            consumer, taken = self._consumer, self.pending
            self.pending = {}
            if consumer is None or not taken:
                return
            owned = consumer.assignment()
            taken = {tp: offset for tp, offset in taken.items() if tp in owned}
            if not taken:
                return
            try:
                await consumer.commit(taken)
            except Exception as exc:  # the next commit takes them up; a redelivery is a no-op
                log.warning("%s: offsets not committed yet (%s: %s)", self.department, type(exc).__name__, exc)
                for tp, offset in taken.items():
                    self.pending[tp] = max(self.pending.get(tp, 0), offset)
                self._due.set()

    def pause(self) -> None:
        """Fetch nothing more (the service stops): what was taken can be handled and committed."""
        if self._consumer is not None:
            self._consumer.pause(*self._consumer.assignment())

    async def stop(self, running: asyncio.Task[None]) -> None:
        """Stop committing on a timer (``running`` is ``run``'s task), then commit what is pending."""
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await self.flush()

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        """Commit how far the partitions going away were handled, once what was taken of them is (still in the
        generation that fetched them); then forget them."""
        going = set(revoked)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled(going), REVOKE_WAIT_SECONDS)
        await self.flush()
        for tp in going:
            self._in_flight.pop(tp, None)
            self._ends.pop(tp, None)
            self.pending.pop(tp, None)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        pass

    async def _settled(self, partitions: set[TopicPartition]) -> None:
        while any(self._in_flight.get(tp) for tp in partitions):
            self._progress.clear()
            await self._progress.wait()
