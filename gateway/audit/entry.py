"""What an audit entry says: one typed record per thing the exchange did (an event routed or refused, a notice
sent, a contract registered, an agreement requested or decided), written to the audit topic as JSON and kept in
the chain as written."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

import orjson


class AuditAction(StrEnum):
    ROUTED = "routed"
    REJECTED = "rejected"
    RESENT = "resent"  # a copy of an event its sender already sent with the same content: not routed again
    NOTIFIED = "notified"
    CONTRACT_REGISTERED = "contract_registered"
    CONTRACT_COMPATIBILITY_SET = "contract_compatibility_set"
    AGREEMENT_REQUESTED = "agreement_requested"
    AGREEMENT_APPROVED = "agreement_approved"
    AGREEMENT_REJECTED = "agreement_rejected"
    AGREEMENT_REVOKED = "agreement_revoked"
    AGREEMENT_COUNTERED = "agreement_countered"
    AGREEMENT_ACCEPTED = "agreement_accepted"
    AGREEMENT_DECLINED = "agreement_declined"
    AGREEMENT_SUSPENDED = "agreement_suspended"
    AGREEMENT_RESUMED = "agreement_resumed"
    AGREEMENT_RENEWAL_REQUESTED = "agreement_renewal_requested"
    AGREEMENT_ESCALATED = "agreement_escalated"  # a refusal taken to the coordination office
    AGREEMENT_PROCEEDED = "agreement_proceeded"
    AGREEMENT_UPHELD = "agreement_upheld"
    AGREEMENT_ENDED = "agreement_ended"
    AGREEMENT_BACKFILLED = "agreement_backfilled"
    UNREADABLE = "unreadable"  # a record of the audit topic that is not a storable entry (the keeper's own)


class Ingress(NamedTuple):
    topic: str
    partition: int
    offset: int


class AuditEntry(NamedTuple):
    """Immutable; a named tuple rather than a frozen dataclass, whose construction costs five times as much (the
    router makes one for every event it takes). Made with keywords."""

    action: AuditAction
    at: datetime
    event_id: str | None = None
    case_id: str | None = None
    sender: str | None = None
    contract: str | None = None
    version: int | None = None
    ingress: Ingress | None = None
    delivered: dict[str, list[str]] | None = None  # consumer -> the fields it received in clear
    masked: dict[str, list[str]] | None = None  # consumer -> the paths it received masked (only those with a mask)
    delivered_sha256: dict[str, str] | None = None  # consumer -> SHA-256 (hex) of the bytes written to its topic
    purposes: dict[str, dict[str, str]] | None = None  # consumer -> {agreement id: purpose} its conditional fields
    # were delivered under
    reason: str | None = None
    detail: str | None = None
    agreement: str | None = None
    fields: list[str] | None = None
    parties: list[str] | None = None  # the departments an agreement entry concerns
    raw: str | None = None  # of an unreadable record: what it held (when it can be kept)
    size: int | None = None
    sha256: str | None = None
    first: Ingress | None = None  # of a resend: where the first copy entered

    def as_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready values, without the fields it does not use."""
        out: dict[str, Any] = {name: value for name, value in zip(self._fields, self, strict=True) if value is not None}
        out["at"] = self.at.isoformat()  # the one time; in place, so the members keep their order
        for name, ingress in (("ingress", self.ingress), ("first", self.first)):
            if ingress is not None:
                out[name] = {"topic": ingress.topic, "partition": ingress.partition, "offset": ingress.offset}
        return out

    def to_json(self) -> bytes:
        return orjson.dumps(self.as_dict())

