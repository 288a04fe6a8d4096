"""Contracts published by the exchange itself (the gateway)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from contracts.base import Event, contract, shared
from contracts.departments import COORDINATION, SERVICE_DEPARTMENTS
from contracts.refusal_grounds import SharingGround


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


# --- the agreement lifecycle (counter-offers, suspension, renewal, escalated refusals) --------------------------

class AgreementStatus(StrEnum):
    """Where an agreement stands (``gateway.lifecycle`` says which steps lead from one to another)."""

    PENDING = "pending"  # the provider decides
    COUNTERED = "countered"  # the provider offered other terms: the consumer accepts or declines
    APPROVED = "approved"  # in force within its window
    SUSPENDED = "suspended"  # the provider stopped deliveries for a while
    REJECTED = "rejected"  # refused by the provider (the consumer may escalate the refusal)
    ESCALATED = "escalated"  # a refusal before the coordination office
    DECLINED = "declined"  # the consumer declined a counter-offer
    UPHELD = "upheld"  # the coordination office upheld the refusal
    REVOKED = "revoked"  # ended by a party
    ENDED = "ended"  # its case ended (a case-scoped agreement)


class AgreementChange(StrEnum):
    """What happened to an agreement."""

    REQUESTED = "requested"  # a new request: the provider decides
    RENEWAL_REQUESTED = "renewal_requested"  # a request for the period after an agreement (``renews``)
    APPROVED = "approved"
    REJECTED = "rejected"
    COUNTERED = "countered"  # the provider offers fewer fields or a shorter period: the consumer answers
    ACCEPTED = "accepted"  # the consumer accepted the offer: in force on its terms
    DECLINED = "declined"  # the consumer declined the offer: closed
    SUSPENDED = "suspended"  # nothing conditional is delivered until it is resumed
    RESUMED = "resumed"
    REVOKED = "revoked"
    ESCALATED = "escalated"  # the consumer took a refusal to the coordination office
    PROCEEDED = "proceeded"  # the office put the agreement in force (with ``conditions``)
    UPHELD = "upheld"  # the office upheld the refusal
    ENDED = "ended"  # the case a case-scoped agreement was for ended
    EXPIRING = "expiring"  # ends soon (``valid_until``): the consumer may ask to renew it


@contract("exchange.agreement-changed", version=1, consumers=SERVICE_DEPARTMENTS, recipient="department",
          subject="agreement_id")
class AgreementChanged(Event):
    """A step in an agreement's life, told to each party (and the expiry notice ahead of its end). ``awaiting``
    and ``due_at`` say whose move it is now, and by when."""

    agreement_id: str = shared("the agreement")
    department: str = shared("the party told")
    contract_id: str = shared("the contract")
    consumer: str = shared("the consuming department")
    provider: str = shared("the providing department")
    change: AgreementChange = shared("what happened")
    status: AgreementStatus = shared("where the agreement stands now")
    by: str = shared("who made the step: a party, the coordination office, or the exchange (clock and cases)")
    fields: list[str] = shared("the fields of its terms (those offered, for a counter-offer)")
    purpose: str = shared("what the data is for: it travels with every delivery under the agreement")
    legal_basis: str = shared("the law or regulation that allows it")
    valid_from: datetime = shared("start of the sharing period")
    valid_until: datetime = shared("end of the sharing period (a working-day window: counted from approval)")
    case_id: str | None = shared("the one case the agreement is for (case-scoped), or none", default=None)
    working_days: int | None = shared("a window of this many working days from approval, or none", default=None)
    renews: str | None = shared("the agreement this one renews, or none", default=None)
    reasons: str = shared("why (required for refusals, counter-offers, suspensions, escalations)", default="")
    ground: SharingGround | None = shared("the typed ground the provider gave for refusing or counter-offering (it "
                                          "stays with the agreement's later steps), or none", default=None)
    conditions: list[str] = shared("conditions the coordination office attached", default_factory=list)
    awaiting: str | None = shared("the department whose move it is now, or none", default=None)
    due_at: datetime | None = shared("its deadline, or none", default=None)


@contract("exchange.agreement-step-reminder", version=1, consumers=SERVICE_DEPARTMENTS, recipient="department",
          subject="agreement_id")
class AgreementStepReminder(Event):
    """Half of a party's time has passed on an agreement's pending step other than the provider's decision (that
    one is ``exchange.agreement-reminder``): the consumer's answer to a counter-offer, the office's decision."""

    agreement_id: str = shared("the agreement")
    department: str = shared("the department reminded")
    contract_id: str = shared("the contract")
    consumer: str = shared("the consuming department")
    provider: str = shared("the providing department")
    status: AgreementStatus = shared("the step waited on")
    due_at: datetime = shared("the deadline")


@contract("exchange.agreement-step-escalated", version=1, consumers={COORDINATION}, subject="agreement_id")
class AgreementStepEscalated(Event):
    """A consumer let a counter-offer's deadline pass without answering: the coordination office takes it up (a
    provider late to decide is ``exchange.agreement-escalated``)."""

    agreement_id: str = shared("the agreement")
    contract_id: str = shared("the contract")
    consumer: str = shared("the consuming department")
    provider: str = shared("the providing department")
    late: str = shared("the department late to answer")
    status: AgreementStatus = shared("the step waited on")
    due_at: datetime = shared("the deadline passed")
    working_days_late: float = shared("working days since the deadline")


@contract("exchange.refusal-escalated", version=1, consumers={COORDINATION}, subject="agreement_id")
class RefusalEscalated(Event):
    """A consumer escalated a provider's refusal to the coordination office, which decides by ``due_at``: proceed
    (``POST /v1/agreements/{id}/proceed``, with conditions) or uphold the refusal (``…/uphold``)."""

    agreement_id: str = shared("the agreement")
    contract_id: str = shared("the contract")
    consumer: str = shared("the department that asked and escalated")
    provider: str = shared("the department that refused")
    fields: list[str] = shared("the fields asked for")
    purpose: str = shared("what the data is for")
    legal_basis: str = shared("the law or regulation the consumer relies on")
    case_id: str | None = shared("the one case asked about (case-scoped), or none", default=None)
    valid_from: datetime = shared("start of the period asked for")
    valid_until: datetime = shared("end of the period asked for")
    refusal: str = shared("the provider's reasons for refusing")
    ground: SharingGround | None = shared("the typed ground of the provider's refusal, or none if it named none",
                                          default=None)
    reasons: str = shared("the consumer's reasons for escalating")
    due_at: datetime = shared("the office's deadline to decide")
