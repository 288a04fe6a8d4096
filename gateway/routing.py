"""What the gateway does with one ingress record, as a pure function: the checks in order, then the
records to write (shared, deliver, audit) or the rejection (dead letter, notice, audit). No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson

from contracts.departments import EXCHANGE
from contracts.envelope import SENDER_HEADER, Envelope, EnvelopeError, Headers, decode, encode, parse_payload
from contracts.exchange import EventRejected
from contracts.topics import Topics
from gateway.registry import ContractVersion, Registry
from gateway.rejections import Reason, Rejection

REASON_HEADER = "concord_reason"
DETAIL_HEADER = "concord_detail"
INGRESS_HEADER = "concord_ingress"


@dataclass(frozen=True)
class IngressRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers
    sender: str  # from the ingress topic, never from the record


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers


@dataclass
class Routed:
    records: list[Outgoing] = field(default_factory=list)
    rejection: Rejection | None = None
    event_id: str | None = None  # of an event routed (not of a rejected one)


class SharingPolicy(Protocol):
    def conditional_fields(self, consumer: str, contract: ContractVersion, at: datetime) -> frozenset[str]:
        """The conditional fields of a contract a consumer may see at this moment, under its agreements."""
        ...

    def consumers(self, contract: ContractVersion, at: datetime) -> frozenset[str]:
        """Departments with an agreement in force for the contract, beyond its declared consumers."""
        ...


class NoAgreements:
    def conditional_fields(self, consumer: str, contract: ContractVersion, at: datetime) -> frozenset[str]:
        return frozenset()

    def consumers(self, contract: ContractVersion, at: datetime) -> frozenset[str]:
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
    violations = contract.violations(payload)
    if violations:
        raise Rejection(Reason.SCHEMA_VIOLATION, "; ".join(violations))
    if str(payload[contract.subject_field]) != envelope.subject:
        raise Rejection(Reason.SCHEMA_VIOLATION, f"ce_subject differs from {contract.subject_field}")
    if contract.recipient_field and not set(addressees(contract, payload)) <= contract.consumers:
        raise Rejection(Reason.SCHEMA_VIOLATION, f"{contract.recipient_field} names a department that is not a "
                        f"consumer of {contract_id}")
    return envelope, contract, payload


def recipients(
    contract: ContractVersion, payload: dict[str, Any], sender: str, policy: SharingPolicy, now: datetime
) -> list[str]:
    """The addressees of an addressed contract; otherwise every declared consumer and every department with
    an agreement in force, except the sender."""
    if contract.recipient_field:
        return addressees(contract, payload)
    return sorted((contract.consumers | policy.consumers(contract, now)) - {sender})


def addressees(contract: ContractVersion, payload: dict[str, Any]) -> list[str]:
    """Whom an addressed event names: one department, or a list of them."""
    named = payload[contract.recipient_field] if contract.recipient_field else []
    return sorted(set(named)) if isinstance(named, list) else [named]


def visible_fields(contract: ContractVersion, consumer: str, policy: SharingPolicy, now: datetime) -> frozenset[str]:
    """What a consumer sees: unconditional fields, and the conditional ones its agreements in force grant."""
    return contract.unconditional | policy.conditional_fields(consumer, contract, now)


def route(
    record: IngressRecord,
    registry: Registry,
    policy: SharingPolicy,
    now: datetime,
    max_payload_bytes: int,
    topics: Topics,
) -> Routed:
    try:
        envelope, contract, payload = _check(record, registry, max_payload_bytes)
    except Rejection as rejection:
        return reject(record, rejection, now, topics)

    headers = [*record.headers, (SENDER_HEADER, record.sender.encode())]
    views: dict[frozenset[str], bytes] = {}  # consumers who see the same fields get the same bytes

    def view(fields: frozenset[str]) -> bytes:
        present = frozenset(fields & payload.keys())
        if present not in views:
            views[present] = project(payload, present, record.value)
        return views[present]

    routed = Routed(event_id=envelope.id)
    routed.records.append(Outgoing(topics.shared(contract.id), record.key, view(contract.shareable), headers))
    delivered: dict[str, list[str]] = {}
    for consumer in recipients(contract, payload, record.sender, policy, now):
        visible = visible_fields(contract, consumer, policy, now)
        routed.records.append(Outgoing(topics.deliver(consumer), record.key, view(visible), headers))
        delivered[consumer] = sorted(visible & payload.keys())
    routed.records.append(_audit(record, now, topics, action="routed", envelope=envelope, contract=contract,
                                 delivered=delivered))
    return routed


def project(payload: dict[str, Any], visible: frozenset[str], original: bytes) -> bytes:
    """The payload cut to the visible fields (the original bytes when nothing is cut)."""
    if payload.keys() <= visible:
        return original
    return _dumps({k: v for k, v in payload.items() if k in visible})


def reject(record: IngressRecord, rejection: Rejection, now: datetime, topics: Topics) -> Routed:
    """Dead-letter the original bytes with the reason, tell the sender, and audit it."""
    headers = dict(record.headers)

    def header(name: str) -> str:
        value = headers.get(name, b"")
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""

    ingress = f"{record.topic}/{record.partition}/{record.offset}"
    deadletter = Outgoing(
        topics.deadletter(record.sender), record.key, record.value,
        [*record.headers, (REASON_HEADER, rejection.reason.value.encode()),
         (DETAIL_HEADER, rejection.detail.encode()), (SENDER_HEADER, record.sender.encode()),
         (INGRESS_HEADER, ingress.encode())],
    )
    notice_event = EventRejected(
        event_id=header("ce_id"), subject=header("ce_subject") or ingress, sender=record.sender,
        rejected_type=header("ce_type"),
        reason=rejection.reason.value, detail=rejection.detail, ingress_topic=record.topic,
        ingress_partition=record.partition, ingress_offset=record.offset,
        deadletter_topic=topics.deadletter(record.sender),
    )
    encoded = encode(notice_event, source=EXCHANGE, time=now, id=f"rejected:{ingress}")
    notice = Outgoing(topics.deliver(record.sender), encoded.key, encoded.value,
                      [*encoded.headers, (SENDER_HEADER, EXCHANGE.encode())])
    return Routed(records=[deadletter, notice, _audit(record, now, topics, action="rejected", rejection=rejection)],
                  rejection=rejection)


def _audit(
    record: IngressRecord,
    now: datetime,
    topics: Topics,
    *,
    action: str,
    envelope: Envelope | None = None,
    contract: ContractVersion | None = None,
    delivered: dict[str, list[str]] | None = None,
    rejection: Rejection | None = None,
) -> Outgoing:
    headers = dict(record.headers)
    event_id = envelope.id if envelope else headers.get("ce_id", b"").decode("utf-8", "replace")
    case_id = envelope.subject if envelope else headers.get("ce_subject", b"").decode("utf-8", "replace")
    entry: dict[str, Any] = {
        "action": action,
        "at": now.isoformat(),
        "event_id": event_id,
        "case_id": case_id,
        "sender": record.sender,
        "contract": contract.id if contract else headers.get("ce_type", b"").decode("utf-8", "replace"),
        "version": contract.version if contract else None,
        "ingress": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
    }
    if delivered is not None:
        entry["delivered"] = delivered
    if rejection is not None:
        entry["reason"] = rejection.reason.value
        entry["detail"] = rejection.detail
    return Outgoing(topics.audit, case_id.encode() or None, _dumps(entry), [])
