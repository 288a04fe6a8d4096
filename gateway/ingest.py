"""HTTP ingest for departments whose systems cannot speak Kafka: a structured-mode CloudEvent (JSON) becomes
a binary-mode record on the department's ingress topic, where the router applies the same checks as to any
other event. The sending department is the one the bearer token belongs to."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from contracts.envelope import JSON, TRACEPARENT, KafkaRecord

REQUIRED = ("specversion", "id", "source", "type")  # the CloudEvents attributes every event carries
HINT = "POST /v1/events takes one structured-mode CloudEvent: a JSON object with specversion, id, source, type, " \
       "subject, dataschema and data"


@dataclass(frozen=True)
class Ingested:
    record: KafkaRecord
    event_id: str | None
    problem: str | None  # what is wrong with the body, said in the body's terms (the router refuses the record)


def _attribute(value: Any) -> bytes:
    return str(value).encode()


def _raw(body: bytes, problem: str) -> Ingested:
    """A body that is no CloudEvent goes to ingress as it is (no ce_ headers), to be dead-lettered with its reason
    like any malformed event; the sender is told what is wrong with it."""
    return Ingested(KafkaRecord(None, body, [("content-type", b"application/octet-stream")]), None, problem)


def _data(event: dict[str, Any]) -> tuple[bytes, str | None]:
    """The event's data as the record's value, and what is wrong with it, if anything."""
    if "data" in event and "data_base64" in event:
        return b"", "give data or data_base64, not both"
    if "data_base64" in event:
        encoded = event["data_base64"]
        if not isinstance(encoded, str):
            return b"", f"data_base64 must be a base64 string, not a JSON {type(encoded).__name__}"
        try:
            payload = base64.b64decode(encoded, validate=True)
        except ValueError as exc:
            return b"", f"data_base64 is not valid base64 ({exc})"
        return payload, None if payload else "data_base64 holds no bytes: the event has no data"
    if "data" not in event:
        return b"", "the event has no data (give data, or data_base64)"
    return json.dumps(event["data"], ensure_ascii=False, separators=(",", ":")).encode(), None


def from_structured(body: bytes, traceparent: str | None = None) -> Ingested:
    """Binary-mode record for a structured CloudEvent body. Whatever the body holds, it becomes a record (the
    router refuses what is wrong, so that it is audited and kept); ``problem`` says what that is."""
    try:
        event = json.loads(body)
    except RecursionError:
        return _raw(body, f"the body's JSON is nested too deeply; {HINT}")
    except ValueError as exc:
        return _raw(body, f"the body is not JSON ({str(exc)[:200]}); {HINT}")
    if not isinstance(event, dict):
        return _raw(body, f"the body is a JSON {type(event).__name__}, not an object; {HINT}")
    try:
        payload, problem = _data(event)
        headers: list[tuple[str, bytes]] = [
            (f"ce_{name}", _attribute(value)) for name, value in event.items()
            if name not in {"data", "data_base64", "datacontenttype"} and value is not None
        ]
        for name, _ in headers:
            name.encode()  # a name Kafka cannot carry (a lone surrogate) is refused here
        headers.append(("content-type", _attribute(event.get("datacontenttype", JSON))))
    except (UnicodeError, RecursionError) as exc:
        return _raw(body, f"the body holds text that cannot be carried ({type(exc).__name__}); {HINT}")
    missing = [name for name in REQUIRED if event.get(name) in (None, "")]
    if missing:
        problem = f"CloudEvents attributes missing: {', '.join(missing)}" + (f"; {problem}" if problem else "")
    if traceparent:
        headers.append((TRACEPARENT, traceparent.encode()))
    subject = event.get("subject")
    key = _attribute(subject) if subject is not None else None
    event_id = str(event["id"])[:300] if event.get("id") not in (None, "") else None
    return Ingested(KafkaRecord(key, payload, headers), event_id, problem)
