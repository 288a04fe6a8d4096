"""The benchmark's quiet department (bench/subscriber.py) on the real secured stack: with the kit's consumer and
with FastStream's own, every record produced in the counted seconds reaches the handler once and is timed."""

from __future__ import annotations

import uuid

import pytest

from base.settings import Settings
from bench.measure import Target
from bench.subscriber import RATE, handler_waits
from gateway.topics import DAY_MS, TopicSpec
from tests.tools import isolated_topics

SECONDS = 2


@pytest.mark.parametrize("waiting", [True, False], ids=["kit", "faststream"])
async def test_each_counted_record_is_timed_from_its_produce_to_the_handler(stack: Settings, waiting: bool) -> None:
    topic = f"bench-subscriber-{uuid.uuid4().hex[:8]}.in"
    await isolated_topics(stack, [TopicSpec(topic, 3, DAY_MS)])
    waits = await handler_waits(Target("test", stack, {}), topic, f"{topic}-group", SECONDS, waiting)
    # records come at random moments, RATE a second on average: far more than a handful in the counted seconds
    assert len(waits) >= RATE * SECONDS // 4
    assert waits == sorted(waits) and all(0 < wait < 10_000 for wait in waits)
