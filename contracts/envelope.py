"""CloudEvents 1.0 in Kafka's binary binding: attributes in ``ce_`` headers, the payload as UTF-8 JSON,
the case id as key so that a case's events stay in order. W3C ``traceparent`` travels as a header."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from contracts.base import Event, dataschema_uri, parse_dataschema

JSON = "application/json"
FORMAT = JSONFormat()
Headers = list[tuple[str, bytes]]
TRACEPARENT = "traceparent"  # W3C Trace Context, as OpenTelemetry's Kafka instrumentation carries it
SENDER_HEADER = "concord_sender"  # set by the gateway on what it delivers: the department the event came from
REQUIRED_HEADERS = ("ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "ce_dataschema")
STANDARD_HEADERS = frozenset({*REQUIRED_HEADERS, "ce_specversion", "ce_datacontenttype"})
EXTENSION_NAME = re.compile(r"^[a-z0-9]+$")


@dataclass(frozen=True)
class KafkaRecord:
    key: bytes | None
    value: bytes
    headers: Headers


@dataclass(frozen=True)
class Envelope:
    id: str
    source: str
    type: str
    subject: str
    time: datetime
    dataschema: str
    contract: tuple[str, int]  # the contract id and version ce_dataschema names
    traceparent: str | None = None


class EnvelopeError(ValueError):
    """The record is not a CloudEvent of the exchange: a missing or wrong attribute, or a non-JSON body."""


def new_traceparent(parent: str | None = None) -> str:
    """A W3C traceparent: a new trace, or a new span in the parent's trace."""
    parts = parent.split("-") if parent else []
    trace_id = parts[1] if len(parts) == 4 and len(parts[1]) == 32 else os.urandom(16).hex()
    return f"00-{trace_id}-{os.urandom(8).hex()}-01"


def encode(
    event: Event,
    *,
    source: str,
    id: str | None = None,
    time: datetime | None = None,
    traceparent: str | None = None,
) -> KafkaRecord:
    """An event of a declared contract as a Kafka record in binary mode."""
    contract = type(event).CONTRACT
    subject = str(getattr(event, contract.subject_field))
    return encode_payload(
        event.model_dump_json().encode(), contract_id=contract.id, version=contract.version,
        subject=subject, source=source, id=id, time=time, traceparent=traceparent,
    )


def encode_payload(
    payload: bytes,
    *,
    contract_id: str,
    version: int,
    subject: str,
    source: str,
    id: str | None = None,
    time: datetime | None = None,
    traceparent: str | None = None,
) -> KafkaRecord:
    attributes: dict[str, Any] = {
        "id": id or str(uuid.uuid4()),
        "source": source,
        "type": contract_id,
        "subject": subject,
        "time": time or datetime.now(UTC),
        "dataschema": dataschema_uri(contract_id, version),
        "datacontenttype": JSON,
    }
    message = ce_kafka.to_binary(CloudEvent(attributes, payload), FORMAT, key_mapper=lambda _: subject)
    key = message.key.encode() if isinstance(message.key, str) else message.key
    headers = [*message.headers.items(), (TRACEPARENT, (traceparent or new_traceparent()).encode())]
    return KafkaRecord(key=key, value=message.value, headers=headers)


def decode(headers: Headers | tuple[tuple[str, bytes], ...], key: bytes | None) -> Envelope:
    """The envelope of a record, from its headers and key; EnvelopeError if it is not one of ours.

    The attribute rules of CloudEvents 1.0 are checked here directly rather than through the SDK's event
    model: the router decodes every record, and the model costs more than the rest of the routing."""
    header_map = dict(headers)
    if header_map.get("ce_specversion") != b"1.0":
        raise EnvelopeError("not a CloudEvents 1.0 record in binary mode (ce_specversion must be 1.0)")
    missing = [name for name in REQUIRED_HEADERS if not header_map.get(name)]
    if missing:
        raise EnvelopeError(f"missing {', '.join(missing)}")
    content_type = header_map.get("content-type", b"").decode("utf-8", "replace")
    if content_type.split(";")[0].strip() != JSON:
        raise EnvelopeError(f"content-type must be {JSON}, got {content_type!r}")
    try:
        attribute = {name[3:]: header_map[name].decode("utf-8") for name in REQUIRED_HEADERS}
        time = datetime.fromisoformat(attribute["time"])
    except (UnicodeDecodeError, ValueError) as exc:
        raise EnvelopeError(f"invalid CloudEvent attributes: {exc}") from exc
    if time.tzinfo is None:
        raise EnvelopeError("ce_time needs a time zone offset (RFC 3339)")
    extensions = [name for name in header_map if name.startswith("ce_") and name not in STANDARD_HEADERS
                  and not EXTENSION_NAME.match(name[3:])]
    if extensions:
        raise EnvelopeError(f"attribute names must be lower-case letters and digits: {extensions}")
    contract = parse_dataschema(attribute["dataschema"])
    if contract is None:
        raise EnvelopeError(f"ce_dataschema {attribute['dataschema']!r} names no contract version")
    if contract[0] != attribute["type"]:
        raise EnvelopeError(f"ce_type {attribute['type']!r} differs from the contract of ce_dataschema")
    if key is not None and key.decode("utf-8", "replace") != attribute["subject"]:
        raise EnvelopeError("the record key must be the case id given in ce_subject")
    traceparent = header_map.get(TRACEPARENT)
    return Envelope(
        id=attribute["id"], source=attribute["source"], type=attribute["type"], subject=attribute["subject"],
        time=time, dataschema=attribute["dataschema"], contract=contract,
        traceparent=traceparent.decode("ascii", "replace") if traceparent else None,
    )


def parse_payload(value: bytes) -> Any:
    """The payload as JSON; ValueError when it is not UTF-8 JSON."""
    return orjson.loads(value)
