"""CloudEvents 1.0 in Kafka's binary binding: attributes in ``ce_`` headers, the payload as UTF-8 JSON,
the case id as key so that a case's events stay in order. W3C ``traceparent`` travels as a header.

What the exchange accepts, checked here before anything else looks at a record (``LIMITS`` in the README):
- ``ce_id``: 1 to 256 printable ASCII characters (no space); ``ce_source``: 1 to 512 of them;
- ``ce_subject`` (the case id, also the key): 1 to 128 characters, a letter or digit first, then letters,
  digits and ``. _ : / @ + = -``;
- ``ce_type``: a contract id; ``ce_dataschema``: that contract's ``urn:concord:contract:<id>:<version>``;
  ``ce_time``: RFC 3339 with an offset;
- extension attributes: ``ce_`` and 1 to 20 lower-case letters or digits, at most 16 of them, values of at
  most 256 printable characters; ``traceparent`` in W3C form (another value is dropped, not forwarded);
- each attribute once; at most 64 headers and 16 KiB of them in all.
Anything else is a ``malformed_envelope``."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from contracts.base import Event, dataschema_uri, parse_dataschema

JSON = "application/json"
FORMAT = JSONFormat()
Headers = list[tuple[str, bytes]]
RawHeaders = Sequence[tuple[str, bytes | None]]  # as read from Kafka: a value may be null
TRACEPARENT = "traceparent"  # W3C Trace Context, as OpenTelemetry's Kafka instrumentation carries it
CONTENT_TYPE = "content-type"
SENT_AT = "ce_sentat"  # an extension attribute: when the sender committed the event to its outbox (epoch ms, real)
SENDER_HEADER = "concord_sender"  # set by the gateway on what it delivers: the department the event came from
EXCHANGE_HEADER_PREFIX = "concord_"  # headers only the exchange sets; a sender's own are not passed on
REQUIRED_HEADERS = ("ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "ce_dataschema")
STANDARD_HEADERS = frozenset({*REQUIRED_HEADERS, "ce_specversion", "ce_datacontenttype"})

MAX_HEADERS = 64
MAX_HEADER_BYTES = 16 * 1024
MAX_EXTENSIONS = 16
ID = re.compile(r"^[\x21-\x7e]{1,256}$")
SOURCE = re.compile(r"^[\x21-\x7e]{1,512}$")
SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,127}$")
CONTRACT_TYPE = re.compile(r"^[a-z][a-z0-9]*\.[a-z][a-z0-9-]{0,126}$")
DATASCHEMA = re.compile(r"^[\x21-\x7e]{1,256}$")
TIME = re.compile(r"^[0-9T:.+Zz-]{10,64}$")
EXTENSION = re.compile(r"^ce_[a-z0-9]{1,20}$")
EXTENSION_VALUE = re.compile(r"^[\x20-\x7e]{0,256}$")
TRACE = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
ATTRIBUTE_RULES = {"ce_id": ID, "ce_source": SOURCE, "ce_type": CONTRACT_TYPE, "ce_subject": SUBJECT,
                   "ce_time": TIME, "ce_dataschema": DATASCHEMA}
REQUIRED_RULES = tuple((name, name[3:], ATTRIBUTE_RULES[name]) for name in REQUIRED_HEADERS)
JSON_BYTES = JSON.encode()


@dataclass(frozen=True)
class KafkaRecord:
    key: bytes | None
    value: bytes
    headers: Headers


class Envelope(NamedTuple):  # decoded for every record routed: a named tuple, at a fifth of a dataclass's cost
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


def attribute(headers: RawHeaders, name: str) -> str | None:
    """One envelope attribute as text, if the record carries it once and it follows the exchange's rules
    (``ATTRIBUTE_RULES``); else None. For describing records that are not valid envelopes."""
    values = [value for key, value in headers if key == name]
    return _checked(ATTRIBUTE_RULES.get(name), values[0]) if len(values) == 1 else None


def _checked(rule: re.Pattern[str] | None, value: bytes | None) -> str | None:
    """An attribute's value as text, if it is there, ASCII, and matches the exchange's rule for it whole."""
    if value is None:
        return None
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if rule is None or rule.fullmatch(text) else None


def _clip(value: bytes | None, limit: int = 60) -> str:
    text = (value or b"").decode("utf-8", "replace")
    return repr(text if len(text) <= limit else f"{text[:limit]}…")


def decode(headers: RawHeaders, key: bytes | None) -> Envelope:
    """The envelope of a record, from its headers and key; EnvelopeError if it is not one of ours.

    The attribute rules of CloudEvents 1.0 and the exchange's limits are checked here directly rather than
    through the SDK's event model: the router decodes every record, and the model costs more than the rest of
    the routing. Messages never repeat more than a few characters of what the record holds."""
    if len(headers) > MAX_HEADERS:
        raise EnvelopeError(f"{len(headers)} headers: at most {MAX_HEADERS}")
    size = 0
    header_map: dict[str, bytes | None] = {}  # a name given twice: its last value (whether that is allowed below)
    repeated: set[str] = set()
    extensions: list[str] = []  # ce_ names beyond the standard attributes, once each
    for name, value in headers:  # one pass: this runs for every record the router takes
        size += (len(name) if name.isascii() else len(name.encode("utf-8", "replace"))) + (len(value) if value else 0)
        if name in header_map:
            if name.startswith("ce_") or name in (CONTENT_TYPE, TRACEPARENT):
                repeated.add(name)
        elif name.startswith("ce_") and name not in STANDARD_HEADERS:
            extensions.append(name)
        header_map[name] = value
    if size > MAX_HEADER_BYTES:
        raise EnvelopeError(f"{size} bytes of headers: at most {MAX_HEADER_BYTES}")
    if repeated:
        raise EnvelopeError(f"headers given more than once: {', '.join(sorted(repeated))}")
    if header_map.get("ce_specversion") != b"1.0":
        raise EnvelopeError("not a CloudEvents 1.0 record in binary mode (ce_specversion must be 1.0)")
    missing = [name for name in REQUIRED_HEADERS if not header_map.get(name)]
    if missing:
        raise EnvelopeError(f"missing {', '.join(missing)}")
    content_type = header_map.get(CONTENT_TYPE) or b""
    if content_type.split(b";")[0].strip() != JSON_BYTES:
        raise EnvelopeError(f"content-type must be {JSON}, got {_clip(content_type)}")
    found: dict[str, str] = {}
    for name, attribute_name, rule in REQUIRED_RULES:  # each given once (checked above): the map holds its value
        text = _checked(rule, header_map[name])
        if text is None:
            raise EnvelopeError(f"{name} {_clip(header_map[name])} breaks the exchange's rules for it")
        found[attribute_name] = text
    try:
        time = datetime.fromisoformat(found["time"])
    except ValueError as exc:
        raise EnvelopeError(f"ce_time is not an RFC 3339 time: {exc}") from exc
    if time.tzinfo is None:
        raise EnvelopeError("ce_time needs a time zone offset (RFC 3339)")
    bad = [name for name in extensions if not EXTENSION.fullmatch(name)
           or not EXTENSION_VALUE.fullmatch((header_map[name] or b"").decode("ascii", "replace"))]
    if bad or len(extensions) > MAX_EXTENSIONS:
        raise EnvelopeError(f"extension attributes: names ce_ and 1 to 20 lower-case letters or digits, values of "
                            f"at most 256 printable characters, at most {MAX_EXTENSIONS} of them")
    contract = parse_dataschema(found["dataschema"])
    if contract is None:
        raise EnvelopeError(f"ce_dataschema {_clip(header_map['ce_dataschema'])} names no contract version")
    if contract[0] != found["type"]:
        raise EnvelopeError(f"ce_type {found['type']!r} differs from the contract of ce_dataschema")
    if key != found["subject"].encode():
        raise EnvelopeError("the record key must be the case id given in ce_subject (it keeps a case's events "
                            "in order)")
    trace = (header_map.get(TRACEPARENT) or b"").decode("ascii", "replace")
    return Envelope(
        id=found["id"], source=found["source"], type=found["type"], subject=found["subject"],
        time=time, dataschema=found["dataschema"], contract=contract,
        traceparent=trace if TRACE.fullmatch(trace) else None,
    )


def forwarded(headers: RawHeaders, envelope: Envelope) -> Headers:
    """The headers of a valid record that travel on with it: its CloudEvents attributes, content type and a
    well-formed traceparent. Nothing else a sender wrote (a forged ``concord_sender``, say) is passed on."""
    kept: Headers = []
    for name, value in headers:
        if value is None:
            continue
        if name.startswith("ce_") or name == CONTENT_TYPE or (name == TRACEPARENT and envelope.traceparent):
            kept.append((name, value))
    return kept


def parse_payload(value: bytes) -> Any:
    """The payload as JSON; ValueError when it is not UTF-8 JSON (or nests deeper than 1,024 levels, or holds
    an integer beyond 64 bits: orjson's limits, the exchange's too)."""
    return orjson.loads(value)
