"""A department's consumed offsets, committed to its group a little after its units of work, not after each batch.

What a department handled is kept in its own PostgreSQL transaction, the inbox with it (``services.kit.inbox``): a
record delivered again after a restart is a no-op. The group's offsets only say where a consumer starts again, so
they may lag what was handled, never run ahead of it: an offset is taken into account once the batch up to it has
committed, and committed to the group within ``COMMIT_INTERVAL_SECONDS``, when the partition is revoked, and when
the service stops. A batch no longer waits for an offset commit's round trip before the next is fetched, and the
broker gets one commit a department an interval instead of one a batch (about a fifth of its requests under the
demo). What a crash leaves uncommitted (an interval's handled records at most) is delivered again, and the inbox
finds it handled."""

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


class Consumer(Protocol):
    """What committing needs of a consumer (aiokafka's ``AIOKafkaConsumer``)."""

    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...

    def assignment(self) -> set[TopicPartition]: ...


class Commits(ConsumerRebalanceListener):  # type: ignore[misc]
    """The offsets after what a department has handled, waiting to be committed to its group."""

    def __init__(self, department: str, interval_seconds: float = COMMIT_INTERVAL_SECONDS) -> None:
        self.department = department
        self.interval_seconds = interval_seconds
        self.pending: dict[TopicPartition, int] = {}
        self._consumer: Consumer | None = None
        self._due = asyncio.Event()
        self._flushing = asyncio.Lock()

    def handled(self, consumer: Consumer, records: Iterable[ConsumerRecord[bytes, bytes]]) -> None:
        """The batch of these records has committed: the offsets after them are to be committed."""
        self._consumer = consumer
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self.pending[tp] = max(self.pending.get(tp, 0), record.offset + 1)
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

    async def stop(self, running: asyncio.Task[None]) -> None:
        """Stop committing on a timer (``running`` is ``run``'s task), then commit what is pending."""
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await self.flush()

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.flush()  # still in the generation that fetched them

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        pass
