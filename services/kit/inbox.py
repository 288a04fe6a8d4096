"""Receiving: how a department takes what the gateway delivers. Each record is decoded, handed to the handler of
its contract, and remembered in the inbox by its event id, so that a redelivered copy is a no-op. Nothing a
record holds stops the stream: an unreadable record is kept as such, a handler that fails is retried (the batch
rolls back and comes again) and, after ``MAX_ATTEMPTS``, its event is parked with the error for an operator.

The rules are in ``Receiver``, over an ``Inbox`` (the department's table in PostgreSQL, ``PgInbox``; the fast
tests use an in-memory one)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import asyncpg
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from contracts.base import Event, received_view
from contracts.envelope import SENDER_HEADER, SENT_AT, Envelope, EnvelopeError, RawHeaders, decode, parse_payload

log = logging.getLogger("concord.kit")
MAX_ATTEMPTS = 5
RETRY_BACKOFF_SECONDS = 0.2


class Outcome(StrEnum):
    HANDLED = "handled"
    UNREADABLE = "unreadable"  # the envelope or the payload could not be read: kept, never retried
    PARKED = "parked"  # the handler failed MAX_ATTEMPTS times: kept with the error, the stream goes on


INGRESS_AT = "concord_ingress_at"  # set by the router: when the event entered the exchange (epoch ms)


@dataclass(frozen=True)
class Transit:
    """When an event was where on its way here (real time): its sender's outbox took it, it entered the
    exchange, the router delivered it, and this department took it up. The efficacy report measures the
    exchange with these, and departments without them."""

    sent_at: datetime | None
    ingress_at: datetime | None
    routed_at: datetime | None
    handled_at: datetime

    @classmethod
    def of(cls, headers: RawHeaders, delivered_ms: int | None) -> Transit:
        return cls(_moment(_header(headers, SENT_AT)), _moment(_header(headers, INGRESS_AT)), _moment(delivered_ms),
                   datetime.fromtimestamp(time.time(), UTC))


def _header(headers: RawHeaders, name: str) -> int | None:
    raw = dict(headers).get(name)
    return int(raw) if raw is not None and raw.isdigit() and len(raw) <= 15 else None


def _moment(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


class Inbox(Protocol):
    async def claim(self, event_id: str, contract: str, sender: str, transit: Transit) -> bool:
        """Mark an event handled, with its transit; False if it was seen before (a redelivered copy)."""

    async def keep(self, event_id: str, contract: str, sender: str, outcome: Outcome, detail: str) -> None:
        """Keep an event that was not handled, and why (a copy already kept stays as it is)."""

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """One event's changes, undone alone if its handler fails."""


class PgInbox:
    def __init__(self, connection: asyncpg.Connection, schema: str) -> None:
        self.connection = connection
        self.schema = schema
        self.parked: Counter[str] = Counter()  # event types parked in this transaction (for the metrics)

    async def claim(self, event_id: str, contract: str, sender: str, transit: Transit) -> bool:
        return bool(await self.connection.fetchval(
            f"INSERT INTO {self.schema}.inbox (event_id, contract, sender, outcome, sent_at, ingress_at, routed_at,"
            " received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING RETURNING true",
            event_id, contract, sender, Outcome.HANDLED.value, transit.sent_at, transit.ingress_at, transit.routed_at,
            transit.handled_at))

    async def keep(self, event_id: str, contract: str, sender: str, outcome: Outcome, detail: str) -> None:
        await self.connection.execute(
            f"INSERT INTO {self.schema}.inbox (event_id, contract, sender, outcome, detail)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
            event_id, contract, sender, outcome.value, detail)
        if outcome is Outcome.PARKED:
            self.parked[contract] += 1

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        async with self.connection.transaction():
            yield


# A handler of one contract: the event, as its receiver may see it, and whatever context the service gives.
Handler = Callable[[Any, Any], Awaitable[None]]
# How the service runs a handler: with the context it builds from the sender and the envelope.
Dispatch = Callable[[Handler, Event, str, Envelope], Awaitable[None]]


class Receiver:
    def __init__(self, department: str, handlers: dict[tuple[str, int], tuple[type[Event], Handler]],
                 backoff_seconds: float = RETRY_BACKOFF_SECONDS) -> None:
        self.department = department
        self.handlers = handlers
        self.backoff_seconds = backoff_seconds
        self._attempts: dict[str, int] = {}

    async def receive(self, inbox: Inbox, record: ConsumerRecord[bytes, bytes], dispatch: Dispatch) -> list[str]:
        """Handle one record in the batch's unit of work; returns the event ids whose attempts are settled (to
        be forgotten once the batch commits). Raises when the handler failed and may be retried."""
        sender = (dict(record.headers).get(SENDER_HEADER) or b"").decode("utf-8", "replace").replace("\x00", "")[:64]
        try:
            envelope = decode(record.headers, record.key)
        except EnvelopeError as exc:
            log.error("%s: unreadable record at %s/%s: %s", self.department, record.partition, record.offset, exc)
            await inbox.keep(f"unreadable:{record.topic}/{record.partition}/{record.offset}", "", sender,
                             Outcome.UNREADABLE, str(exc))
            return []
        entry = self.handlers.get(envelope.contract)
        if entry is None:
            return []  # delivered for information; this department keeps nothing of it
        model, handler = entry
        try:
            event = received_view(model).model_validate(parse_payload(record.value))
        except (ValidationError, ValueError) as exc:
            await inbox.keep(envelope.id, envelope.type, sender, Outcome.UNREADABLE, str(exc)[:2000])
            return []
        try:
            transit = Transit.of(record.headers, record.timestamp)
            async with inbox.savepoint():  # this event's changes stand or fall together
                if not await inbox.claim(envelope.id, envelope.type, sender, transit):
                    log.info("%s: event %s seen before; nothing to do", self.department, envelope.id)
                    return []
                await dispatch(handler, event, sender, envelope)
            log.info("%s: handled %s v%d %s from %s (case %s)", self.department, *envelope.contract,
                     envelope.id, sender, envelope.subject)
        except Exception as exc:
            attempts = self._attempts.get(envelope.id, 0) + 1
            self._attempts[envelope.id] = attempts
            if attempts < MAX_ATTEMPTS:
                log.warning("%s: handling %s failed (attempt %d): %s", self.department, envelope.id, attempts, exc)
                await asyncio.sleep(self.backoff_seconds * attempts)  # a transient fault may pass meanwhile
                raise  # the batch rolls back and comes again
            log.exception("%s: parking %s after %d attempts", self.department, envelope.id, attempts)
            await inbox.keep(envelope.id, envelope.type, sender, Outcome.PARKED, repr(exc)[:2000])
        return [envelope.id]

    def settled(self, event_ids: list[str]) -> None:
        """The batch committed: these events' attempts are over (a rolled-back park must count on)."""
        for event_id in event_ids:
            self._attempts.pop(event_id, None)
