"""The gateway router: consumes every ingress topic as one consumer group, routes each batch, and writes
the outputs and the input offsets in one Kafka transaction (exactly once in effect)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from contracts.departments import SERVICE_DEPARTMENTS
from deploy.settings import Settings
from gateway.enforcement import Enforcement, Seen
from gateway.rejections import Reason, Rejection
from gateway.routing import IngressRecord, Routed, reject, route
from services.kit.clock import Clock

log = logging.getLogger("concord.router")


class _Revocations(ConsumerRebalanceListener):  # type: ignore[misc]
    """Lets a rebalance wait for the batch in flight, and marks batches fetched before it as stale."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        async with self.router.batch_lock:
            self.router.generation += 1

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
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
        self.generation = 0
        self.routed = 0
        self.rejected = 0
        self.topics = settings.topics
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap,
            group_id=settings.router_group,
            client_id=f"concord-router-{self.instance}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=settings.router_batch_records,
            fetch_max_bytes=16 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap,
            transactional_id=f"concord-router-{self.instance}",
            enable_idempotence=True,
            transaction_timeout_ms=15000,
            linger_ms=5,
            max_batch_size=512 * 1024,
            max_request_size=8 * 1024 * 1024,
        )

    async def start(self) -> None:
        await self.producer.start()
        self.consumer.subscribe(
            [self.topics.ingress(d) for d in SERVICE_DEPARTMENTS], listener=_Revocations(self)
        )
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.producer.stop()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        await self.start()
        try:
            while not stop.is_set():
                await self.step()
        finally:
            await self.stop()

    async def step(self, timeout_ms: int = 200) -> int:
        """Fetch one batch and route it in one transaction. Returns the number of records routed."""
        generation = self.generation
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=self.settings.router_batch_records)
        if not batch:
            return 0
        async with self.batch_lock:
            if generation != self.generation:
                # A rebalance came between fetch and routing: whoever owns these partitions now reads them again
                # from the committed offsets (we too, for those still ours: our position moved past them).
                await self._rewind(batch.keys())
                return 0
            try:
                return await self._route_in_transaction(batch)
            except Exception:
                log.exception("router %s: batch failed; rewinding to committed offsets", self.instance)
                await self._rewind(batch.keys())
                return 0

    async def _route_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> list[Routed]:
        """Route every record (pure), then refuse the ids a sender already used."""
        await self.enforcement.refresh()
        now = self.clock.now()
        results: list[tuple[IngressRecord, Routed]] = []
        for tp, records in batch.items():
            sender = self.topics.sender_of(tp.topic)
            assert sender is not None, tp.topic  # only ingress topics of members are subscribed
            for r in records:
                record = IngressRecord(tp.topic, tp.partition, r.offset, r.key, r.value or b"", list(r.headers), sender)
                try:
                    routed = route(record, self.enforcement.registry, self.enforcement.sharing, now,
                                   self.settings.max_payload_bytes, self.topics)
                except Exception as exc:  # a record must never stop the stream: refuse it, keep going
                    log.exception("router %s: could not route %s", self.instance, _position(record))
                    routed = reject(record, Rejection(Reason.MALFORMED_ENVELOPE, f"could not be routed: {exc!r}"),
                                    now, self.topics)
                results.append((record, routed))
        duplicates = await self.enforcement.duplicates([
            Seen(record.sender, routed.event_id, _position(record))
            for record, routed in results if routed.event_id is not None
        ])
        routed_batch: list[Routed] = []
        for record, routed in results:
            first = duplicates.get(_position(record))
            if first is not None:
                detail = f"event id {routed.event_id} was already sent by {record.sender} (first at {first})"
                routed = reject(record, Rejection(Reason.DUPLICATE_ID, detail), now, self.topics)
            routed_batch.append(routed)
        return routed_batch

    async def _route_in_transaction(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> int:
        routed_batch = await self._route_batch(batch)
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        async with self.producer.transaction():
            sends = []
            for routed in routed_batch:
                for out in routed.records:
                    sends.append(await self.producer.send(out.topic, out.value, key=out.key, headers=out.headers))
            await asyncio.gather(*sends)
            await self.producer.send_offsets_to_transaction(offsets, self.settings.router_group)
        rejected = sum(1 for r in routed_batch if r.rejection)
        self.rejected += rejected
        self.routed += len(routed_batch) - rejected
        return len(routed_batch)

    async def _rewind(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            if tp not in self.consumer.assignment():
                continue
            committed = await self.consumer.committed(tp)
            if committed is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)


def _position(record: IngressRecord) -> str:
    return f"{record.topic}/{record.partition}/{record.offset}"
