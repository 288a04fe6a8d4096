import json

import pytest

from contracts.base import dataschema_uri
from contracts.envelope import EnvelopeError, decode, encode, encode_payload
from tests.factories import T0, opinion_requested


def test_an_event_travels_as_a_binary_mode_cloudevent_keyed_by_case() -> None:
    record = encode(opinion_requested(), source="/concord/bureau", id="e-1", time=T0)
    headers = dict(record.headers)
    assert record.key == b"G-TEST-1"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"bureau.opinion-requested"
    assert headers["ce_subject"] == b"G-TEST-1"
    assert headers["ce_dataschema"] == dataschema_uri("bureau.opinion-requested", 1).encode()
    assert headers["content-type"] == b"application/json"
    assert headers["traceparent"].startswith(b"00-")
    assert json.loads(record.value)["item_code"] == "NRP-101"

    envelope = decode(record.headers, record.key)
    assert (envelope.id, envelope.type, envelope.subject, envelope.time) == ("e-1", "bureau.opinion-requested",
                                                                             "G-TEST-1", T0)
    assert envelope.contract == ("bureau.opinion-requested", 1)


def test_a_record_without_cloudevents_headers_is_refused() -> None:
    with pytest.raises(EnvelopeError, match="ce_specversion"):
        decode([("content-type", b"application/json")], b"k")


@pytest.mark.parametrize("drop", ["ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "ce_dataschema"])
def test_each_required_attribute_is_checked(drop: str) -> None:
    record = encode(opinion_requested(), source="/concord/bureau")
    with pytest.raises(EnvelopeError):
        decode([(k, v) for k, v in record.headers if k != drop], record.key)


def test_the_key_must_be_the_case_id() -> None:
    record = encode(opinion_requested(), source="/concord/bureau")
    with pytest.raises(EnvelopeError, match="key"):
        decode(record.headers, b"another-case")


def test_type_and_dataschema_must_agree() -> None:
    record = encode_payload(b"{}", contract_id="bureau.opinion-requested", version=1, subject="c", source="/x")
    headers = [(k, b"bureau.case-submitted" if k == "ce_type" else v) for k, v in record.headers]
    with pytest.raises(EnvelopeError, match="differs"):
        decode(headers, record.key)


def test_a_follow_up_event_stays_in_the_trace_of_its_cause() -> None:
    from contracts.envelope import new_traceparent

    parent = new_traceparent()
    child = new_traceparent(parent)
    assert child.split("-")[1] == parent.split("-")[1]
    assert child.split("-")[2] != parent.split("-")[2]


def _replace(record_headers: list[tuple[str, bytes]], name: str, value: bytes | None) -> list[tuple[str, bytes | None]]:
    return [(k, value if k == name else v) for k, v in record_headers]


@pytest.mark.parametrize(("name", "value", "says"), [
    ("ce_id", None, "missing ce_id"),
    ("ce_id", b"a\x00b", "ce_id"),
    ("ce_id", b"x" * 300, "ce_id"),
    ("ce_id", b"\xff\xfe", "ce_id"),
    ("ce_id", b"e-1\n", "ce_id"),  # a pattern's $ would let one line break through at the end
    ("ce_source", b"/concord/bureau\n", "ce_source"),
    ("ce_subject", b"G TEST 1", "ce_subject"),
    ("ce_subject", b"G" * 129, "ce_subject"),
    ("ce_time", b"yesterday", "ce_time"),
    ("content-type", b"text/plain", "content-type"),
])
def test_attributes_outside_the_exchange_s_limits_are_refused(name: str, value: bytes | None, says: str) -> None:
    record = encode(opinion_requested(), source="/concord/bureau")
    with pytest.raises(EnvelopeError, match=says):
        decode(_replace(record.headers, name, value), record.key)


def test_repeated_attributes_too_many_headers_and_a_missing_key_are_refused() -> None:
    record = encode(opinion_requested(), source="/concord/bureau")
    with pytest.raises(EnvelopeError, match="more than once: ce_id"):
        decode([*record.headers, ("ce_id", b"second")], record.key)
    with pytest.raises(EnvelopeError, match="headers: at most"):
        decode([*record.headers, *(("x-h", b"v") for _ in range(64))], record.key)
    with pytest.raises(EnvelopeError, match="bytes of headers"):
        decode([*record.headers, ("x-big", b"v" * 20_000)], record.key)
    with pytest.raises(EnvelopeError, match="key"):
        decode(record.headers, None)
    with pytest.raises(EnvelopeError, match="extension"):
        decode([*record.headers, ("ce_Bad-Name", b"v")], record.key)
    with pytest.raises(EnvelopeError, match="extension"):
        decode([*record.headers, ("ce_region\n", b"v")], record.key)


def test_only_the_envelope_travels_on_and_a_malformed_traceparent_is_dropped() -> None:
    from contracts.envelope import forwarded

    record = encode(opinion_requested(), source="/concord/bureau")
    headers = [*_replace(record.headers, "traceparent", b"garbage"), ("concord_sender", b"forged"),
               ("x-private", b"v"), ("ce_region", b"district-7")]
    envelope = decode(headers, record.key)
    assert envelope.traceparent is None
    kept = dict(forwarded(headers, envelope))
    assert "concord_sender" not in kept and "x-private" not in kept and "traceparent" not in kept
    assert kept["ce_region"] == b"district-7" and kept["ce_id"] == dict(record.headers)["ce_id"]
