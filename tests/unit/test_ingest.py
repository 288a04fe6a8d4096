import json

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.envelope import decode
from gateway.ingest import REQUIRED, from_structured


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


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.binary(max_size=300),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
                 max_leaves=25).map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["id", "subject", "data", "data_base64", "type", "specversion", "x"]),
                    st.none() | st.integers() | st.text(max_size=30) | st.lists(st.integers(), max_size=3),
                    max_size=6).map(lambda v: json.dumps(v).encode()),
    st.integers(1, 5000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.sampled_from([b'{"\\ud800": 1}', b'{"id": "\\ud800", "subject": "\\udfff"}', b'{"data_base64": "!!"}',
                     b'{"data_base64": 5}']),
))
def test_any_body_becomes_a_record_and_never_an_error(body: bytes) -> None:
    ingested = from_structured(body)
    assert isinstance(ingested.record.value, bytes)
    assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in ingested.record.headers)
    ce = {name for name, _ in ingested.record.headers if name.startswith("ce_")}
    if ingested.problem is None:  # nothing wrong with the body: every attribute an event carries is there
        assert {f"ce_{name}" for name in REQUIRED} <= ce
    try:
        is_object = isinstance(json.loads(body), dict)
    except (ValueError, RecursionError):
        is_object = False
    if not is_object:  # not a CloudEvent at all: forwarded as it is, to be dead-lettered with its reason
        assert ingested.problem and ingested.record.value == body and not ce


def test_what_is_wrong_with_a_body_is_said_in_the_bodys_terms() -> None:
    event = {"specversion": "1.0", "id": "e-1", "source": "/legacy", "type": "bureau.opinion-issued", "data": {}}
    problems = {
        b"{not json": "the body is not JSON",
        b"[1]": "the body is a JSON list, not an object",
        json.dumps(event | {"data_base64": "AA=="}).encode(): "give data or data_base64, not both",
        json.dumps({k: v for k, v in event.items() if k != "data"} | {"data_base64": ""}).encode():
            "data_base64 holds no bytes",
        json.dumps({k: v for k, v in event.items() if k != "data"} | {"data_base64": "!!"}).encode():
            "data_base64 is not valid base64",
        json.dumps({k: v for k, v in event.items() if k != "data"}).encode(): "the event has no data",
        json.dumps({k: v for k, v in event.items() if k != "id"}).encode(): "CloudEvents attributes missing: id",
    }
    for body, says in problems.items():
        problem = from_structured(body).problem
        assert problem is not None and problem.startswith(says), (body, problem)
    assert from_structured(json.dumps(event).encode()).problem is None
