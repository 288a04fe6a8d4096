import json

from contracts.envelope import decode
from gateway.ingest import from_structured


def test_a_structured_cloudevent_becomes_a_binary_mode_record_keyed_by_subject() -> None:
    body = {"specversion": "1.0", "id": "e-1", "source": "/legacy", "type": "bureau.opinion-issued",
            "subject": "G-1", "time": "2026-11-27T10:00:00+08:00",
            "dataschema": "urn:concord:contract:bureau.opinion-issued:1", "datacontenttype": "application/json",
            "data": {"case_id": "G-1", "decision": "approved"}}
    ingested = from_structured(json.dumps(body).encode(), traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    assert ingested.problem is None and ingested.event_id == "e-1" and ingested.record.key == b"G-1"
    assert json.loads(ingested.record.value) == body["data"]
    envelope = decode(ingested.record.headers, ingested.record.key)
    assert envelope.contract == ("bureau.opinion-issued", 1) and envelope.traceparent is not None


def test_a_body_that_is_not_a_cloudevent_is_forwarded_raw_to_be_dead_lettered() -> None:
    ingested = from_structured(b"[1, 2")
    assert ingested.problem and ingested.record.value == b"[1, 2"
    assert not [name for name, _ in ingested.record.headers if name.startswith("ce_")]
