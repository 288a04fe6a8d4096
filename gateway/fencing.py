"""Zombie fencing for the router's transactions: the input offsets a transaction commits carry the consumer group's
generation and member id, and the group coordinator refuses them (and so the whole transaction aborts) when that
member no longer belongs to the generation that assigned it the partitions. A router paused past its session
timeout, whose partitions went to another instance, thus commits nothing for them when it wakes up (KIP-447).

aiokafka 0.14 sends ``TxnOffsetCommit`` v0, which has no generation: this module gives a transactional producer the
v3 request (the first with ``generation_id``/``member_id``, a flexible version) for its offset commits. It reaches
into the producer's sender, whose shape is pinned with aiokafka's version in pyproject.toml;
``tests/integration/test_exactly_once.py`` shows the fencing on the real broker.

The other half of the fence is on the reading side: an instance that takes partitions over asks for their committed
offsets with ``OffsetFetch`` v7 and ``require_stable``, so the group coordinator makes it wait while a transaction
that commits offsets for them is still being completed (a router killed between its commit and the broker's
markers, or a broker restarted in between) instead of answering with the offsets from before it. And the
transaction timeout (``Router``) is shorter than the consumer's session timeout, so that a transaction left open by a
paused router is aborted by the broker before its partitions can be reassigned."""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiokafka.errors as Errors
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.client import CoordinationType
from aiokafka.producer.sender import TxnOffsetCommitHandler
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Boolean, CompactArray, CompactString, Int16, Int32, Int64, Schema, TaggedFields
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Counter

log = logging.getLogger("concord.router")
TXN_OFFSET_COMMIT = 28
OFFSET_FETCH = 9
# Refusals that mean the batch's member lost its partitions: the transaction aborts, the batch is someone else's.
FENCED = (Errors.IllegalGenerationError, Errors.UnknownMemberIdError, Errors.RebalanceInProgressError)


class TxnOffsetCommitResponse_v3(Response):  # type: ignore[misc]
    API_KEY = TXN_OFFSET_COMMIT
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("topics", CompactArray(
            ("name", CompactString("utf-8")),
            ("partitions", CompactArray(("partition_index", Int32), ("error_code", Int16), ("tags", TaggedFields))),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class TxnOffsetCommitRequest_v3(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = TXN_OFFSET_COMMIT
    API_VERSION = 3
    RESPONSE_TYPE = TxnOffsetCommitResponse_v3
    SCHEMA = Schema(
        ("transactional_id", CompactString("utf-8")),
        ("group_id", CompactString("utf-8")),
        ("producer_id", Int64),
        ("producer_epoch", Int16),
        ("generation_id", Int32),
        ("member_id", CompactString("utf-8")),
        ("group_instance_id", CompactString("utf-8")),
        ("topics", CompactArray(
            ("name", CompactString("utf-8")),
            ("partitions", CompactArray(
                ("partition_index", Int32), ("committed_offset", Int64), ("committed_leader_epoch", Int32),
                ("committed_metadata", CompactString("utf-8")), ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


@dataclass(frozen=True)
class Membership:
    """The group generation a batch was fetched in, and the member id the consumer had in it."""

    generation: int
    member_id: str

    @classmethod
    def of(cls, consumer: AIOKafkaConsumer) -> Membership | None:
        """The consumer's membership now; None while it is not a member of a generation (joining, or reset)."""
        coordinator = consumer._coordinator
        if coordinator is None or coordinator.generation < 0 or not coordinator.member_id:
            return None
        return cls(coordinator.generation, coordinator.member_id)


class FencedTxnOffsetCommit(Request[TxnOffsetCommitRequest_v3]):  # type: ignore[misc]
    API_KEY = TXN_OFFSET_COMMIT

    def __init__(self, transactional_id: str, group_id: str, producer_id: int, producer_epoch: int,
                 membership: Membership, topics: list[tuple[str, list[tuple[int, int, str]]]]) -> None:
        self.values = (transactional_id, group_id, producer_id, producer_epoch, membership, topics)

    def build(self, request_struct_class: type[TxnOffsetCommitRequest_v3]) -> TxnOffsetCommitRequest_v3:
        transactional_id, group_id, producer_id, producer_epoch, membership, topics = self.values
        return request_struct_class(
            transactional_id, group_id, producer_id, producer_epoch, membership.generation, membership.member_id,
            None, [(topic, [(partition, offset, -1, metadata, {}) for partition, offset, metadata in partitions], {})
                   for topic, partitions in topics], {})


class _Errors:
    """A v3 response in the shape aiokafka's v0 handling reads (``errors``: topic, [(partition, code)])."""

    def __init__(self, response: TxnOffsetCommitResponse_v3) -> None:
        self.errors = [(name, [(partition, code) for partition, code, _ in partitions])
                       for name, partitions, _ in response.topics]


class _FencedHandler(TxnOffsetCommitHandler):  # type: ignore[misc]
    def __init__(self, sender: Any, offsets: Any, group_id: str, membership: Membership) -> None:
        super().__init__(sender, offsets, group_id)
        self.membership = membership

    def create_request(self) -> FencedTxnOffsetCommit:
        txn_manager = self._sender._txn_manager
        topics: dict[str, list[tuple[int, int, str]]] = collections.defaultdict(list)
        for tp, offset in sorted(self._offsets.items()):
            topics[tp.topic].append((tp.partition, offset.offset, offset.metadata))
        return FencedTxnOffsetCommit(txn_manager.transactional_id, self._group_id, txn_manager.producer_id,
                                     txn_manager.producer_epoch, self.membership, list(topics.items()))

    def handle_response(self, response: TxnOffsetCommitResponse_v3) -> float | None:
        for _, partitions, _ in response.topics:
            for _, code, _ in partitions:
                error = Errors.for_code(code)
                if error in FENCED:
                    log.warning("router fenced: group %s no longer has member %s in generation %d (%s); its "
                                "transaction aborts", self._group_id, self.membership.member_id,
                                self.membership.generation, error.__name__)
                    self._sender._txn_manager.error_transaction(error())
                    return None
        return super().handle_response(_Errors(response))  # type: ignore[no-any-return]


class GroupFence:
    """Makes a transactional producer's offset commits carry ``membership`` (set before each commit)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.membership: Membership | None = None
        sender = producer._sender
        fence = self

        async def commit(offsets: Any, group_id: str) -> None:
            if not offsets:
                return
            membership = fence.membership
            if membership is None:
                sender._txn_manager.error_transaction(Errors.IllegalGenerationError())
                return
            try:
                node_id = await sender._find_coordinator(CoordinationType.GROUP, group_id)
            except Errors.GroupAuthorizationFailedError as exc:
                sender._txn_manager.error_transaction(exc)
                return
            await _FencedHandler(sender, offsets, group_id, membership).do(node_id)

        sender._do_txn_offset_commit = commit


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
RAISED = Counter("concord_router_offsets_raised_total", "Committed offsets the group coordinator answered that were "
                 "behind what the audit log shows committed (or missing), raised to it before routing went on")


class FloorUnknown(Errors.KafkaError):  # type: ignore[misc]
    """The floor could not be read (the database does not answer): the consumer asks again after its backoff."""

    retriable = True


def fetch_stable_offsets(consumer: AIOKafkaConsumer, floor: Floor | None = None,
                         raised: Callable[[dict[TopicPartition, int]], None] | None = None) -> None:
    """Make a started consumer ask for its group's committed offsets with ``require_stable``: while a transaction
    that commits offsets for a partition is being completed, the coordinator answers UNSTABLE_OFFSET_COMMIT and the
    consumer asks again, rather than starting from the offsets before that transaction. The group-level error is
    read too: aiokafka's own request (v3) ignores it, so while the coordinator is still loading after a broker
    restart it reads "no committed offset" and the consumer starts over from its reset policy (seen on Kafka 4.1:
    a group's offsets read as none for the first two or three seconds after the broker started).

    With a ``floor``, an offset the coordinator answers that is missing or behind it is raised to it, said, and handed
    to ``raised`` (for the consumer to commit): the consumer never goes back over records a committed transaction
    already took (seen once after broker restarts on Kafka 4.1: a router group's offsets answered two minutes old,
    and three thousand records routed again)."""
    coordinator = consumer._coordinator
    assert coordinator is not None, "start the consumer first"

    async def fetch(partitions: list[TopicPartition]) -> dict[TopicPartition, OffsetAndMetadata]:
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
        if floor is not None:
            lifted = await _raise_to(floor, partitions, offsets, coordinator.group_id)
            if lifted and raised is not None:
                raised(lifted)
        return offsets

    coordinator._do_fetch_commit_offsets = fetch


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
            RAISED.inc()
            offsets[tp] = OffsetAndMetadata(offset, "")
            lifted[tp] = offset
    return lifted
