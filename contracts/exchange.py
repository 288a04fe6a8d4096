"""Contracts published by the exchange itself (the gateway)."""

from __future__ import annotations

from contracts.base import Event, contract, shared
from contracts.departments import SERVICE_DEPARTMENTS


@contract("exchange.event-rejected", version=1, consumers=SERVICE_DEPARTMENTS, recipient="sender",
          subject="subject")
class EventRejected(Event):
    """The gateway refused an event: the sender learns why; the original is in its dead-letter topic."""

    event_id: str = shared("ce_id of the refused event, or empty if it had none")
    subject: str = shared("ce_subject of the refused event (the case id), or empty")
    sender: str = shared("the department whose ingress topic the event came in on")
    rejected_type: str = shared("ce_type of the refused event, or empty")
    reason: str = shared("machine-readable reason code")
    detail: str = shared("what exactly was wrong")
    ingress_topic: str = shared("where the event came in")
    ingress_partition: int = shared("its partition")
    ingress_offset: int = shared("its offset")
    deadletter_topic: str = shared("where the original bytes are kept")
