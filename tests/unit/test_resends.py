"""Resends told from duplicates: a copy of an event its sender already sent with the same content (an outbox at least
once) is audited as a resend and goes nowhere else; another event under a used id is refused as a duplicate."""

import json

from prometheus_client import REGISTRY as METRICS

from contracts.envelope import SENT_AT, TRACEPARENT, KafkaRecord, encode
from contracts.topics import TOPICS
from gateway import routing
from gateway.enforcement import Copy, Seen, content_digest, copies_of
from gateway.metrics import count_committed
from gateway.registry import Registry
from gateway.rejections import Reason
from gateway.router import judge_copies
from gateway.routing import IngressRecord, NoAgreements
from tests.factories import T0, opinion_issued

REGISTRY = Registry.from_catalogue()
EVENT = encode(opinion_issued(), source="/concord/planning", id="e-1")


def digest(record: KafkaRecord) -> bytes:
    return content_digest(record.key, record.value, record.headers)


def with_header(record: KafkaRecord, name: str, value: bytes | None) -> KafkaRecord:
    return KafkaRecord(record.key, record.value, [*((n, v) for n, v in record.headers if n != name), (name, value)])


def test_copies_of_an_event_have_one_digest_whatever_trace_send_time_or_header_order_they_carry() -> None:
    copy = with_header(with_header(EVENT, TRACEPARENT, b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"), SENT_AT,
                       b"1767225600000")
    shuffled = KafkaRecord(copy.key, copy.value, list(reversed(copy.headers)))
    assert digest(EVENT) == digest(copy) == digest(shuffled)


def test_another_key_value_or_attribute_is_another_content() -> None:
    other_time = with_header(EVENT, "ce_time", b"2026-03-03T09:00:00+08:00")
    other_value = KafkaRecord(EVENT.key, EVENT.value.replace(b"approved", b"rejected"), EVENT.headers)
    other_key = KafkaRecord(b"G-OTHER", EVENT.value, EVENT.headers)
    no_key = KafkaRecord(None, EVENT.value, EVENT.headers)
    empty_key = KafkaRecord(b"", EVENT.value, EVENT.headers)
    digests = {digest(r) for r in (EVENT, other_time, other_value, other_key, no_key, empty_key)}
    assert len(digests) == 6


def test_any_headers_a_record_holds_have_a_digest() -> None:
    strange = [("ce_id", None), ("ce_id", b"x"), ("ce_\udcff", b"\xff"), ("content-type", None), ("x", b"y")]
    assert len(content_digest(None, b"", strange)) == 32
    assert content_digest(None, b"", strange) != content_digest(None, b"", strange[1:])
    assert content_digest(None, b"", strange) == content_digest(None, b"", strange[::-1])  # a name twice, once null


def test_a_digest_is_what_it_was_when_the_ids_seen_were_recorded() -> None:
    """The digests of the ids already seen are kept in PostgreSQL: a digest computed anew must equal the one kept,
    or every resend after an upgrade would be refused as another event under a used id."""
    headers = [("ce_type", b"bureau.opinion-issued"),
               ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), ("ce_id", b"e-1"),
               ("content-type", b"application/json"), ("ce_sentat", b"1767225600000"), ("ce_subject", None),
               ("ce_\udcff", b"\xff"), ("ce_id", b"e-0")]
    assert content_digest(b"G-1", b'{"decision":"approved"}', headers).hex() == (
        "84324d4453204729d66de34603bae7d3c032632822fdfaa8d6d986716d4f9177")
    assert content_digest(None, b"", []).hex() == "13c6a7b85fcb0443c1d31dafe22561aac714fbaa99d3b9a56474d8dda0c9aee0"


def seen(position: str, record: KafkaRecord = EVENT, sender: str = "planning") -> Seen:
    return Seen(sender, "e-1", position, digest(record))


def test_a_copy_is_told_by_its_first_position_and_whether_it_says_the_same() -> None:
    other = KafkaRecord(EVENT.key, EVENT.value.replace(b"approved", b"rejected"), EVENT.headers)
    first = {("planning", "e-1"): ("ingress.planning/0/3", digest(EVENT))}
    candidates = [seen("ingress.planning/0/3"),  # the router's own retry of the first: no copy
                  seen("ingress.planning/0/9"), seen("ingress.planning/0/10", other),
                  seen("ingress.water/0/1", sender="water")]  # water's e-1 is water's own
    assert copies_of(candidates, first) == {"ingress.planning/0/9": Copy("ingress.planning/0/3", True),
                                            "ingress.planning/0/10": Copy("ingress.planning/0/3", False)}


def test_within_a_batch_the_first_of_several_copies_is_the_first() -> None:
    copies = copies_of([seen("ingress.planning/0/5"), seen("ingress.planning/0/6")], {})
    assert copies == {"ingress.planning/0/6": Copy("ingress.planning/0/5", True)}


def test_an_id_seen_before_digests_were_kept_is_a_duplicate_whatever_its_content() -> None:
    copies = copies_of([seen("ingress.planning/0/5")], {("planning", "e-1"): ("ingress.planning/0/1", None)})
    assert copies == {"ingress.planning/0/5": Copy("ingress.planning/0/1", False)}


def ingress(record: KafkaRecord, offset: int) -> IngressRecord:
    return IngressRecord("ingress.planning", 0, offset, record.key, record.value, record.headers, "planning")


def routed(record: KafkaRecord, offset: int) -> tuple[IngressRecord, routing.Routed]:
    entry = ingress(record, offset)
    return entry, routing.route(entry, REGISTRY, NoAgreements(), T0, 1024 * 1024, TOPICS)


def test_a_resend_goes_only_to_the_audit_log_naming_its_first_copy() -> None:
    batch = [routed(EVENT, 9)]
    [(_, judged)] = judge_copies(batch, {"ingress.planning/0/9": Copy("ingress.planning/0/3", True)}, T0, TOPICS)
    assert judged.rejection is None and judged.resend_of == "ingress.planning/0/3" and judged.consumers == ()
    [audit] = judged.records
    entry = json.loads(audit.value)
    assert audit.topic == "audit.exchange" and entry["action"] == "resent" and entry["event_id"] == "e-1"
    assert entry["first"] == {"topic": "ingress.planning", "partition": 0, "offset": 3}
    assert entry["ingress"] == {"topic": "ingress.planning", "partition": 0, "offset": 9}
    assert entry["sender"] == "planning" and entry["contract"] == "bureau.opinion-issued"


def test_another_event_under_a_used_id_is_refused_as_a_duplicate_id() -> None:
    other = KafkaRecord(EVENT.key, EVENT.value.replace(b"approved", b"rejected"), EVENT.headers)
    [(_, judged)] = judge_copies([routed(other, 10)], {"ingress.planning/0/10": Copy("ingress.planning/0/3", False)},
                                 T0, TOPICS)
    assert judged.rejection is not None and judged.rejection.reason is Reason.DUPLICATE_ID
    assert "ingress.planning/0/3" in judged.rejection.detail and judged.resend_of is None


def test_a_copy_of_an_event_refused_in_the_same_batch_keeps_its_own_refusal_and_is_never_routed() -> None:
    broken = KafkaRecord(EVENT.key, EVENT.value.replace(b'"approved"', b'"maybe"'), EVENT.headers)
    fixed = EVENT
    batch = [routed(broken, 1), routed(broken, 2), routed(fixed, 3)]
    copies = {"ingress.planning/0/2": Copy("ingress.planning/0/1", True),
              "ingress.planning/0/3": Copy("ingress.planning/0/1", False)}
    reasons = [r.rejection.reason if r.rejection else None for _, r in judge_copies(batch, copies, T0, TOPICS)]
    # the copy is refused like its first (it would be, sent later: that id is forgotten); the corrected event
    # cannot take the id up in this batch, its first copy's id not being recorded
    assert reasons == [Reason.SCHEMA_VIOLATION, Reason.SCHEMA_VIOLATION, Reason.DUPLICATE_ID]


def test_resends_are_counted_apart_from_routed_and_refused_events() -> None:
    before = METRICS.get_sample_value("concord_resent_total", {"sender": "planning"}) or 0.0
    routed_before = METRICS.get_sample_value("concord_routed_total", {"sender": "planning",
                                                                       "contract": "bureau.opinion-issued"}) or 0.0
    batch = judge_copies([routed(EVENT, 3), routed(EVENT, 4)],
                         {"ingress.planning/0/4": Copy("ingress.planning/0/3", True)}, T0, TOPICS)
    count_committed(batch, 0.01)
    assert METRICS.get_sample_value("concord_resent_total", {"sender": "planning"}) == before + 1
    assert METRICS.get_sample_value("concord_routed_total", {"sender": "planning",
                                                             "contract": "bureau.opinion-issued"}) == routed_before + 1
