"""The gateway router: consumes every ingress topic as one consumer group, routes each batch, and writes
the outputs and the input offsets in one Kafka transaction (exactly once in effect).

Two stages overlap: while one batch's transaction is on its way to the broker, the next batch is routed, and
what reached the broker meanwhile joins it once that transaction has committed (``_top_up``).
Transactions still commit one after the other, in fetch order; a failed one is settled on the broker by a new
producer (``recover``) and both batches are routed again from the group's committed offsets; a rebalance waits
for the transaction in flight. Each transaction commits its offsets in the group generation its batch was fetched
in, and offsets are read stable, so that a zombie instance commits nothing for partitions it lost
(``gateway.fencing``, ``base.offsets``).

Once a batch's transaction has committed, the router counts it (``gateway.metrics``) and, when tracing is on
(``base.tracing``), makes a span per event in the trace its ``traceparent`` names."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterable
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from opentelemetry.trace import SpanKind

from base import tracing
from base.clock import Clock
from base.kafka import TRANSACTION_RETRY_BACKOFF_MS, quick_transaction_retries, stop_client
from base.offsets import fetch_stable_offsets
from base.settings import Settings
from contracts.departments import GATEWAY, SERVICE_DEPARTMENTS
from contracts.envelope import TRACEPARENT, attribute
from contracts.topics import Topics
from gateway.batches import Batches
from gateway.enforcement import Copy, Enforcement, Seen, content_digest
from gateway.fencing import GroupFence, Membership
from gateway.metrics import count_committed
from gateway.rejections import Reason, Rejection
from gateway.routing import IngressRecord, Routed, provisioned, reject, resent, route
from gateway.verdicts import Outcome

log = logging.getLogger("concord.router")
RoutedBatch = list[tuple[IngressRecord, Routed]]
Fetched = dict[TopicPartition, list[ConsumerRecord]]
PREPARE_TIMEOUT_SECONDS = 60  # well below the consumer's max poll interval: a stalled instance gives its batch up
# A router that stops answering (paused, or stalled) leaves its group after SESSION_TIMEOUT_MS; a transaction it left
# open is aborted by the broker after TRANSACTION_TIMEOUT_MS (checked every second, deploy/kafka/server.properties),
# before its partitions can have gone to another instance (gateway.fencing).
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_MS = 2_000
TRANSACTION_TIMEOUT_MS = 5_000
REFETCH_GRACE_SECONDS = 0.1  # beyond a fetch's own timeout, before the router gives it up (_fetched_meanwhile)


def judge_copies(results: RoutedBatch, copies: dict[str, Copy], now: datetime, topics: Topics) -> RoutedBatch:
    """The batch's routing once copies are told apart. A copy of an event that stands, with the same content, is
    a resend: audited, and not routed again; with other content it is refused as a duplicate id. (A copy of an
    event refused in an earlier batch is no copy: that id was forgotten.) A copy of an event refused in this
    very batch keeps its own routing, as if sent later, but is not routed: its id was not recorded."""
    refused_here = {record.position for record, routed in results if routed.rejection is not None}

    def duplicate(record: IngressRecord, first: str) -> Routed:
        detail = f"event id {attribute(record.headers, 'ce_id')} was already sent by {record.sender} (first at {first})"
        return reject(record, Rejection(Reason.DUPLICATE_ID, detail), now, topics)

    judged: RoutedBatch = []
    for record, routed in results:
        copy = copies.get(record.position)
        if copy is None:
            pass
        elif copy.first in refused_here:
            routed = routed if routed.rejection is not None else duplicate(record, copy.first)
        elif copy.same_content:
            routed = resent(record, copy.first, now, topics)
        else:
            routed = duplicate(record, copy.first)
        judged.append((record, routed))
    return judged


class _Revocations(ConsumerRebalanceListener):  # type: ignore[misc]
    """Lets a rebalance wait for the batch in flight, and marks batches fetched before it as stale."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        async with self.router.batch_lock:
            if not await self.router.settle():
                await self.router.recover()  # its outcome settled before another instance reads the offsets
            self.router.generation += 1
            self.router._raised.clear()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.router._committed.clear()
        self.router._partitions.clear()  # output topics may have grown: look their partitions up again
        log.info("router %s assigned %s", self.router.instance, sorted((tp.topic, tp.partition) for tp in assigned))


class Router:
    def __init__(
        self,
        settings: Settings,
        enforcement: Enforcement,
        clock: Clock,
        instance: str | None = None,
    ) -> None:
        self.settings = settings
        self.enforcement = enforcement
        self.clock = clock
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}"
        self.batch_lock = asyncio.Lock()
        self._partitions: dict[str, list[int]] = {}
        self._key_hashes: dict[bytes, int] = {}  # Batches.partition's
        self._in_flight: asyncio.Task[None] | None = None
        self._committed: dict[TopicPartition, int] = {}  # what our transactions committed since the assignment
        self._raised: dict[TopicPartition, int] = {}  # offsets raised to the audit log's floor, to be committed
        self.generation = 0
        self.progressed_at = time.monotonic()  # the last time it had nothing to route, or committed a batch
        self.topics = settings.topics
        self.mask_key = settings.secrets.mask_key()
        self.access = access = settings.kafka(GATEWAY).aiokafka()
        self._existing: set[str] = set()  # topics known to exist (refreshed when an output names another)
        self.consumer = AIOKafkaConsumer(
            **access,
            group_id=settings.router_group,
            client_id=f"{settings.router_group}.{self.instance}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            max_poll_records=settings.router_batch_records,
            fetch_max_bytes=16 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        quick_transaction_retries()
        self.producer = self._new_producer()
        self.fence = GroupFence(self.producer)
        self.tracer = tracing.tracer("concord.router")

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **self.access,
            transactional_id=f"{self.settings.router_group}.{self.instance}",
            enable_idempotence=True,
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
            retry_backoff_ms=TRANSACTION_RETRY_BACKOFF_MS,
            linger_ms=0,  # whole batches are handed over (gateway.batches): nothing to wait for
            max_batch_size=2 * 1024 * 1024,
            max_request_size=8 * 1024 * 1024,
        )

    async def recover(self) -> None:
        """After a transaction failed on this side: it may still have committed on the broker's (the answer to its
        commit was lost), or be left open there. A new producer with the same transactional id takes over: its
        start waits until the broker has settled that transaction one way or the other (and fences any zombie of
        ours). Only then do the group's committed offsets say where routing must go on from, so what this
        instance remembers of its own commits is forgotten. If the producer cannot start, the router stops with
        the error and its process exits non-zero, for its supervisor to restart."""
        self._committed.clear()
        old, self.producer = self.producer, self._new_producer()
        self.fence = GroupFence(self.producer)
        with contextlib.suppress(Exception):
            await stop_client(old.stop, f"router {self.instance}'s failed producer")
        await self.producer.start()
        self._partitions.clear()
        log.warning("router %s: new transactional producer after a failed transaction", self.instance)

    async def start(self) -> None:
        await self.producer.start()
        # Started before it subscribes, so that even its first assignment's committed offsets are asked for stable:
        # aiokafka's own OffsetFetch (v3) reads "no offset" while the group coordinator is still loading after a
        # broker restart, and the consumer would then start from the earliest record. Whatever the coordinator
        # answers, routing never goes back before what the audit log shows a committed transaction took.
        await self.consumer.start()
        fetch_stable_offsets(self.consumer, floor=self._floor, raised=self._raised.update)
        self.consumer.subscribe(
            [self.topics.ingress(d) for d in SERVICE_DEPARTMENTS], listener=_Revocations(self)
        )

    async def stop(self) -> None:
        async with self.batch_lock:
            await self.settle()
        await stop_client(self.consumer.stop, f"router {self.instance}'s consumer")
        await stop_client(self.producer.stop, f"router {self.instance}'s producer")

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        await self.start()
        try:
            while not stop.is_set():
                await self.step()
        finally:
            await self.stop()

    async def step(self, timeout_ms: int = 200) -> int:
        """Fetch one batch, route it while the previous transaction completes, add what reached the broker meanwhile
        (``_top_up``), then start its own transaction. Returns the number of records routed (0 when none, or when
        the batch was given up)."""
        generation = self.generation
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=self.settings.router_batch_records)
        membership = Membership.of(self.consumer)  # the group generation these partitions were fetched in
        taken_ns = time.time_ns()
        async with self.batch_lock:
            if not batch:
                if await self.settle():
                    self.progressed_at = time.monotonic()
                    if self._raised and generation == self.generation and membership is not None:
                        self._in_flight = asyncio.create_task(self._commit([], self._take_raised(), membership,
                                                                           taken_ns))
                else:
                    await self.recover()
                    await self._rewind(self.consumer.assignment())
                return 0
            if generation != self.generation or membership is None:
                # A rebalance came between fetch and routing: whoever owns these partitions now reads them again
                # from the committed offsets (we too, for those still ours: our position moved past them).
                await self._rewind(batch.keys())
                return 0
            try:
                routed_batch = await asyncio.wait_for(self._route_batch(batch), PREPARE_TIMEOUT_SECONDS)
            except Exception:
                log.exception("router %s: batch could not be routed; rewinding", self.instance)
                routed_batch = None
            if not await self.settle():
                await self.recover()
                routed_batch = None
            if routed_batch is None:
                await self._rewind(self.consumer.assignment())
                return 0
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            routed_batch += await self._top_up(len(routed_batch), offsets, membership)
            offsets = self._take_raised() | offsets
            self._in_flight = asyncio.create_task(self._commit(routed_batch, offsets, membership, taken_ns))
            return len(routed_batch)

    async def _top_up(self, taken: int, offsets: dict[TopicPartition, int], membership: Membership) -> RoutedBatch:
        """What reached the broker while the transaction before committed, routed to join the batch that waited for it
        (``taken`` records, whose ``offsets`` are moved past what joins): as if it were the next batch, committed
        with this one, it need not wait for one more transaction. Only what the broker had by then
        (``_fetched_meanwhile``), while the batch has room (under full load a batch is full: nothing joins); whatever
        keeps them out leaves them to the next step, from where they were."""
        more = await self._fetched_meanwhile(self.settings.router_batch_records - taken)
        if not more:
            return []
        routed: RoutedBatch | None = None
        if Membership.of(self.consumer) == membership:
            try:
                routed = await asyncio.wait_for(self._route_batch(more), PREPARE_TIMEOUT_SECONDS)
            except Exception:
                log.exception("router %s: records fetched to join a batch could not be routed; they come again",
                              self.instance)
        if routed is None:
            for tp, records in more.items():
                if tp in self.consumer.assignment():
                    self.consumer.seek(tp, records[0].offset)
            return []
        offsets.update({tp: records[-1].offset + 1 for tp, records in more.items()})
        return routed

    async def _fetched_meanwhile(self, room: int) -> Fetched:
        """Up to ``room`` records: those the consumer holds, then what the broker had when they were taken. aiokafka
        keeps one fetch's answer for a broker and asks that broker again only once the answer is taken, so what
        arrived after the answer came waits at the broker; asked for at once, it comes within a round trip
        (``router_refetch_ms``; asked only when the consumer held something, so that a quiet router does not wait).
        Nothing once a rebalance has begun: the consumer would hold the call until the rebalance ends, which cannot
        be before this step lets the revocation (``_Revocations``) have the batch lock; a rebalance that begins
        during the call is cut short by the deadline."""
        fetched: Fetched = {}
        for timeout_ms in (0, self.settings.router_refetch_ms):
            if room <= 0 or self.consumer._subscription.reassignment_in_progress:
                break
            try:
                async with asyncio.timeout(timeout_ms / 1000 + REFETCH_GRACE_SECONDS):
                    more = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=room)
            except TimeoutError:
                break
            if not more:
                break
            for tp, records in more.items():
                fetched.setdefault(tp, []).extend(records)
            room -= sum(len(records) for records in more.values())
        return fetched

    async def _floor(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Where routing must at least go on from: what the audit log shows decided, where it lies within the
        partition. An offset past a partition's end is no floor (the audit log speaks of records this topic does
        not hold: a topic made again under the same name): going there would send the consumer back to the
        earliest record, the very replay the floor is for."""
        floors = await self.enforcement.decided_through(partitions)
        if not floors:
            return {}
        ends = await self.consumer.end_offsets(list(floors))
        for tp, offset in floors.items():
            if offset > ends[tp]:
                log.error("router %s: the audit log shows %s/%d decided up to %d, past the partition's end %d: not "
                          "taken as a floor", self.instance, tp.topic, tp.partition, offset - 1, ends[tp])
        return {tp: offset for tp, offset in floors.items() if offset <= ends[tp]}

    def _take_raised(self) -> dict[TopicPartition, int]:
        """The offsets raised to the audit log's floor (``fetch_stable_offsets``) of partitions still ours, to be
        committed with the next transaction, so that the group's offsets say again where routing stands."""
        raised = dict(self._raised)  # the same dict stays: the consumer's offset fetch adds to it
        self._raised.clear()
        assignment = self.consumer.assignment()
        return {tp: offset for tp, offset in raised.items() if tp in assignment}

    async def stalled(self) -> str | None:
        """Liveness: None while the router routes, or has nothing to route; else how long it has committed
        nothing although it has records to route."""
        idle = time.monotonic() - self.progressed_at
        if idle <= self.settings.router_stall_seconds:
            return None
        return f"router {self.instance} has committed nothing for {idle:.0f} s while records wait"

    async def joined(self) -> str | None:
        """Readiness: the router is a member of its group's current generation."""
        return None if Membership.of(self.consumer) is not None else "the router has not joined its group"

    async def settle(self) -> bool:
        """Wait for the transaction in flight. False if it failed (its batch must be routed again)."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            return True
        try:
            await in_flight
            return True
        except Exception:
            log.exception("router %s: transaction failed; rewinding to committed offsets", self.instance)
            return False

    async def _route_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> RoutedBatch:
        """Route every record (pure), and tell the ids a sender already used: a copy with the same content is a
        resend, another event under the id a duplicate (``judge_copies``). The ids are looked up in PostgreSQL
        while the records are routed; those of records refused for another reason are then forgotten again, so
        that the event may come back with the same id. Whatever a record holds, it ends routed, refused or
        audited as a resend: nothing in it can stop the batch."""
        now = self.clock.now()
        ingress: list[IngressRecord] = []
        for tp, records in batch.items():
            sender = self.topics.sender_of(tp.topic)
            assert sender is not None, tp.topic  # only ingress topics of members are subscribed
            ingress += [IngressRecord(tp.topic, tp.partition, r.offset, r.key, r.value or b"", list(r.headers), sender,
                                      r.timestamp) for r in records]
        candidates = {record.position: Seen(record.sender, event_id, record.position,
                                            content_digest(record.key, record.value, record.headers))
                      for record in ingress if (event_id := attribute(record.headers, "ce_id"))}
        looking_up = asyncio.create_task(self.enforcement.copies(list(candidates.values())))
        try:  # the ids are looked up while the policy's version is (two connections, one round trip each)
            await self.enforcement.refresh()
        except BaseException:
            looking_up.cancel()
            raise
        results: list[tuple[IngressRecord, Routed]] = []
        try:
            for record in ingress:
                try:
                    routed = route(record, self.enforcement.registry, self.enforcement.sharing, now,
                                   self.settings.max_payload_bytes, self.topics, self.mask_key)
                except Exception as exc:  # a record must never stop the stream: refuse it, keep going
                    log.exception("router %s: could not route %s", self.instance, record.position)
                    routed = reject(record, Rejection(Reason.MALFORMED_ENVELOPE,
                                                      f"could not be routed: {type(exc).__name__}"), now, self.topics)
                results.append((record, routed))
        finally:
            copies = await looking_up
        await self._learn_topics({out.topic for _, routed in results for out in routed.records})
        results = [(record, provisioned(routed, record, self._existing.__contains__, now, self.topics))
                   for record, routed in results]
        refused = [candidates[record.position] for record, routed in results
                   if routed.rejection is not None and record.position in candidates]
        if refused:
            await self.enforcement.forget(refused)
        return judge_copies(results, copies, now, self.topics)

    async def _learn_topics(self, wanted: set[str]) -> None:
        """Look the broker's topics up again when an output names one not known to exist."""
        if not wanted <= self._existing:
            metadata = await self.producer.client.fetch_all_metadata()
            self._existing = set(metadata.topics())

    async def _commit(self, routed_batch: RoutedBatch, offsets: dict[TopicPartition, int], membership: Membership,
                      taken_ns: int) -> None:
        """One transaction: every output record of the batch, and the input offsets after it, committed in the
        group ``membership`` the batch was fetched in: the group coordinator refuses them, and the transaction
        aborts, when that generation has passed (this instance was paused and its partitions went elsewhere). Then
        the batch is counted, and traced, as taken up at ``taken_ns``."""
        if not offsets.keys() <= self.consumer.assignment():
            raise RuntimeError("partitions were reassigned while the batch was prepared")
        for topic in {out.topic for _, routed in routed_batch for out in routed.records} - self._partitions.keys():
            self._partitions[topic] = sorted(await self.producer.partitions_for(topic))
        async with self.producer.transaction():
            batches = Batches(self.producer, self._partitions, self._key_hashes)
            for _, routed in routed_batch:
                for out in routed.records:
                    batches.add(out.topic, out.key, out.value, out.headers)
            self.fence.membership = membership
            # The offsets go to the coordinators while the records go to the partitions' leaders (the transaction's
            # requests are sent one after another; a produce request beside them): the commit waits for both.
            await asyncio.gather(batches.send(),
                                 self.producer.send_offsets_to_transaction(offsets, self.settings.router_group))
        committed_ns = time.time_ns()
        self.progressed_at = time.monotonic()
        self._committed.update(offsets)
        count_committed(routed_batch, (committed_ns - taken_ns) / 1e9)
        if self.tracer is not None:
            self._trace(routed_batch, taken_ns, committed_ns)

    def _trace(self, routed_batch: RoutedBatch, taken_ns: int, committed_ns: int) -> None:
        """A span per event of a committed batch, from the batch taken up to its transaction committed, in the trace
        the record's ``traceparent`` names (its parent: the span that sent it)."""
        assert self.tracer is not None
        for record, routed in routed_batch:
            attributes: dict[str, str | list[str]] = {
                "messaging.system": "kafka", "concord.sender": record.sender, "concord.ingress": record.position,
                "messaging.message.id": routed.event_id or attribute(record.headers, "ce_id") or "",
                "concord.contract": routed.contract or attribute(record.headers, "ce_type") or ""}
            if routed.resend_of is not None:
                attributes |= {"concord.outcome": Outcome.RESENT.value, "concord.first": routed.resend_of}
            elif routed.rejection is None:
                attributes |= {"concord.outcome": Outcome.ROUTED.value, "concord.consumers": list(routed.consumers)}
            else:
                attributes |= {"concord.outcome": Outcome.REFUSED.value,
                               "concord.reason": routed.rejection.reason.value}
            span = self.tracer.start_span("route", tracing.parent(attribute(record.headers, TRACEPARENT)),
                                          SpanKind.CONSUMER, attributes, start_time=taken_ns)
            span.end(committed_ns)

    async def _rewind(self, partitions: Iterable[TopicPartition]) -> None:
        """Back to the offsets committed: those of our own last transaction where we know them (the broker may
        not have written its markers yet), else what the group coordinator has."""
        for tp in partitions:
            if tp not in self.consumer.assignment():
                continue
            committed = self._committed.get(tp)
            if committed is None:
                committed = await self.consumer.committed(tp)
            if committed is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)

