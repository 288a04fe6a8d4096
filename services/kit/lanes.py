"""Delivered records handled on lanes: a department's cases spread over ``LANES`` units of work at once.

A record goes to the lane its key (its case) names, so one case's events stay in order; each lane takes what is
queued on it (``UNIT_RECORDS`` at most) into one unit of work as soon as its previous one has committed, without
waiting for the other lanes, nor for the rest of the batch the consumer fetched: a slow case holds up its own lane
alone, and a record fetched while others are handled starts as soon as its lane is free. A unit of work that fails
is rolled back and tried again with the same records (the receiver counts a failing handler's attempts, paces
them, and parks its event after the last); the consumer waits when a lane holds ``LANE_CAPACITY`` records."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeAlias

from aiokafka import ConsumerRecord

log = logging.getLogger("concord.kit")
Record: TypeAlias = ConsumerRecord[bytes, bytes]
# A unit of work mostly waits for PostgreSQL: several at once, below the pool's size (the API and the relay share it).
LANES = 4
UNIT_RECORDS = 50
LANE_CAPACITY = 200
RETRY_PAUSE_SECONDS = 0.1  # before a failed unit of work is tried again (the database may be restarting)


class Lanes:
    """Lanes over ``work`` (one unit of work: the records in one transaction); ``done`` is told of the records of
    each unit of work that has committed."""

    def __init__(self, name: str, work: Callable[[list[Record]], Awaitable[None]],
                 done: Callable[[list[Record]], None], lanes: int = LANES, unit_records: int = UNIT_RECORDS,
                 capacity: int = LANE_CAPACITY) -> None:
        self.name = name
        self.work = work
        self.done = done
        self.unit_records = unit_records
        self.capacity = capacity
        self._queues: list[collections.deque[Record]] = [collections.deque() for _ in range(lanes)]
        self._queued = [asyncio.Event() for _ in range(lanes)]
        self._room = [asyncio.Event() for _ in range(lanes)]
        self._outstanding = 0  # put and not yet done
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(lane), name=f"{self.name}-lane-{lane}")
                       for lane in range(len(self._queues))]

    async def stop(self) -> None:
        """Stop at once: a unit of work under way is rolled back, and its records come again after a restart."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def put(self, records: Iterable[Record]) -> None:
        """Queue records on their lanes, in their order; waits while a lane is full."""
        for record in records:
            lane = zlib.crc32(record.key or b"") % len(self._queues)
            while len(self._queues[lane]) >= self.capacity:
                self._room[lane].clear()
                await self._room[lane].wait()
            self._queues[lane].append(record)
            self._outstanding += 1
            self._idle.clear()
            self._queued[lane].set()

    async def idle(self, timeout: float) -> bool:
        """Wait until every record put is done (or ``timeout`` seconds); whether they all are."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        return self._idle.is_set()

    async def _run(self, lane: int) -> None:
        queue = self._queues[lane]
        while True:
            if not queue:
                self._queued[lane].clear()
                await self._queued[lane].wait()
                continue
            taken = [queue.popleft() for _ in range(min(self.unit_records, len(queue)))]
            self._room[lane].set()
            while True:
                try:
                    await self.work(taken)
                    break
                except Exception as exc:  # a handler's failure is logged by the receiver; this says what came of it
                    log.warning("%s: lane %d's unit of work rolled back (%r); trying it again", self.name, lane, exc)
                    await asyncio.sleep(RETRY_PAUSE_SECONDS)
            self.done(taken)
            self._outstanding -= len(taken)
            if not self._outstanding:
                self._idle.set()
