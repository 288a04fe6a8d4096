import hashlib
import json
from datetime import datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from contracts.base import Sharing
from contracts.envelope import SENDER_HEADER, KafkaRecord, encode, encode_payload
from contracts.masks import KeyedHash
from contracts.sharing import projected
from contracts.topics import TOPICS
from gateway import routing
from gateway.registry import ContractVersion, Registry
from gateway.rejections import Reason
from gateway.routing import DETAIL_HEADER, REASON_HEADER, IngressRecord, NoAgreements, Outgoing
from tests.factories import T0, case_submitted, opinion_issued, opinion_requested
from tests.unit.test_masks import NESTED_VERSION

REGISTRY = Registry.from_catalogue()
LIMIT = 1024 * 1024
MASK_KEY = bytes(range(32))


def route(record: IngressRecord, registry: Registry, policy: routing.SharingPolicy, now: datetime,
          limit: int) -> routing.Routed:
    return routing.route(record, registry, policy, now, limit, TOPICS, MASK_KEY)


def ingress(record: KafkaRecord, sender: str, offset: int = 7) -> IngressRecord:
    return IngressRecord(f"ingress.{sender}", 0, offset, record.key, record.value, record.headers, sender)


def by_topic(records: list[Outgoing]) -> dict[str, list[Outgoing]]:
    out: dict[str, list[Outgoing]] = {}
    for r in records:
        out.setdefault(r.topic, []).append(r)
    return out


class OnlyContactFor:
    def __init__(self, consumer: str) -> None:
        self.consumer = consumer

    def grant(self, consumer: str, contract: ContractVersion, subject: str, at: datetime) -> routing.Grant:
        if consumer != self.consumer:
            return routing.NOTHING
        fields = contract.fields_with(Sharing.CONDITIONAL)
        return routing.Grant(fields, (routing.Granted("AGR-CONTACT", "fire-protection review 消防审查", fields),))

    def consumers(self, contract: ContractVersion, at: datetime, subject: str | None = None) -> frozenset[str]:
        return frozenset({self.consumer})


def test_an_addressed_event_is_recorded_delivered_to_its_recipient_only_and_audited() -> None:
    record = encode(opinion_requested(), source="/concord/bureau", id="e-1")
    routed = route(ingress(record, "bureau"), REGISTRY, NoAgreements(), T0, LIMIT)
    assert routed.rejection is None
    topics = by_topic(routed.records)
    assert set(topics) == {"shared.bureau.opinion-requested", "deliver.planning", "audit.exchange"}
    delivered = topics["deliver.planning"][0]
    assert delivered.key == b"G-TEST-1"
    assert dict(delivered.headers)[SENDER_HEADER] == b"bureau"
    audit = json.loads(topics["audit.exchange"][0].value)
    assert audit["action"] == "routed" and audit["event_id"] == "e-1" and list(audit["delivered"]) == ["planning"]


def test_fields_are_cut_or_masked_to_what_each_consumer_may_see() -> None:
    case = case_submitted()
    record = encode(case, source="/concord/bureau")
    routed = route(ingress(record, "bureau"), REGISTRY, OnlyContactFor("housing"), T0, LIMIT)
    topics = by_topic(routed.records)
    shared_payload = json.loads(topics["shared.bureau.case-submitted"][0].value)
    assert "agent" not in shared_payload  # not shared: never leaves the owner
    assert shared_payload["contact_phone"]
    housing = json.loads(topics["deliver.housing"][0].value)
    planning = json.loads(topics["deliver.planning"][0].value)
    assert housing["contact_phone"] and "agent" not in housing
    assert housing["contact_phone"] == case.contact_phone and housing["contact_person"] == case.contact_person
    assert "agent" not in planning  # not shared: cut
    assert planning["contact_phone"] == "****" + case.contact_phone[-4:]  # conditional, masked as its contract says
    assert planning["contact_person"] == KeyedHash().apply(case.contact_person, MASK_KEY) != case.contact_person
    assert planning["project"] == housing["project"]
    assert "deliver.bureau" not in topics  # the sender does not get its own event back


def test_the_purpose_of_the_granting_agreement_travels_with_the_delivery_and_into_the_audit_entry() -> None:
    record = encode(case_submitted(), source="/concord/bureau")
    routed = route(ingress(record, "bureau"), REGISTRY, OnlyContactFor("housing"), T0, LIMIT)
    topics = by_topic(routed.records)
    housing = dict(topics["deliver.housing"][0].headers)
    assert housing[routing.AGREEMENT_HEADER] == b"AGR-CONTACT"
    assert json.loads(housing[routing.PURPOSE_HEADER]) == {"AGR-CONTACT": "fire-protection review 消防审查"}
    planning = dict(topics["deliver.planning"][0].headers)
    assert routing.AGREEMENT_HEADER not in planning and routing.PURPOSE_HEADER not in planning
    audit = json.loads(topics["audit.exchange"][0].value)
    assert audit["purposes"] == {"housing": {"AGR-CONTACT": "fire-protection review 消防审查"}}


def test_no_purpose_travels_when_the_granted_fields_are_not_in_the_record() -> None:
    record = encode(opinion_issued(), source="/concord/planning")
    routed = route(ingress(record, "planning"), REGISTRY, OnlyContactFor("bureau"), T0, LIMIT)
    [delivered] = by_topic(routed.records)["deliver.bureau"]
    assert routing.PURPOSE_HEADER not in dict(delivered.headers)
    assert "purposes" not in json.loads(by_topic(routed.records)["audit.exchange"][0].value)


def test_the_audit_entry_holds_the_sha256_of_the_exact_bytes_delivered_to_each_consumer() -> None:
    record = encode(case_submitted(), source="/concord/bureau")
    routed = route(ingress(record, "bureau"), REGISTRY, OnlyContactFor("housing"), T0, LIMIT)
    topics = by_topic(routed.records)
    audit = json.loads(topics["audit.exchange"][0].value)
    delivered = {t.removeprefix("deliver."): out.value for t, [out] in topics.items() if t.startswith("deliver.")}
    assert set(audit["delivered_sha256"]) == set(audit["delivered"]) == set(delivered)
    assert audit["delivered_sha256"] == {c: hashlib.sha256(v).hexdigest() for c, v in delivered.items()}
    assert audit["delivered_sha256"]["housing"] != audit["delivered_sha256"]["planning"]  # they see other fields


def test_the_audit_entry_names_the_fields_each_consumer_received_masked() -> None:
    record = encode(case_submitted(), source="/concord/bureau")
    routed = route(ingress(record, "bureau"), REGISTRY, OnlyContactFor("housing"), T0, LIMIT)
    topics = by_topic(routed.records)
    audit = json.loads(topics["audit.exchange"][0].value)
    without = {t.removeprefix("deliver.") for t in topics if t.startswith("deliver.")} - {"housing"}
    assert without and audit["masked"] == {c: ["contact_person", "contact_phone"] for c in without}
    for consumer in without:  # masked, so not among the fields received in clear
        assert not {"contact_person", "contact_phone"} & set(audit["delivered"][consumer])
    assert {"contact_person", "contact_phone"} <= set(audit["delivered"]["housing"])  # its agreement: in clear


def test_a_department_may_not_publish_a_contract_it_neither_owns_nor_is_delegated() -> None:
    record = encode(case_submitted(), source="/concord/planning")
    routed = route(ingress(record, "planning"), REGISTRY, NoAgreements(), T0, LIMIT)
    assert routed.rejection is not None and routed.rejection.reason is Reason.PRODUCER_NOT_AUTHORISED
    assert not [r for r in routed.records if r.topic.startswith(("shared.", "deliver.housing"))]


def test_delegated_publishers_may_publish() -> None:
    record = encode(opinion_issued(), source="/concord/planning")
    routed = route(ingress(record, "planning"), REGISTRY, NoAgreements(), T0, LIMIT)
    assert routed.rejection is None
    delivered = json.loads(by_topic(routed.records)["deliver.bureau"][0].value)
    assert "officer" not in delivered


def test_a_malformed_payload_is_dead_lettered_with_its_reason_and_the_sender_told() -> None:
    record = encode_payload(b'{"case_id": "G-1", oops', contract_id="bureau.opinion-issued", version=1,
                            subject="G-1", source="/concord/planning", id="bad-1")
    routed = route(ingress(record, "planning", offset=42), REGISTRY, NoAgreements(), T0, LIMIT)
    assert routed.rejection is not None and routed.rejection.reason is Reason.MALFORMED_PAYLOAD
    topics = by_topic(routed.records)
    assert set(topics) == {"deadletter.planning", "deliver.planning", "audit.exchange"}
    dead = topics["deadletter.planning"][0]
    assert dead.value == record.value  # the original bytes
    assert dict(dead.headers)[REASON_HEADER] == b"malformed_payload"
    notice = json.loads(topics["deliver.planning"][0].value)
    assert notice["event_id"] == "bad-1" and notice["reason"] == "malformed_payload"
    assert notice["ingress_offset"] == 42
    assert json.loads(topics["audit.exchange"][0].value)["reason"] == "malformed_payload"


def test_schema_violations_are_named() -> None:
    payload = opinion_issued().model_dump(mode="json") | {"decision": "maybe", "extra": 1}
    record = encode_payload(json.dumps(payload).encode(), contract_id="bureau.opinion-issued", version=1,
                            subject="G-TEST-1", source="/concord/planning")
    routed = route(ingress(record, "planning"), REGISTRY, NoAgreements(), T0, LIMIT)
    assert routed.rejection is not None and routed.rejection.reason is Reason.SCHEMA_VIOLATION
    assert "decision" in routed.rejection.detail and "extra" in routed.rejection.detail
    dead = by_topic(routed.records)["deadletter.planning"][0]
    assert b"decision" in dict(dead.headers)[DETAIL_HEADER]


def test_unknown_contract_versions_and_oversized_payloads_are_refused() -> None:
    record = encode_payload(b"{}", contract_id="bureau.opinion-issued", version=9, subject="G", source="/x")
    assert route(ingress(record, "planning"), REGISTRY, NoAgreements(), T0, LIMIT).rejection.reason \
        is Reason.UNKNOWN_CONTRACT  # type: ignore[union-attr]
    record = encode(opinion_issued(), source="/concord/planning")
    routed = route(ingress(record, "planning"), REGISTRY, NoAgreements(), T0, len(record.value) - 1)
    assert routed.rejection is not None and routed.rejection.reason is Reason.PAYLOAD_TOO_LARGE


def test_a_subject_that_differs_from_the_payload_case_is_refused() -> None:
    good = encode(opinion_issued(), source="/concord/planning")
    headers = [(k, b"G-OTHER" if k == "ce_subject" else v) for k, v in good.headers]
    routed = route(IngressRecord("ingress.planning", 0, 1, b"G-OTHER", good.value, headers, "planning"),
                   REGISTRY, NoAgreements(), T0, LIMIT)
    assert routed.rejection is not None and routed.rejection.reason is Reason.SCHEMA_VIOLATION


def test_an_addressed_event_to_a_non_consumer_is_refused() -> None:
    record = encode(opinion_requested(department="coordination"), source="/concord/bureau")
    routed = route(ingress(record, "bureau"), REGISTRY, NoAgreements(), T0, LIMIT)
    assert routed.rejection is not None and "department" in routed.rejection.detail


def test_a_record_without_any_cloudevents_header_is_refused_and_the_notice_still_has_a_subject() -> None:
    record = IngressRecord("ingress.planning", 2, 9, None, b"{not json", [], "planning")
    routed = route(record, REGISTRY, NoAgreements(), T0, LIMIT)
    assert routed.rejection is not None and routed.rejection.reason is Reason.MALFORMED_ENVELOPE
    notice = json.loads(by_topic(routed.records)["deliver.planning"][0].value)
    assert notice["subject"] == "ingress.planning/2/9" and notice["event_id"] == ""


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                         max_size=3), max_leaves=6)
CONTRACTS = [*REGISTRY, NESTED_VERSION]


@given(st.sampled_from(CONTRACTS), st.data())
def test_a_projection_that_only_leaves_fields_out_gives_what_the_whole_projection_gives(
        contract: ContractVersion, data: st.DataObject) -> None:
    """``project`` leaves top-level fields out without going through every member when that is all a consumer's
    projection does (``ContractVersion.cut_alone``): the bytes, and what is masked, are those of ``projected``."""
    granted = st.sets(st.sampled_from(sorted(contract.conditional))) if contract.conditional else st.just(set())
    visible = contract.unconditional | data.draw(granted)
    names = [*sorted(contract.members), "not-declared"]
    payload = data.draw(st.dictionaries(st.sampled_from(names), JSON_VALUES, max_size=len(names)))
    original = json.dumps(payload).encode()
    masked: set[str] = set()
    masked_whole: set[str] = set()
    shown = projected(payload, contract.members, visible, MASK_KEY, masked_whole)
    assert routing.project(payload, contract, visible, original, MASK_KEY, masked) == (
        original if shown is None else orjson.dumps(shown))
    assert masked == masked_whole
