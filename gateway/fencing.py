"""Zombie fencing for the router's transactions: the input offsets a transaction commits carry the consumer group's
generation and member id, and the group coordinator refuses them (and so the whole transaction aborts) when that
member no longer belongs to the generation that assigned it the partitions. A router paused past its session
timeout, whose partitions went to another instance, thus commits nothing for them when it wakes up (KIP-447).

aiokafka 0.14 sends ``TxnOffsetCommit`` v0, which has no generation: this module gives a transactional producer the
v3 request (the first with ``generation_id``/``member_id``, a flexible version) for its offset commits. It reaches
into the producer's sender, whose shape is pinned with aiokafka's version in pyproject.toml;
``tests/integration/test_exactly_once.py`` shows the fencing on the real broker.

The other half of the fence is on the reading side (``base.offsets``): an instance that takes partitions over asks
for their committed offsets with ``OffsetFetch`` v7 and ``require_stable``, so the group coordinator makes it wait
while a transaction that commits offsets for them is still being completed (a router killed between its commit and
the broker's markers, or a broker restarted in between) instead of answering with the offsets from before it. And the
transaction timeout (``Router``) is shorter than the consumer's session timeout, so that a transaction left open by a
paused router is aborted by the broker before its partitions can be reassigned."""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from typing import Any

import aiokafka.errors as Errors
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.client import CoordinationType
from aiokafka.producer.sender import TxnOffsetCommitHandler
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import CompactArray, CompactString, Int16, Int32, Int64, Schema, TaggedFields

log = logging.getLogger("concord.router")
TXN_OFFSET_COMMIT = 28
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
