"""What the gateway does with one ingress record, as a pure function: the checks in order, then the
records to write (shared, deliver, audit) or the rejection (dead letter, notice, audit). No I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import orjson

from contracts.departments import EXCHANGE
from contracts.envelope import (
    EXCHANGE_HEADER_PREFIX,
    SENDER_HEADER,
    Envelope,
    EnvelopeError,
    RawHeaders,
    attribute,
    decode,
    encode,
    forwarded,
    parse_payload,
)
from contracts.exchange import EventRejected
from contracts.sharing import projected
from contracts.topics import Topics
from gateway.audit.entry import AuditAction, AuditEntry, Ingress
from gateway.registry import ContractVersion, Registry
from gateway.rejections import Reason, Rejection

REASON_HEADER = "concord_reason"
DETAIL_HEADER = "concord_detail"
INGRESS_HEADER = "concord_ingress"
INGRESS_AT_HEADER = "concord_ingress_at"  # on what is delivered: when it entered the exchange (epoch ms)
# On a delivery that carries conditional fields under agreements: their ids (comma-separated), and their purposes
# (a JSON object, agreement id -> purpose): the purpose travels with the data.
AGREEMENT_HEADER = "concord_agreement"
PURPOSE_HEADER = "concord_purpose"


class IngressRecord(NamedTuple):  # named tuples here: made for every record routed, at a fifth of a dataclass's cost
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: RawHeaders  # as read: a value may be null
    sender: str  # from the ingress topic, never from the record
    timestamp: int | None = None  # when it entered (the ingress record's time, ms): for measuring transit

    @property
    def position(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


class Outgoing(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes
    headers: RawHeaders


@dataclass
class Routed:
    records: list[Outgoing] = field(default_factory=list)
    rejection: Rejection | None = None
    event_id: str | None = None  # of an event routed (not of a rejected one)
    contract: str | None = None  # of an event routed
    consumers: tuple[str, ...] = ()  # the departments an event routed is delivered to
    resend_of: str | None = None  # of a resend (not routed again): where its first copy entered


@dataclass(frozen=True)
class Granted:
    """One agreement's part in what a consumer sees: the conditional fields it grants, and what for."""

    agreement: str
    purpose: str
    fields: frozenset[str]


@dataclass(frozen=True)
class Grant:
    """The conditional fields of a contract a consumer may see in one record, and the agreements granting them."""

    fields: frozenset[str] = frozenset()
    agreements: tuple[Granted, ...] = ()


NOTHING = Grant()


class SharingPolicy(Protocol):
    def grant(self, consumer: str, contract: ContractVersion, subject: str, at: datetime) -> Grant:
        """What a consumer's agreements in force grant it of a record of the contract about ``subject`` (a case
        id: a case-scoped agreement grants only its case's records)."""
        ...

    def consumers(self, contract: ContractVersion, at: datetime, subject: str | None = None) -> frozenset[str]:
        """Departments with an agreement in force for the contract (for that subject's records, if given),
        beyond its declared consumers."""
        ...


class NoAgreements:
    def grant(self, consumer: str, contract: ContractVersion, subject: str, at: datetime) -> Grant:
        return NOTHING

    def consumers(self, contract: ContractVersion, at: datetime, subject: str | None = None) -> frozenset[str]:
        return frozenset()


def _dumps(data: Any) -> bytes:
    return orjson.dumps(data)


def _check(
    record: IngressRecord, registry: Registry, max_payload_bytes: int
) -> tuple[Envelope, ContractVersion, dict[str, Any]]:
    """The gateway's checks, in order. Returns the envelope, contract and payload, or raises Rejection."""
    if len(record.value) > max_payload_bytes:
        raise Rejection(Reason.PAYLOAD_TOO_LARGE, f"{len(record.value)} bytes > limit {max_payload_bytes}")
    try:
        envelope = decode(record.headers, record.key)
    except EnvelopeError as exc:
        raise Rejection(Reason.MALFORMED_ENVELOPE, str(exc)) from exc
    contract_id, version = envelope.contract
    contract = registry.get(contract_id, version)
    if contract is None:
        raise Rejection(Reason.UNKNOWN_CONTRACT, f"no contract {contract_id} version {version}")
    if record.sender not in contract.publishers:
        raise Rejection(
            Reason.PRODUCER_NOT_AUTHORISED,
            f"{record.sender} may not publish {contract_id}; publishers: {sorted(contract.publishers)}",
        )
    try:
        payload = parse_payload(record.value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejection(Reason.MALFORMED_PAYLOAD, f"body is not UTF-8 JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise Rejection(Reason.SCHEMA_VIOLATION, "(root): must be a JSON object")
    try:
        violations = contract.violations(payload)
    except RecursionError as exc:
        raise Rejection(Reason.SCHEMA_VIOLATION, "(root): nested too deeply to check") from exc
    if violations:
        raise Rejection(Reason.SCHEMA_VIOLATION, "; ".join(violations))
    if str(payload[contract.subject_field]) != envelope.subject:
        raise Rejection(Reason.SCHEMA_VIOLATION, f"ce_subject differs from {contract.subject_field}")
    named = addressees(contract, payload)
    if contract.recipient_field and (not named or not set(named) <= contract.consumers):
        raise Rejection(Reason.SCHEMA_VIOLATION, f"{contract.recipient_field} must name consumers of {contract_id}")
    return envelope, contract, payload


def recipients(
    contract: ContractVersion, payload: dict[str, Any], sender: str, policy: SharingPolicy, now: datetime
) -> list[str]:
    """The addressees of an addressed contract; otherwise every declared consumer and every department with
    an agreement in force, except the sender."""
    if contract.recipient_field:
        return addressees(contract, payload)
    subject = str(payload[contract.subject_field])
    return sorted((contract.consumers | policy.consumers(contract, now, subject)) - {sender})


def addressees(contract: ContractVersion, payload: dict[str, Any]) -> list[str]:
    """Whom an addressed event names: one department, or a list of them (only text counts as a name)."""
    named = payload.get(contract.recipient_field) if contract.recipient_field else []
    return sorted({n for n in (named if isinstance(named, list) else [named]) if isinstance(n, str)})


def visible_fields(contract: ContractVersion, grant: Grant) -> frozenset[str]:
    """What a consumer sees in clear, by path: unconditional fields and members, and the conditional ones its
    agreements in force grant. A conditional one it may not see is masked where the contract says how, else cut."""
    return contract.unconditional | (grant.fields & contract.conditional)


def purposes(grant: Grant, payload: dict[str, Any]) -> dict[str, str]:
    """The agreements under which a delivery of the payload carries conditional fields (a granted path counts when
    the payload has its top-level member), and their purposes."""
    return {g.agreement: g.purpose for g in grant.agreements
            if {path.partition("/")[0] for path in g.fields} & payload.keys()}


def purpose_headers(granted: dict[str, str]) -> list[tuple[str, bytes]]:
    """The headers that carry the agreements and their purposes with a delivery (none when nothing was granted)."""
    if not granted:
        return []
    return [(AGREEMENT_HEADER, ",".join(granted).encode()), (PURPOSE_HEADER, _dumps(granted))]


def route(
    record: IngressRecord,
    registry: Registry,
    policy: SharingPolicy,
    now: datetime,
    max_payload_bytes: int,
    topics: Topics,
    mask_key: bytes | None = None,
) -> Routed:
    """The records one ingress record becomes. ``mask_key`` is the gateway's key for keyed-hash masks (without
    one a keyed hash is withheld whole)."""
    try:
        envelope, contract, payload = _check(record, registry, max_payload_bytes)
    except Rejection as rejection:
        return reject(record, rejection, now, topics)

    headers = [*forwarded(record.headers, envelope), (SENDER_HEADER, record.sender.encode())]
    if record.timestamp is not None:
        headers.append((INGRESS_AT_HEADER, str(record.timestamp).encode()))
    views: dict[frozenset[str], tuple[bytes, list[str]]] = {}  # the same fields seen: the same bytes, and masks

    def view(fields: frozenset[str]) -> tuple[bytes, list[str]]:
        if fields not in views:
            masks: set[str] = set()
            views[fields] = project(payload, contract, fields, record.value, mask_key, masks), sorted(masks)
        return views[fields]

    consumers = recipients(contract, payload, record.sender, policy, now)
    routed = Routed(event_id=envelope.id, contract=contract.id, consumers=tuple(consumers))
    routed.records.append(Outgoing(topics.shared(contract.id), record.key, view(contract.shareable)[0], headers))
    delivered: dict[str, list[str]] = {}
    masked: dict[str, list[str]] = {}
    digests: dict[str, str] = {}
    granted: dict[str, dict[str, str]] = {}
    for consumer in consumers:
        grant = policy.grant(consumer, contract, envelope.subject, now)
        visible = visible_fields(contract, grant)
        value, masks = view(visible)
        if masks:
            masked[consumer] = masks
        if under := purposes(grant, payload):
            granted[consumer] = under
        routed.records.append(Outgoing(topics.deliver(consumer), record.key, value,
                                       [*headers, *purpose_headers(under)] if under else headers))
        delivered[consumer] = sorted(visible & payload.keys())
        digests[consumer] = hashlib.sha256(value).hexdigest()
    routed.records.append(_audit(record, now, topics, action=AuditAction.ROUTED, event_id=envelope.id,
                                 case_id=envelope.subject, contract=contract.id, version=contract.version,
                                 delivered=delivered, masked=masked or None, delivered_sha256=digests,
                                 purposes=granted or None))
    return routed


def project(payload: dict[str, Any], contract: ContractVersion, visible: frozenset[str], original: bytes,
            mask_key: bytes | None, masked: set[str] | None = None) -> bytes:
    """The payload as a consumer that sees the ``visible`` paths in clear receives it: the members it may not see,
    nested ones too, masked where the contract declares a mask and cut otherwise (the original bytes when nothing
    changes). The paths it masked are added to ``masked``, when given."""
    cut = contract.cut_alone(visible)
    if cut is not None:  # the common case, without going through every member
        return original if cut.isdisjoint(payload) else _dumps({k: v for k, v in payload.items() if k not in cut})
    shown = projected(payload, contract.members, visible, mask_key, masked)
    return original if shown is None else _dumps(shown)


def reject(record: IngressRecord, rejection: Rejection, now: datetime, topics: Topics) -> Routed:
    """Dead-letter the original bytes with the reason, tell the sender, and audit it. Whatever the record
    holds: what it names is taken only where it follows the envelope's rules."""
    event_id = attribute(record.headers, "ce_id") or ""
    subject = attribute(record.headers, "ce_subject") or record.position
    contract = attribute(record.headers, "ce_type") or ""
    deadletter = Outgoing(
        topics.deadletter(record.sender), record.key, record.value,
        [*((k, v) for k, v in record.headers if not k.startswith(EXCHANGE_HEADER_PREFIX)),
         (REASON_HEADER, rejection.reason.value.encode()), (DETAIL_HEADER, rejection.detail.encode()),
         (SENDER_HEADER, record.sender.encode()), (INGRESS_HEADER, record.position.encode())],
    )
    notice_event = EventRejected(
        event_id=event_id, subject=subject, sender=record.sender, rejected_type=contract,
        reason=rejection.reason.value, detail=rejection.detail, ingress_topic=record.topic,
        ingress_partition=record.partition, ingress_offset=record.offset,
        deadletter_topic=topics.deadletter(record.sender),
    )
    encoded = encode(notice_event, source=EXCHANGE, time=now, id=f"rejected:{record.position}")
    notice = Outgoing(topics.deliver(record.sender), encoded.key, encoded.value,
                      [*encoded.headers, (SENDER_HEADER, EXCHANGE.encode())])
    audit = _audit(record, now, topics, action=AuditAction.REJECTED, event_id=event_id, case_id=subject,
                   contract=contract, rejection=rejection)
    return Routed(records=[deadletter, notice, audit], rejection=rejection)


def resent(record: IngressRecord, first: str, now: datetime, topics: Topics) -> Routed:
    """A copy of an event its sender already sent with the same content (its outbox sending again after a crash,
    say): not routed again, nothing dead-lettered, no notice; only its audit entry, which names the first copy."""
    event_id = attribute(record.headers, "ce_id") or ""
    subject = attribute(record.headers, "ce_subject") or record.position
    topic, partition, offset = first.rsplit("/", 2)
    entry = AuditEntry(action=AuditAction.RESENT, at=now, event_id=event_id, case_id=subject, sender=record.sender,
                       contract=attribute(record.headers, "ce_type") or "",
                       ingress=Ingress(record.topic, record.partition, record.offset),
                       first=Ingress(topic, int(partition), int(offset)))
    return Routed([Outgoing(topics.audit, subject.encode(), entry.to_json(), [])], event_id=event_id,
                  resend_of=first)


def provisioned(routed: Routed, record: IngressRecord, existing: Callable[[str], bool], now: datetime,
                topics: Topics) -> Routed:
    """The routing of a record given which topics exist. An event whose outputs include a topic the operator
    has not made yet (a new contract's shared topic) is refused as not provisioned, so that nothing waits for
    it; a refusal whose own outputs are missing keeps its audit entry, which the audit topic always takes."""
    missing = sorted({out.topic for out in routed.records if not existing(out.topic)})
    if not missing:
        return routed
    if routed.rejection is None:
        return provisioned(reject(record, Rejection(Reason.NOT_PROVISIONED, f"no topic {', '.join(missing)} yet"),
                                  now, topics), record, existing, now, topics)
    return Routed([out for out in routed.records if existing(out.topic) or out.topic == topics.audit],
                  routed.rejection)


def _audit(
    record: IngressRecord,
    now: datetime,
    topics: Topics,
    *,
    action: AuditAction,
    event_id: str,
    case_id: str,
    contract: str,
    version: int | None = None,
    delivered: dict[str, list[str]] | None = None,
    masked: dict[str, list[str]] | None = None,
    delivered_sha256: dict[str, str] | None = None,
    purposes: dict[str, dict[str, str]] | None = None,
    rejection: Rejection | None = None,
) -> Outgoing:
    entry = AuditEntry(
        action=action, at=now, event_id=event_id, case_id=case_id, sender=record.sender, contract=contract,
        version=version, ingress=Ingress(record.topic, record.partition, record.offset), delivered=delivered,
        masked=masked, delivered_sha256=delivered_sha256, purposes=purposes,
        reason=rejection.reason.value if rejection else None, detail=rejection.detail if rejection else None,
    )
    return Outgoing(topics.audit, case_id.encode(), entry.to_json(), [])
