"""A department's service: typed handlers for the contracts it consumes from ``deliver.<dept>`` (received by the
rules of ``inbox``: a redelivered event is a no-op, a failing one is retried then parked, and a parked one may be
replayed), and an outbox relayed to ``ingress.<dept>``."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import asyncpg
from aiokafka import AIOKafkaConsumer
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.specification import AsyncAPI
from opentelemetry.trace import SpanKind

from base import tracing
from base.clock import Clock
from base.db import component_pool
from base.kafka import stop_client
from base.offsets import stable_offsets_in_every_group
from base.outbox import Outbox
from base.settings import Settings
from base.stopping import within
from contracts.base import Event
from contracts.departments import DEPARTMENTS
from contracts.envelope import Envelope, Headers, new_traceparent
from contracts.exchange import EventRejected
from services.kit.commits import Commits
from services.kit.inbox import Dispatch, Handler, Outcome, PgInbox, Receiver
from services.kit.lanes import Lanes, Record
from services.kit.metrics import count_committed
from services.kit.subscription import connect_waiting, subscribe

log = logging.getLogger("concord.kit")
E = TypeVar("E", bound=Event)
STOP_SECONDS = 5.0  # when the service stops: for the lanes to finish what they took, then for each part of the stop


@dataclass
class Context:
    """What a handler gets besides its event: who sent it, the envelope, and the unit of work."""

    department: str
    sender: str
    envelope: Envelope
    connection: asyncpg.Connection
    clock: Clock
    outbox: Outbox
    traceparent: str | None = None  # of the span handling the event, when tracing is on

    async def publish(self, event: Event) -> str:
        """Publish an event once this handler's transaction commits, in the trace of the event handled (a child of
        the handling span, when tracing is on)."""
        traceparent = self.traceparent or new_traceparent(self.envelope.traceparent)
        return await self.outbox.add(self.connection, event, traceparent=traceparent)


@dataclass(frozen=True)
class Replayed:
    """What a replay of a parked event came to: handled, or still parked with the new error."""

    department: str
    event_id: str
    outcome: Outcome
    error: str | None = None


class DepartmentService:
    def __init__(self, department: str, settings: Settings, clock: Clock, group: str | None = None) -> None:
        if department not in DEPARTMENTS:
            raise ValueError(f"unknown department {department!r}")
        self.department = department
        self.settings = settings
        self.clock = clock
        kafka = self.settings.kafka(department)
        self.broker = KafkaBroker(
            kafka.bootstrap, security=kafka.faststream(), client_id=f"{department}.service", enable_idempotence=True,
            allow_auto_create_topics=False,  # topics are the admin's to create
            logger=logging.getLogger(f"concord.{department}.broker"),
            log_level=logging.DEBUG,  # FastStream's per-batch "Received"/"Processed"; the receiver logs each event
            # Its one subscriber takes each batch as it came (services.kit.subscription), without FastDepends:
            # resolving the message from FastStream's context ran a function in a worker thread for every batch, and
            # decoding its bodies parsed every record, which the receiver does itself: 7 % of the departments' event
            # loop under the demo (py-spy), 2 % of the bureau's.
            apply_types=False,
        )
        self.app = FastStream(self.broker, specification=AsyncAPI(
            title=f"Concord: {DEPARTMENTS[department].name_en}", description="events this department consumes"))
        self.handlers: dict[tuple[str, int], tuple[type[Event], Handler]] = {}
        self._pool: asyncpg.Pool | None = None
        self._outbox: Outbox | None = None
        self.receiver = Receiver(department, self.handlers)
        self._after_commit: list[Callable[[], None]] = []
        self.tracer = tracing.tracer(f"concord.{department}")
        self.commits = Commits(department)
        self.lanes = Lanes(department, self._unit_of_work, self.commits.handled)
        self._committing: asyncio.Task[None] | None = None
        # FastStream's consumer subscribes before it starts: its group's offsets are asked for stable from the first
        # assignment on, so that a broker just restarted does not send the department back to its reset policy.
        stable_offsets_in_every_group()
        subscribe(self.broker, self.settings.topics.deliver(department), group or department, self.commits,
                  self._receive, f"events delivered to {department} by the gateway")
        self.handles(EventRejected)(self._on_rejected)

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{self.department} service is not started")
        return self._pool

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            raise RuntimeError(f"{self.department} service is not started")
        return self._outbox

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time a unit of work of the department commits (events delivered and handled, a
        parked one replayed, whatever else calls ``committed``): what it changed is there to be read."""
        self._after_commit.append(callback)

    def committed(self) -> None:
        """A unit of work of the department has committed: its outbox relays what it published (once the service
        is connected), and those who asked are told."""
        if self._outbox is not None:
            self._outbox.wake()
        for callback in self._after_commit:
            callback()

    def handles(self, model: type[E]) -> Callable[[Callable[[E, Context], Awaitable[None]]], Handler]:
        """Declare the handler of a contract this department consumes."""

        def register(handler: Callable[[E, Context], Awaitable[None]]) -> Handler:
            key = model.CONTRACT.key
            if key in self.handlers:
                raise ValueError(f"{self.department} already handles {key}")
            self.handlers[key] = (model, handler)
            return handler

        return register

    async def _on_rejected(self, event: EventRejected, ctx: Context) -> None:
        log.warning("%s: the exchange rejected event %s (%s): %s", self.department, event.event_id,
                    event.reason, event.detail)
        await ctx.connection.execute(
            f"INSERT INTO {self.department}.rejections (event_id, rejected_id, contract, reason, detail)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            ctx.envelope.id, event.event_id, event.rejected_type, event.reason, event.detail,
        )

    async def _receive(self, message: Any) -> None:
        """A batch of delivered records, queued on the department's lanes (``services.kit.lanes``: one case's events
        in order on one lane, each lane's records in units of work of their own); their offsets are committed once
        they are handled (``services.kit.commits``). A unit of work that fails is rolled back and comes again (what
        its handlers changed is undone, the inbox with it); an event that keeps failing is parked (its last attempt
        in a savepoint of its own, which undoes its handler's changes alone), and the stream goes on. ``message`` is
        FastStream's KafkaMessage as it came (``subscription.as_it_came``), typed Any here: FastStream documents the
        handler's parameter as the subscription's payload, and the message has no schema."""
        batch = cast(KafkaMessage, message)
        records = batch.raw_message if isinstance(batch.raw_message, tuple) else (batch.raw_message,)
        self.commits.taken(cast(AIOKafkaConsumer, batch.consumer), records)
        await self.lanes.put(records)

    async def _unit_of_work(self, records: list[Record]) -> None:
        """Records in one transaction. What it handled and parked is counted once it has committed, and what its
        handlers published is relayed then (and whoever asked to be told of commits is told); the attempts of the
        events it settled are forgotten."""
        settled: list[str] = []
        handled: Counter[str] = Counter()
        async with self.pool.acquire() as connection, connection.transaction():
            inbox = PgInbox(connection, self.department)
            dispatch = self._dispatch(connection, handled)
            for record in records:
                settled += await self.receiver.receive(inbox, record, dispatch)
        self.receiver.settled(settled)
        self.committed()
        count_committed(self.department, handled, inbox.parked)

    def _dispatch(self, connection: asyncpg.Connection, handled: Counter[str]) -> Dispatch:
        """How a handler runs in a unit of work: with its context on the transaction's connection (and the outbox),
        traced when tracing is on; ``handled`` counts what ran."""

        async def dispatch(handler: Handler, event: Event, sender: str, envelope: Envelope) -> None:
            context = Context(self.department, sender, envelope, connection, self.clock, self.outbox)
            if self.tracer is None:
                await handler(event, context)
            else:
                await self._traced(handler, event, context)
            handled[envelope.type] += 1

        return dispatch

    async def replay(self, event_id: str) -> Replayed:
        """Run a parked event's handler again, as when it was delivered: the receiver's rules, the handler's context
        and outbox, one transaction of the department's. What the handler publishes is relayed by the outbox.
        Raises NotReplayable for an event that is not parked (a second replay of one finds it handled)."""
        async with self.pool.acquire() as connection, connection.transaction():
            inbox = PgInbox(connection, self.department)
            parked = await inbox.take_parked(event_id)
            error = await self.receiver.replay(inbox, parked, self._dispatch(connection, Counter()))
        if error is not None:
            return Replayed(self.department, event_id, Outcome.PARKED, error)
        self.committed()
        return Replayed(self.department, event_id, Outcome.HANDLED)

    async def _traced(self, handler: Handler, event: Event, context: Context) -> None:
        """A handler's run as a span, in the trace of the delivered record's ``traceparent`` (its parent: the span
        that sent the event); what the handler publishes is a child of it."""
        assert self.tracer is not None
        envelope = context.envelope
        attributes = {"messaging.system": "kafka", "messaging.message.id": envelope.id,
                      "concord.contract": envelope.type, "concord.sender": context.sender,
                      "concord.department": self.department, "concord.case": envelope.subject}
        with self.tracer.start_as_current_span(f"handle {envelope.type}", tracing.parent(envelope.traceparent),
                                               SpanKind.CONSUMER, attributes) as span:
            context.traceparent = tracing.traceparent_of(span)
            await handler(event, context)

    async def connect(self) -> None:
        """The department's store and outbox, without consuming: for command-line entry points."""
        self._pool = await component_pool(self.settings.dsn(self.department), min_size=1, max_size=8)
        self._outbox = Outbox(self.department, self.settings.topics.ingress(self.department),
                              f"/concord/{self.department}", self._pool, self._send, self.clock)

    async def ready(self) -> str | None:
        """Readiness: the department's database and the broker answer."""
        await self.pool.fetchval("SELECT 1")
        return None if await self.broker.ping(timeout=1.0) else "the broker does not answer"

    async def disconnect(self) -> None:
        await self.pool.close()

    async def _send(self, topic: str, value: bytes, key: bytes | None, headers: Headers) -> Awaitable[Any]:
        future: Awaitable[Any] = await self.broker.publish(
            value, topic, key=key, headers={k: v.decode() for k, v in headers}, no_confirm=True)
        return future

    async def start(self) -> None:
        """Connect, consume and relay; a start that fails lets go of what it had connected before raising."""
        await self.connect()
        self.lanes.start()
        try:
            await connect_waiting(self.broker)
            await self.broker.start()
        except BaseException:
            await stop_client(self.broker.stop, f"{self.department}'s broker clients")
            await self.lanes.stop()
            await self.disconnect()
            raise
        self._relay = asyncio.create_task(self.outbox.run(), name=f"{self.department}-outbox")
        self._committing = asyncio.create_task(self.commits.run(), name=f"{self.department}-commits")

    async def stop(self) -> None:
        """Fetch no more, let the lanes finish what they took (``STOP_SECONDS`` at most), commit how far they got,
        then let go of the broker and the database."""
        self._relay.cancel()
        await asyncio.gather(self._relay, return_exceptions=True)
        if self._committing is not None:
            self.commits.pause()
            await self.lanes.idle(STOP_SECONDS)
            # given up past its bound: what it leaves uncommitted is delivered again after a restart, and the inbox
            # finds it handled
            await within(self.commits.stop(self._committing), STOP_SECONDS,
                         f"{self.department}: its last commit of its offsets", log)
        await self.lanes.stop()
        await stop_client(self.broker.stop, f"{self.department}'s broker clients")
        await within(self.disconnect(), STOP_SECONDS, f"{self.department}: its database pool's close", log)

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()
