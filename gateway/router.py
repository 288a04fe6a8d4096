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

from contracts.departments import SERVICE_DEPARTMENTS, department_of_ingress, ingress_topic
from deploy.settings import Settings
from gateway.registry import Registry
from gateway.routing import IngressRecord, Routed, SharingPolicy, route
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
        registry: Registry,
        policy: SharingPolicy,
        clock: Clock,
        instance: str | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.policy = policy
        self.clock = clock
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}"
        self.batch_lock = asyncio.Lock()
        self.generation = 0
        self.routed = 0
        self.rejected = 0
        self.consumer = AIOKafkaConsumer(
            *[ingress_topic(d) for d in SERVICE_DEPARTMENTS],
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
            [ingress_topic(d) for d in SERVICE_DEPARTMENTS], listener=_Revocations(self)
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
                return 0  # a rebalance came between fetch and routing: the new owner reads from committed offsets
            try:
                return await self._route_in_transaction(batch)
            except Exception:
                log.exception("router %s: batch failed; rewinding to committed offsets", self.instance)
                await self._rewind(batch.keys())
                return 0

    async def _route_in_transaction(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> int:
        now = self.clock.now()
        limit = self.settings.max_payload_bytes
        offsets: dict[TopicPartition, int] = {}
        count = 0
        async with self.producer.transaction():
            sends = []
            for tp, records in batch.items():
                sender = department_of_ingress(tp.topic)
                assert sender is not None, tp.topic  # only ingress topics of members are subscribed
                for r in records:
                    routed: Routed = route(
                        IngressRecord(tp.topic, tp.partition, r.offset, r.key, r.value or b"",
                                      list(r.headers), sender),
                        self.registry, self.policy, now, limit,
                    )
                    if routed.rejection:
                        self.rejected += 1
                    else:
                        self.routed += 1
                    for out in routed.records:
                        sends.append(await self.producer.send(out.topic, out.value, key=out.key, headers=out.headers))
                    count += 1
                offsets[tp] = records[-1].offset + 1
            await asyncio.gather(*sends)
            await self.producer.send_offsets_to_transaction(offsets, self.settings.router_group)
        return count

    async def _rewind(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            if tp not in self.consumer.assignment():
                continue
            committed = await self.consumer.committed(tp)
            if committed is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)
