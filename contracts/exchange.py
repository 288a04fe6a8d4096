"""Contracts published by the exchange itself (the gateway)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from contracts.base import Event, contract, shared
from contracts.departments import COORDINATION, SERVICE_DEPARTMENTS


@contract("exchange.event-rejected", version=1, consumers=SERVICE_DEPARTMENTS, recipient="sender",
          subject="subject")
class EventRejected(Event):
    """The gateway refused an event: the sender learns why; the original is in its dead-letter topic."""

    event_id: str = shared("ce_id of the refused event, or empty if it had none")
    subject: str = shared("ce_subject of the refused event (the case id), or its ingress position if it had none")
    sender: str = shared("the department whose ingress topic the event came in on")
    rejected_type: str = shared("ce_type of the refused event, or empty")
    reason: str = shared("machine-readable reason code")
    detail: str = shared("what exactly was wrong")
    ingress_topic: str = shared("where the event came in")
    ingress_partition: int = shared("its partition")
    ingress_offset: int = shared("its offset")
    deadletter_topic: str = shared("where the original bytes are kept")


@contract("exchange.agreement-requested", version=1, consumers=SERVICE_DEPARTMENTS, recipient="provider",
          subject="agreement_id")
class AgreementRequested(Event):
    """A department asks the provider of a contract for conditional fields; the provider must answer
    within 10 working days, with reasons if it refuses."""

    agreement_id: str = shared("the agreement")
    contract_id: str = shared("the contract whose fields are asked for")
    consumer: str = shared("the department asking")
    provider: str = shared("the department that owns the contract")
    fields: list[str] = shared("the fields asked for")
    purpose: str = shared("what the data is for")
    legal_basis: str = shared("the law or regulation that allows it")
    valid_from: datetime = shared("start of the sharing period")
    valid_until: datetime = shared("end of the sharing period")
    due_at: datetime = shared("the provider's deadline to answer")


class AgreementOutcome(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"


@contract("exchange.agreement-decided", version=1, consumers=SERVICE_DEPARTMENTS, recipient="department",
          subject="agreement_id")
class AgreementDecided(Event):
    """An agreement was approved, rejected or revoked; sent to each party."""

    agreement_id: str = shared("the agreement")
    department: str = shared("the party told")
    contract_id: str = shared("the contract")
    consumer: str = shared("the consuming department")
    provider: str = shared("the providing department")
    outcome: AgreementOutcome = shared("what happened")
    fields: list[str] = shared("the fields the consumer may see while the agreement is in force")
    reasons: str = shared("why (required for a refusal or a revocation)")
    valid_until: datetime = shared("end of the sharing period")


@contract("exchange.agreement-reminder", version=1, consumers=SERVICE_DEPARTMENTS, recipient="provider",
          subject="agreement_id")
class AgreementReminder(Event):
    """Half of the provider's time to answer a sharing request has passed."""

    agreement_id: str = shared("the agreement")
    contract_id: str = shared("the contract")
    consumer: str = shared("the department waiting")
    provider: str = shared("the department that must answer")
    requested_at: datetime = shared("when it was asked")
    due_at: datetime = shared("the deadline")


@contract("exchange.agreement-escalated", version=1, consumers={COORDINATION}, subject="agreement_id")
class AgreementEscalated(Event):
    """A provider let a sharing request pass its deadline: the coordination office takes it up."""

    agreement_id: str = shared("the agreement")
    contract_id: str = shared("the contract")
    consumer: str = shared("the department waiting")
    provider: str = shared("the department late to answer")
    due_at: datetime = shared("the deadline passed")
    working_days_late: float = shared("working days since the deadline")
