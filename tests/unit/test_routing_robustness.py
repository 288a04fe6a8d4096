"""The routing rules on arbitrary records: whatever a record's key, headers or value, routing never raises,
ends in exactly one outcome, passes on none of the sender's own exchange headers, and never echoes a value of
a conditional or not-shared field outside the dead letter (which keeps the original bytes for its owner)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import Sharing
from contracts.envelope import SENDER_HEADER, KafkaRecord, encode
from contracts.market import BusinessRegistration
from contracts.topics import TOPICS
from gateway.registry import Registry
from gateway.rejections import MAX_DETAIL
from gateway.routing import IngressRecord, NoAgreements, Routed, provisioned, route
from tests.factories import T0, business_registration, case_submitted, opinion_issued, opinion_requested

REGISTRY = Registry.from_catalogue()
LIMIT = 64 * 1024
SECRET = "S3CRET-"  # marks the values of conditional and not-shared fields


def registration(case_id: str = "G-TEST-1") -> BusinessRegistration:
    return business_registration(case_id, legal_representative=f"{SECRET}张三",
                                 representative_id_number=f"{SECRET}320102199001011234")


def valid_records() -> list[tuple[str, KafkaRecord]]:
    submitted = case_submitted().model_copy(update={"contact_person": f"{SECRET}李四",
                                                    "contact_phone": f"{SECRET}13800000000",
                                                    "agent": f"{SECRET}王芳"})
    return [("bureau", encode(submitted, source="/concord/bureau")),
            ("bureau", encode(opinion_requested(), source="/concord/bureau")),
            ("planning", encode(opinion_issued().model_copy(update={"officer": f"{SECRET}赵敏"}),
                                source="/concord/planning")),
            ("market", encode(registration(), source="/concord/market"))]


VALID = valid_records()
NAMES = ["ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "ce_dataschema", "ce_specversion",
         "content-type", "traceparent", SENDER_HEADER, "concord_reason", "ce_extra", "ce_Bad-Name", "x-other"]
header_values = st.one_of(
    st.none(), st.binary(max_size=40), st.just(b""), st.just(b"\x00"), st.just(b"a\x00b"), st.just(b"\xff\xfe"),
    st.just(b"x" * 5000), st.sampled_from([b"1.0", b"application/json", b"G-TEST-1", b"bureau.opinion-issued",
                                           b"urn:concord:contract:bureau.opinion-issued:1", b"2026-11-27T10:00:00Z",
                                           b"urn:concord:contract:bureau.opinion-issued:99", b"not a time"]),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def payloads(draw: st.DrawFn, original: bytes) -> bytes:
    """The original payload, or one changed in a field (kept, dropped, given another value or type), or
    something else entirely (bytes, other JSON, deep nesting, huge numbers, nothing)."""
    data = json.loads(original)
    choice = draw(st.integers(0, 7))
    if choice == 0:
        return original
    if choice == 1:
        field = draw(st.sampled_from(sorted(data)))
        data[field] = draw(json_values)
    elif choice == 2:
        data.pop(draw(st.sampled_from(sorted(data))))
    elif choice == 3:
        data[draw(st.text(min_size=1, max_size=12))] = draw(json_values)
    elif choice == 4:
        return draw(st.binary(max_size=200))
    elif choice == 5:
        depth = draw(st.integers(1, 3000))
        return b"[" * depth + b"]" * depth
    elif choice == 6:
        return draw(st.sampled_from([b"", b"null", b"1e999", b"123456789012345678901234567890", b'"x"', b"[]",
                                     b"x" * (LIMIT + 1)]))
    else:
        return json.dumps(draw(json_values)).encode()
    return json.dumps(data, ensure_ascii=False).encode()


@st.composite
def records(draw: st.DrawFn) -> IngressRecord:
    sender, valid = draw(st.sampled_from(VALID))
    headers: list[tuple[str, bytes | None]] = list(valid.headers)
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.integers(0, 3))
        if action == 0 and headers:
            headers.pop(draw(st.integers(0, len(headers) - 1)))
        elif action == 1:
            headers.append((draw(st.sampled_from(NAMES) | st.text(max_size=30)), draw(header_values)))
        elif action == 2 and headers:
            i = draw(st.integers(0, len(headers) - 1))
            headers[i] = (headers[i][0], draw(header_values))
        else:
            headers += draw(st.lists(st.tuples(st.text(max_size=8), header_values), max_size=70))
    key = draw(st.sampled_from([valid.key, None, b"", b"\xff", b"another-case", b"k" * 3000]))
    return IngressRecord(f"ingress.{sender}", draw(st.integers(0, 2)), draw(st.integers(0, 2**40)), key,
                         draw(payloads(valid.value)), headers, sender)


def secret_values(record: IngressRecord) -> list[str]:
    """The values of conditional and not-shared fields the record carries (as the tests mark them)."""
    try:
        data = json.loads(record.value)
    except (ValueError, RecursionError):
        return []
    return [v for v in data.values() if isinstance(v, str) and v.startswith(SECRET)] if isinstance(data, dict) else []


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(records())
def test_any_record_is_routed_or_refused_with_a_reason_and_nothing_leaks(record: IngressRecord) -> None:
    routed = route(record, REGISTRY, NoAgreements(), T0, LIMIT, TOPICS)
    topics = [out.topic for out in routed.records]
    assert topics.count(TOPICS.audit) == 1
    for out in routed.records:
        assert all(isinstance(name, str) and (value is None or isinstance(value, bytes)) for name, value in out.headers)
    if routed.rejection is None:
        assert TOPICS.deadletter(record.sender) not in topics
        for out in routed.records:
            if out.topic != TOPICS.audit:
                assert [v for k, v in out.headers if k == SENDER_HEADER] == [record.sender.encode()]
                assert not [k for k, _ in out.headers if k.startswith("concord_") and k != SENDER_HEADER]
        return
    assert len(routed.rejection.detail) <= MAX_DETAIL and routed.rejection.detail.isprintable()
    assert sorted(topics) == sorted([TOPICS.deadletter(record.sender), TOPICS.deliver(record.sender), TOPICS.audit])
    entry = json.loads(next(out.value for out in routed.records if out.topic == TOPICS.audit))
    assert entry["reason"] == routed.rejection.reason.value
    assert all("\x00" not in str(entry[k]) and len(str(entry[k])) <= 512 for k in ("event_id", "case_id", "contract"))
    for secret in secret_values(record):
        for out in routed.records:
            if out.topic != TOPICS.deadletter(record.sender):  # the dead letter keeps the original, for its owner
                assert secret.encode() not in out.value, out.topic


def test_a_refused_field_value_is_not_repeated_in_the_detail() -> None:
    """representative_id_number is never shared: a wrong type there is named, its value is not."""
    record = encode(registration(), source="/concord/market")
    data = json.loads(record.value) | {"representative_id_number": 320102199001011234,
                                       "legal_representative": ["张三"], "status": f"{SECRET}unknown"}
    refused = route(IngressRecord("ingress.market", 0, 1, record.key, json.dumps(data).encode(), record.headers,
                                  "market"), REGISTRY, NoAgreements(), T0, LIMIT, TOPICS)
    assert refused.rejection is not None
    detail = refused.rejection.detail
    assert "representative_id_number" in detail and "legal_representative" in detail
    assert "320102199001011234" not in detail and "张三" not in detail


def test_an_event_for_a_topic_that_does_not_exist_yet_is_refused_as_not_provisioned() -> None:
    record = encode(opinion_requested(), source="/concord/bureau")
    incoming = IngressRecord("ingress.bureau", 0, 1, record.key, record.value, record.headers, "bureau")
    routed = route(incoming, REGISTRY, NoAgreements(), T0, LIMIT, TOPICS)
    shared = TOPICS.shared("bureau.opinion-requested")
    checked: Routed = provisioned(routed, incoming, lambda topic: topic != shared, T0, TOPICS)
    assert checked.rejection is not None and checked.rejection.reason.value == "not_provisioned"
    assert shared in checked.rejection.detail
    assert provisioned(routed, incoming, lambda topic: True, T0, TOPICS) is routed


def test_every_field_of_the_test_records_carries_the_class_the_secrets_assume() -> None:
    """The marks above sit on conditional and not-shared fields only (else the leak check proves nothing)."""
    classes: set[Sharing] = set()
    for _, record in VALID:
        contract = REGISTRY.get(*_contract_of(record))
        assert contract is not None
        data = json.loads(record.value)
        marked = {name for name, value in data.items() if isinstance(value, str) and value.startswith(SECRET)}
        assert marked <= contract.fields_with(Sharing.CONDITIONAL, Sharing.NOT_SHARED)
        classes |= {contract.sharing[name] for name in marked}
    assert classes == {Sharing.CONDITIONAL, Sharing.NOT_SHARED}


def _contract_of(record: KafkaRecord) -> tuple[str, int]:
    _, _, rest = dict(record.headers)["ce_dataschema"].decode().partition("urn:concord:contract:")
    contract_id, _, version = rest.rpartition(":")
    return contract_id, int(version)
