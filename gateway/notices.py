"""What the exchange itself says, through its outbox: audit entries for changes to the registry and the
agreements, and notices to departments (agreement requests, decisions, reminders, escalations)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from base.clock import Clock
from base.outbox import Outbox
from contracts.base import Event
from contracts.departments import EXCHANGE
from contracts.envelope import SENDER_HEADER, KafkaRecord, encode
from contracts.topics import Topics
from gateway.audit.entry import AuditAction, AuditEntry


class Notices:
    def __init__(self, outbox: Outbox, topics: Topics, clock: Clock) -> None:
        self.outbox = outbox
        self.topics = topics
        self.clock = clock

    async def audit(self, connection: asyncpg.Connection, action: AuditAction, **fields: Any) -> None:
        """An audit entry for a change, written with the change's own transaction (``fields`` are those of
        ``AuditEntry``)."""
        entry = AuditEntry(action=action, at=self.clock.now(), **fields)
        record = KafkaRecord(entry.case_id.encode() if entry.case_id else None, entry.to_json(), [])
        await self.outbox.add_record(connection, record, "audit", self.topics.audit, event_id=f"audit:{uuid.uuid4()}")

    async def notify(self, connection: asyncpg.Connection, department: str, event: Event) -> str:
        """A notice from the exchange to one department's deliver topic, audited as delivered."""
        record = encode(event, source=f"/concord/{EXCHANGE}", time=self.clock.now())
        record = KafkaRecord(record.key, record.value, [*record.headers, (SENDER_HEADER, EXCHANGE.encode())])
        contract = type(event).CONTRACT
        event_id = await self.outbox.add_record(connection, record, contract.id, self.topics.deliver(department))
        await self.audit(connection, AuditAction.NOTIFIED, event_id=event_id, sender=EXCHANGE, contract=contract.id,
                         version=contract.version, case_id=getattr(event, contract.subject_field),
                         delivered={department: sorted(type(event).model_fields)})
        return event_id
