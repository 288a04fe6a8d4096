"""Why the gateway refuses an event. Each code reaches the dead-letter topic (header ``concord_reason``),
the sender's rejection notice (``exchange.event-rejected``) and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    MALFORMED_ENVELOPE = "malformed_envelope"
    """Not a CloudEvent 1.0 in Kafka binary mode with ce_id, ce_source, ce_type, ce_subject, ce_time,
    ce_dataschema naming a contract version, content-type application/json, and the case id as key."""

    MALFORMED_PAYLOAD = "malformed_payload"
    """The body is not UTF-8 JSON."""

    UNKNOWN_CONTRACT = "unknown_contract"
    """ce_type and ce_dataschema name no registered contract version."""

    PRODUCER_NOT_AUTHORISED = "producer_not_authorised"
    """The department the event came from neither owns the contract nor is delegated to publish it."""

    SCHEMA_VIOLATION = "schema_violation"
    """The payload does not match the JSON Schema of the contract version."""

    PAYLOAD_TOO_LARGE = "payload_too_large"
    """The body is larger than the configured limit (``CONCORD_MAX_PAYLOAD_BYTES``, 1 MiB by default)."""

    DUPLICATE_ID = "duplicate_id"
    """The sender already sent an event with this ce_id (from another ingress position): an event id is
    unique per sender, so a second one is refused rather than applied twice."""

    NOT_PROVISIONED = "not_provisioned"
    """A topic the event must reach does not exist yet (a newly registered contract's shared topic): the
    operator provisions topics with ``concord topics ensure``; the sender may send the event again then."""


MAX_DETAIL = 1000  # characters: a detail always fits beside the original record, in every output


@dataclass(frozen=True)
class Rejection(Exception):
    """Why a record is refused. The detail says what is wrong by field and rule, never with a value from the
    payload (which may be conditional or not shared); it is cut to ``MAX_DETAIL`` printable characters."""

    reason: Reason
    detail: str

    def __post_init__(self) -> None:
        printable = "".join(c if c.isprintable() else "?" for c in self.detail)
        object.__setattr__(self, "detail", printable if len(printable) <= MAX_DETAIL
                           else f"{printable[:MAX_DETAIL - 1]}…")

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"
