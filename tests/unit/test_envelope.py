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
