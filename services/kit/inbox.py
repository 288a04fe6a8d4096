"""Receiving: how a department takes what the gateway delivers. Each record is decoded, handed to the handler of
its contract, and remembered in the inbox by its event id, so that a redelivered copy is a no-op. Nothing a
record holds stops the stream: an unreadable record is kept as such, a handler that fails is retried (its unit of
work rolls back and comes again, ``services.kit.lanes``) and, after ``MAX_ATTEMPTS``, its event is parked with the
error and the record it came in, for an operator to run again once the cause is fixed (``Receiver.replay``,
``concord inbox replay``).

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
    """When an event was where on its way here (real time): its sender's unit of work committed it to its outbox,
    it entered the exchange, the router delivered it, and this department took it up. The efficacy report
    measures the exchange with these, and departments without them."""

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


@dataclass(frozen=True)
class Delivered:
    """A delivered record as a parked event keeps it, to be received again."""

    key: bytes | None
    value: bytes
    headers: RawHeaders

    @classmethod
    def of(cls, record: ConsumerRecord[bytes, bytes]) -> Delivered:
        return cls(record.key, record.value, list(record.headers))


@dataclass(frozen=True)
class ParkedEvent:
    """An event whose handler kept failing: who sent it, when it was parked, how often its handler ran, the last
    error, and the record it came in (none for events parked before the inbox kept records)."""

    event_id: str
    contract: str
    sender: str
    parked_at: datetime
    attempts: int | None
    error: str
    record: Delivered | None


class Unreplayable(StrEnum):
    UNKNOWN = "unknown"  # no event of this id in the inbox
    HANDLED = "handled"  # handled when delivered
    REPLAYED = "replayed"  # parked, then handled by a replay
    UNREADABLE = "unreadable"  # kept as unreadable: there is no handler to run
    NO_RECORD = "no_record"  # parked before the inbox kept the records of parked events


@dataclass
class NotReplayable(Exception):
    """Why an event cannot be run again: only a parked event can, and once it has run it is handled."""

    department: str
    event_id: str
    why: Unreplayable
    at: datetime | None = None  # when it was handled, replayed or kept

    def __str__(self) -> str:
        said = {Unreplayable.UNKNOWN: "is not in its inbox",
                Unreplayable.HANDLED: "was handled when it was delivered, not parked",
                Unreplayable.REPLAYED: "was parked and has been handled by a replay already",
                Unreplayable.UNREADABLE: "was kept as unreadable: no handler can take it",
                Unreplayable.NO_RECORD: "was parked before the inbox kept parked records: it cannot run again"}
        when = f" ({self.at.isoformat()})" if self.at else ""
        return f"{self.department}: event {self.event_id} {said[self.why]}{when}"


class Inbox(Protocol):
    async def claim(self, event_id: str, contract: str, sender: str, transit: Transit) -> bool:
        """Mark an event handled, with its transit; False if it was seen before (a redelivered copy)."""

    async def keep(self, event_id: str, contract: str, sender: str, outcome: Outcome, detail: str) -> None:
        """Keep an event that was not handled, and why (a copy already kept stays as it is)."""

    async def park(self, event_id: str, contract: str, sender: str, record: Delivered, attempts: int,
                   error: str) -> None:
        """Keep an event whose handler kept failing, with the record it came in and the last error."""

    async def unpark(self, event_id: str) -> bool:
        """Mark a parked event handled by a replay, now; False if it is not parked."""

    async def repark(self, event_id: str, error: str) -> None:
        """A parked event's handler failed again: one attempt more, and the new error."""

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

    async def park(self, event_id: str, contract: str, sender: str, record: Delivered, attempts: int,
                   error: str) -> None:
        await self.connection.execute(
            f"INSERT INTO {self.schema}.inbox (event_id, contract, sender, outcome, detail, attempts, record_key,"
            " record_value, header_names, header_values) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (event_id) DO NOTHING",
            event_id, contract, sender, Outcome.PARKED.value, error, attempts, record.key, record.value,
            [name.encode("utf-8", "surrogatepass") for name, _ in record.headers],
            [value for _, value in record.headers])
        self.parked[contract] += 1

    async def unpark(self, event_id: str) -> bool:
        return bool(await self.connection.fetchval(
            f"UPDATE {self.schema}.inbox SET outcome = $2, attempts = coalesce(attempts, 0) + 1, replayed_at = now()"
            " WHERE event_id = $1 AND outcome = $3 RETURNING true",
            event_id, Outcome.HANDLED.value, Outcome.PARKED.value))

    async def repark(self, event_id: str, error: str) -> None:
        await self.connection.execute(
            f"UPDATE {self.schema}.inbox SET detail = $2, attempts = coalesce(attempts, 0) + 1"
            " WHERE event_id = $1 AND outcome = $3", event_id, error, Outcome.PARKED.value)

    async def parked_events(self) -> list[ParkedEvent]:
        """Every event parked, the oldest first (without their records)."""
        rows = await self.connection.fetch(
            f"SELECT event_id, contract, sender, received_at, attempts, detail FROM {self.schema}.inbox"
            " WHERE outcome = $1 ORDER BY received_at, event_id", Outcome.PARKED.value)
        return [ParkedEvent(r["event_id"], r["contract"], r["sender"], r["received_at"], r["attempts"],
                            r["detail"] or "", None) for r in rows]

    async def take_parked(self, event_id: str) -> ParkedEvent:
        """A parked event and its record, locked until the transaction ends (a second replay waits, then finds
        it handled); raises NotReplayable for any other."""
        row = await self.connection.fetchrow(
            f"SELECT * FROM {self.schema}.inbox WHERE event_id = $1 FOR UPDATE", event_id)
        if row is None:
            raise NotReplayable(self.schema, event_id, Unreplayable.UNKNOWN)
        outcome = Outcome(row["outcome"])
        if outcome is Outcome.UNREADABLE:
            raise NotReplayable(self.schema, event_id, Unreplayable.UNREADABLE, row["received_at"])
        if outcome is Outcome.HANDLED and row["replayed_at"] is not None:
            raise NotReplayable(self.schema, event_id, Unreplayable.REPLAYED, row["replayed_at"])
        if outcome is Outcome.HANDLED:
            raise NotReplayable(self.schema, event_id, Unreplayable.HANDLED, row["received_at"])
        if row["record_value"] is None:
            raise NotReplayable(self.schema, event_id, Unreplayable.NO_RECORD, row["received_at"])
        headers = [(name.decode("utf-8", "surrogatepass"), value)
                   for name, value in zip(row["header_names"], row["header_values"], strict=True)]
        return ParkedEvent(event_id, row["contract"], row["sender"], row["received_at"], row["attempts"],
                           row["detail"] or "", Delivered(row["record_key"], row["record_value"], headers))

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
        """Handle one record in its unit of work; returns the event ids whose attempts are settled (to be forgotten
        once the unit of work commits). Raises when the handler failed and may be retried."""
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
            # Only the attempt that parks the event if it fails needs a savepoint, to undo the handler's changes alone:
            # any other failure rolls the lane's whole unit of work back (and it comes again). Two round trips fewer
            # an event.
            parks_on_failure = self._attempts.get(envelope.id, 0) + 1 >= MAX_ATTEMPTS
            async with inbox.savepoint() if parks_on_failure else contextlib.nullcontext():
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
                raise  # the unit of work rolls back and comes again
            log.exception("%s: parking %s after %d attempts", self.department, envelope.id, attempts)
            await inbox.park(envelope.id, envelope.type, sender, Delivered.of(record), attempts, repr(exc)[:2000])
        return [envelope.id]

    async def replay(self, inbox: Inbox, parked: ParkedEvent, dispatch: Dispatch) -> str | None:
        """Receive a parked event's record again, once, by the rules it was received by, in a savepoint: handled,
        the inbox says so; failed, its changes are undone and it stays parked with the new error, which is
        returned. Raises NotReplayable for an event not parked (or whose record was not kept)."""
        record = parked.record
        if record is None:
            raise NotReplayable(self.department, parked.event_id, Unreplayable.NO_RECORD, parked.parked_at)
        try:
            envelope = decode(record.headers, record.key)
            entry = self.handlers.get(envelope.contract)
            if entry is None:
                raise LookupError(f"{self.department} has no handler of {envelope.type} v{envelope.contract[1]}")
            model, handler = entry
            event = received_view(model).model_validate(parse_payload(record.value))
            async with inbox.savepoint():
                if not await inbox.unpark(parked.event_id):
                    raise NotReplayable(self.department, parked.event_id, Unreplayable.HANDLED)
                await dispatch(handler, event, parked.sender, envelope)
        except NotReplayable:
            raise
        except Exception as exc:
            log.warning("%s: replaying %s failed again: %r", self.department, parked.event_id, exc)
            error = repr(exc)[:2000]
            await inbox.repark(parked.event_id, error)
            return error
        log.info("%s: replayed %s v%d %s from %s (case %s)", self.department, *envelope.contract, envelope.id,
                 parked.sender, envelope.subject)
        return None

    def settled(self, event_ids: list[str]) -> None:
        """Their unit of work committed: these events' attempts are over (a rolled-back park must count on)."""
        for event_id in event_ids:
            self._attempts.pop(event_id, None)
