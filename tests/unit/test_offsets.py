"""Reading committed offsets stable (``base.offsets``): what the group coordinator answers while it loads, while a
transaction commits offsets, and once it knows; and a floor that offsets answered behind it are raised to."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aiokafka.errors as Errors
import pytest
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from base.offsets import FloorUnknown, UnstableOffsetCommit, _raise_to, _stable

TP = TopicPartition("ingress.bureau", 0)
LOAD_IN_PROGRESS, NOT_COORDINATOR = 14, 16


class Coordinator:
    """Answers each OffsetFetch with the next response given."""

    def __init__(self, *responses: Any) -> None:
        self.group_id = "gateway.router"
        self.responses = list(responses)
        self.dead = False

    async def _send_req(self, request: Any) -> Any:
        return self.responses.pop(0)

    def coordinator_dead(self) -> None:
        self.dead = True


def answer(error: int = 0, offset: int = 7, code: int = 0) -> SimpleNamespace:
    return SimpleNamespace(error_code=error, topics=[(TP.topic, [(TP.partition, offset, -1, "", code, {})], {})])


async def test_a_coordinator_still_loading_is_asked_again_not_read_as_no_offset() -> None:
    with pytest.raises(Errors.GroupLoadInProgressError) as raised:
        await _stable(Coordinator(answer(error=LOAD_IN_PROGRESS, offset=-1)), [TP])
    assert raised.value.retriable  # aiokafka's fetch loop asks again after its backoff


async def test_a_coordinator_that_moved_is_looked_up_again() -> None:
    coordinator = Coordinator(answer(error=NOT_COORDINATOR, offset=-1))
    with pytest.raises(Errors.NotCoordinatorForGroupError):
        await _stable(coordinator, [TP])
    assert coordinator.dead


async def test_an_offset_a_transaction_is_still_committing_is_waited_for() -> None:
    with pytest.raises(UnstableOffsetCommit) as raised:
        await _stable(Coordinator(answer(code=UnstableOffsetCommit.errno)), [TP])
    assert raised.value.retriable


async def test_offsets_known_and_none_committed() -> None:
    assert await _stable(Coordinator(answer(offset=7)), [TP]) == {TP: OffsetAndMetadata(7, "")}
    assert await _stable(Coordinator(answer(offset=-1)), [TP]) == {}


async def test_offsets_behind_the_floor_or_missing_are_raised_to_it_and_others_kept() -> None:
    other = TopicPartition("ingress.bureau", 1)
    third = TopicPartition("ingress.bureau", 2)

    async def floor(partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {TP: 40, other: 10, third: 5}

    offsets = {TP: OffsetAndMetadata(12, ""), other: OffsetAndMetadata(10, "")}
    lifted = await _raise_to(floor, [TP, other, third], offsets, "gateway.router")
    assert lifted == {TP: 40, third: 5}
    assert {tp: o.offset for tp, o in offsets.items()} == {TP: 40, other: 10, third: 5}


async def test_a_floor_that_cannot_be_read_makes_the_fetch_ask_again() -> None:
    async def floor(partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        raise ConnectionError("the database does not answer")

    with pytest.raises(FloorUnknown) as raised:
        await _raise_to(floor, [TP], {}, "gateway.router")
    assert raised.value.retriable
