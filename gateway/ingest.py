"""HTTP ingest for departments whose systems cannot speak Kafka: a structured-mode CloudEvent (JSON) becomes
a binary-mode record on the department's ingress topic, where the router applies the same checks as to any
other event. The sending department is the one the bearer token belongs to."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from contracts.envelope import JSON, TRACEPARENT, KafkaRecord


@dataclass(frozen=True)
class Ingested:
    record: KafkaRecord
    event_id: str | None
    problem: str | None  # why the body is not a CloudEvent; the record still goes to ingress, raw


def _attribute(value: Any) -> bytes:
    return str(value).encode()


def from_structured(body: bytes, traceparent: str | None = None) -> Ingested:
    """Binary-mode record for a structured CloudEvent body. A body that is not one is forwarded as is
    (no ce_ headers), so that it is dead-lettered with its reason like any malformed event."""
    try:
        event = json.loads(body)
        if not isinstance(event, dict):
            raise ValueError("a structured CloudEvent is a JSON object")
        data = event.get("data")
        if data is None and "data_base64" in event:
            if not isinstance(event["data_base64"], str):
                raise ValueError("data_base64 must be a base64 string")
            payload = base64.b64decode(event["data_base64"], validate=True)
        else:
            payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        headers: list[tuple[str, bytes]] = [
            (f"ce_{name}", _attribute(value)) for name, value in event.items()
            if name not in {"data", "data_base64", "datacontenttype"} and value is not None
        ]
        for name, _ in headers:
            name.encode()  # a name Kafka cannot carry (a lone surrogate) is refused here
        headers.append(("content-type", _attribute(event.get("datacontenttype", JSON))))
        if traceparent:
            headers.append((TRACEPARENT, traceparent.encode()))
        subject = event.get("subject")
        key = _attribute(subject) if subject is not None else None
        event_id = str(event["id"])[:300] if "id" in event else None
    except (ValueError, RecursionError, UnicodeError) as exc:
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:300]
        return Ingested(KafkaRecord(None, body, [("content-type", b"application/octet-stream")]), None, problem)
    return Ingested(KafkaRecord(key, payload, headers), event_id, None)
