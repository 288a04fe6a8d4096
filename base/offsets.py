"""Committed offsets read the safe way. aiokafka 0.14 asks for a group's committed offsets with ``OffsetFetch`` v3,
which has no ``require_stable`` and whose group-level error it ignores: while a transaction that commits offsets is
being completed it answers the offsets from before it, and while the group coordinator is still loading after a
broker restart it reads "no committed offset" (seen on Kafka 4.1 for the first two or three seconds after a start),
so the consumer starts over from its reset policy. Here the request is v7 with ``require_stable``, the group-level
error is read, and what must be waited for is retried by aiokafka's own loop. The request is built on aiokafka's
protocol classes and put in place of its coordinator's method (the shape pinned with aiokafka's version)."""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiokafka.errors as Errors
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Boolean, CompactArray, CompactString, Int16, Int32, Int64, Schema, TaggedFields
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Counter

log = logging.getLogger("concord.offsets")
OFFSET_FETCH = 9


class UnstableOffsetCommit(Errors.KafkaError):  # type: ignore[misc]
    """A transaction that commits offsets for the partition is still being completed: ask again shortly."""

    errno = 88
    retriable = True


class OffsetFetchResponse_v7(Response):  # type: ignore[misc]
    API_KEY = OFFSET_FETCH
    API_VERSION = 7
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("topics", CompactArray(
            ("name", CompactString("utf-8")),
            ("partitions", CompactArray(
                ("partition_index", Int32), ("committed_offset", Int64), ("committed_leader_epoch", Int32),
                ("metadata", CompactString("utf-8")), ("error_code", Int16), ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )),
        ("error_code", Int16),
        ("tags", TaggedFields),
    )


class OffsetFetchRequest_v7(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = OFFSET_FETCH
    API_VERSION = 7
    RESPONSE_TYPE = OffsetFetchResponse_v7
    SCHEMA = Schema(
        ("group_id", CompactString("utf-8")),
        ("topics", CompactArray(("name", CompactString("utf-8")), ("partition_indexes", CompactArray(Int32)),
                                ("tags", TaggedFields))),
        ("require_stable", Boolean),
        ("tags", TaggedFields),
    )


class StableOffsetFetch(Request[OffsetFetchRequest_v7]):  # type: ignore[misc]
    API_KEY = OFFSET_FETCH

    def __init__(self, group_id: str, topics: list[tuple[str, list[int]]]) -> None:
        self.group_id = group_id
        self.topics = topics

    def build(self, request_struct_class: type[OffsetFetchRequest_v7]) -> OffsetFetchRequest_v7:
        return request_struct_class(self.group_id, [(t, ps, {}) for t, ps in self.topics], True, {})


# The least offset each partition's committed offset can be, from a record of what was committed (the audit log).
Floor = Callable[[list[TopicPartition]], Awaitable[dict[TopicPartition, int]]]
RAISED = Counter("concord_offsets_raised_total", "Committed offsets the group coordinator answered that were behind "
                 "what a consumer's own record shows committed (or missing), raised to it", ["group"])


class FloorUnknown(Errors.KafkaError):  # type: ignore[misc]
    """The floor could not be read (the database does not answer): the consumer asks again after its backoff."""

    retriable = True


def fetch_stable_offsets(consumer: AIOKafkaConsumer, floor: Floor | None = None,
                         raised: Callable[[dict[TopicPartition, int]], None] | None = None) -> None:
    """Make a started consumer ask for its group's committed offsets stable (the module's docstring): while a
    transaction that commits offsets for a partition is being completed, the coordinator answers
    UNSTABLE_OFFSET_COMMIT and the consumer asks again, rather than starting from the offsets before it.

    With a ``floor``, an offset the coordinator answers that is missing or behind it is raised to it, said, and handed
    to ``raised`` (for the consumer to commit): the consumer never goes back over records a committed transaction
    already took (seen once after broker restarts on Kafka 4.1: a router group's offsets answered two minutes old,
    and three thousand records routed again)."""
    coordinator = consumer._coordinator
    assert coordinator is not None, "start the consumer first"

    async def fetch(partitions: list[TopicPartition]) -> dict[TopicPartition, OffsetAndMetadata]:
        offsets = await _stable(coordinator, partitions)
        if floor is not None:
            lifted = await _raise_to(floor, partitions, offsets, coordinator.group_id)
            if lifted and raised is not None:
                raised(lifted)
        return offsets

    coordinator._do_fetch_commit_offsets = fetch


def stable_offsets_in_every_group() -> None:
    """Every consumer group of this process asks for its committed offsets as ``fetch_stable_offsets`` does (without
    a floor), from its first assignment on: for consumers built elsewhere (FastStream's), which subscribe before they
    start. Idempotent."""

    async def fetch(coordinator: GroupCoordinator, partitions: list[TopicPartition]
                    ) -> dict[TopicPartition, OffsetAndMetadata]:
        return await _stable(coordinator, partitions)

    GroupCoordinator._do_fetch_commit_offsets = fetch


async def _stable(coordinator: Any, partitions: list[TopicPartition]) -> dict[TopicPartition, OffsetAndMetadata]:
    topics: dict[str, list[int]] = collections.defaultdict(list)
    for tp in partitions:
        topics[tp.topic].append(tp.partition)
    response = await coordinator._send_req(StableOffsetFetch(coordinator.group_id, list(topics.items())))
    top = Errors.for_code(response.error_code)
    if top is not Errors.NoError:
        if top in (Errors.GroupLoadInProgressError, Errors.NotCoordinatorForGroupError):
            if top is Errors.NotCoordinatorForGroupError:
                coordinator.coordinator_dead()
            raise top()
        raise Errors.KafkaError(f"fetching committed offsets: {top.__name__}")
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    for topic, partitions_, _ in response.topics:
        for partition, offset, _, metadata, code, _ in partitions_:
            if code == UnstableOffsetCommit.errno:
                raise UnstableOffsetCommit()
            error = Errors.for_code(code)
            if error is Errors.UnknownTopicOrPartitionError:
                continue
            if error is not Errors.NoError:
                raise Errors.KafkaError(f"fetching the committed offset of {topic}/{partition}: {error.__name__}")
            if offset >= 0:
                offsets[TopicPartition(topic, partition)] = OffsetAndMetadata(offset, metadata or "")
    return offsets


async def _raise_to(floor: Floor, partitions: list[TopicPartition], offsets: dict[TopicPartition, OffsetAndMetadata],
                    group: str) -> dict[TopicPartition, int]:
    try:
        least = await floor(partitions)
    except Exception as error:
        log.warning("group %s: the floor of its committed offsets could not be read (%r); asking again", group, error)
        raise FloorUnknown(repr(error)) from error
    lifted: dict[TopicPartition, int] = {}
    for tp, offset in least.items():
        answered = offsets.get(tp)
        if answered is None or answered.offset < offset:
            log.error("group %s: the committed offset of %s/%d was answered as %s, but what was committed reaches %d: "
                      "going on from %d", group, tp.topic, tp.partition,
                      "none" if answered is None else answered.offset, offset, offset)
            RAISED.labels(group).inc()
            offsets[tp] = OffsetAndMetadata(offset, "")
            lifted[tp] = offset
    return lifted
