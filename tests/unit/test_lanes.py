"""The kit's lanes (``services.kit.lanes``): a case's records in order on one lane, each lane on its own (a slow case
holds up no other lane), a failed unit of work tried again with the same records, and a full lane making the
consumer wait."""

from __future__ import annotations

import asyncio
import zlib

from aiokafka import ConsumerRecord

from services.kit.lanes import RETRY_PAUSE_SECONDS, Lanes, Record
from tests.tools import eventually

LANES = 4


def key_on(lane: int, after: int = 0) -> bytes:
    """A case key whose records go to ``lane``."""
    return next(key for n in range(after, 10_000) if zlib.crc32(key := f"case-{n}".encode()) % LANES == lane)


def record(key: bytes, offset: int) -> Record:
    return ConsumerRecord("deliver.water", 0, offset, 0, 0, key, b"v", None, len(key), 1, [])


class Recorder:
    """Units of work as they ran, and what each lane was told was done; a key's units may be held back."""

    def __init__(self) -> None:
        self.units: list[list[int]] = []
        self.done: list[list[int]] = []
        self.held: dict[bytes, asyncio.Event] = {}
        self.failures: dict[int, int] = {}  # offset -> failures still to come

    async def work(self, records: list[Record]) -> None:
        for r in records:
            if r.key in self.held:
                await self.held[r.key].wait()
        offsets = [r.offset for r in records]
        self.units.append(offsets)
        for offset in offsets:
            if self.failures.get(offset):
                self.failures[offset] -= 1
                raise RuntimeError("a transient fault")

    def told(self, records: list[Record]) -> None:
        self.done.append([r.offset for r in records])


async def test_a_slow_case_holds_up_its_own_lane_alone_and_each_case_stays_in_order() -> None:
    recorder = Recorder()
    slow, quick = key_on(0), key_on(1)
    recorder.held[slow] = asyncio.Event()
    lanes = Lanes("water", recorder.work, recorder.told, lanes=LANES)
    lanes.start()
    try:
        await lanes.put([record(slow, 0), record(quick, 1)])
        await lanes.put([record(quick, 2), record(slow, 3)])
        await eventually(lambda: sorted(o for unit in recorder.done for o in unit) == [1, 2])  # the slow lane is held
        assert not await lanes.idle(0)  # its records are not done: no wait needed to tell
        recorder.held[slow].set()
        assert await lanes.idle(5)
        assert [o for unit in recorder.done for o in unit if o in (0, 3)] == [0, 3]  # its case's order kept
    finally:
        await lanes.stop()


async def test_a_failed_unit_of_work_comes_again_with_the_same_records_and_is_done_once() -> None:
    recorder = Recorder()
    key = key_on(2)
    recorder.failures[5] = 2
    lanes = Lanes("water", recorder.work, recorder.told, lanes=LANES)
    lanes.start()
    try:
        await lanes.put([record(key, 4), record(key, 5), record(key, 6)])
        assert await lanes.idle(5 + 10 * RETRY_PAUSE_SECONDS)
        assert recorder.units == [[4, 5, 6]] * 3
        assert recorder.done == [[4, 5, 6]]
    finally:
        await lanes.stop()


async def test_a_lane_takes_at_most_a_unit_s_records_at_once() -> None:
    recorder = Recorder()
    key = key_on(3)
    lanes = Lanes("water", recorder.work, recorder.told, lanes=LANES, unit_records=2)
    await lanes.put([record(key, n) for n in range(5)])  # queued before the lanes run
    lanes.start()
    try:
        assert await lanes.idle(5)
        assert recorder.done == [[0, 1], [2, 3], [4]]
    finally:
        await lanes.stop()


async def test_a_full_lane_makes_the_consumer_wait() -> None:
    recorder = Recorder()
    key = key_on(0)
    recorder.held[key] = asyncio.Event()
    lanes = Lanes("water", recorder.work, recorder.told, lanes=LANES, unit_records=1, capacity=2)
    lanes.start()
    try:
        await lanes.put([record(key, 0)])  # taken by the lane, held
        await eventually(lambda: not lanes._queues[0])
        await lanes.put([record(key, 1), record(key, 2)])  # the lane's queue is full now
        putting = asyncio.create_task(lanes.put([record(key, 3)]))
        await eventually(lambda: not lanes._room[0].is_set())  # the marker: it found the lane full and waits for room
        assert not putting.done() and list(lanes._queues[0]) == [record(key, 1), record(key, 2)]
        recorder.held[key].set()
        await asyncio.wait_for(putting, 5)
        assert await lanes.idle(5)
        assert recorder.done == [[0], [1], [2], [3]]
    finally:
        await lanes.stop()
