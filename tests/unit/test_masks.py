"""Masks: what a consumer without an agreement sees of a conditional field, alone and in the gateway's projection
(unit tests, and properties over arbitrary payloads: the masked projection is valid under the consumer's view
schema and never holds a withheld clear value)."""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from contracts.base import Event, received_view
from contracts.bureau import CaseSubmitted
from contracts.market import BusinessRegistration
from contracts.masks import WITHHELD, Band, BirthYear, KeyedHash, LastCharacters, MaskError, parse_mask
from contracts.sharing import ITEMS, Member, every_member, view_schema
from gateway.registry import FORMATS, ContractVersion
from gateway.routing import project
from tests.factories import business_registration, case_submitted

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
BASIS = "《政务数据共享条例》(2025) 第十四条"


def test_last_characters_keeps_the_last_ones_and_never_the_whole_value() -> None:
    assert LastCharacters(4).apply("13812345678", KEY) == "****5678"
    assert LastCharacters(4).apply("1234567", KEY) == "****567"  # fewer than 8: half of them at most
    assert LastCharacters(4).apply("7", KEY) == WITHHELD
    assert LastCharacters(4).apply(13812345678, KEY) == WITHHELD  # not text: nothing of it


def test_a_keyed_hash_is_the_same_for_the_same_value_and_key_and_tells_nothing_without_the_key() -> None:
    token = KeyedHash().apply("张三", KEY)
    assert token == KeyedHash().apply("张三", KEY) and len(token) == 64 and "张三" not in token
    assert token != KeyedHash().apply("李四", KEY)
    assert token != KeyedHash().apply("张三", OTHER_KEY)  # another deployment's key: another token
    assert KeyedHash().apply("张三", None) == WITHHELD  # no key, no token


def test_birth_year_of_an_id_number_and_nothing_of_anything_else() -> None:
    assert BirthYear().apply("320102199001011234", KEY) == "1990"
    assert BirthYear().apply("11010120051231002X", KEY) == "2005"
    assert BirthYear().apply("320102199002301234", KEY) == WITHHELD  # 30 February: no birth date, no year
    assert BirthYear().apply("3201021990010112", KEY) == WITHHELD


def test_a_band_of_registered_capital() -> None:
    band = Band((100, 1000, 5000, 10000), "万")
    assert [band.apply(v, KEY) for v in (50, 100, 1234.5, 5000, 20000)] == \
        ["<100万", "100-1000万", "1000-5000万", "5000-10000万", "≥10000万"]
    assert band.apply(float("nan"), KEY) == band.apply(True, KEY) == band.apply("500", KEY) == WITHHELD


def test_masks_are_read_from_what_the_schema_declares_and_an_unknown_one_is_refused() -> None:
    for mask in (LastCharacters(3), KeyedHash(), BirthYear(), Band((1, 2.5), "万")):
        assert parse_mask(mask.declared()) == mask
    for wrong in ({"kind": "reverse"}, "last-characters", {"kind": "last-characters", "keep": 0},
                  {"kind": "keyed-hash", "salt": "x"}, {"kind": "band", "bounds": [5, 1]}, {"kind": "band"}):
        with pytest.raises(MaskError):
            parse_mask(wrong)


@given(st.text(max_size=40), st.integers(1, 16))
def test_last_characters_shows_at_most_keep_and_at_most_half(value: str, keep: int) -> None:
    masked = LastCharacters(keep).apply(value, KEY)
    shown = masked.removeprefix(WITHHELD)
    assert masked.startswith(WITHHELD) and value.endswith(shown)
    assert len(shown) <= min(keep, len(value) // 2)


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers())
def test_a_band_is_one_of_its_labels_never_the_number(value: float) -> None:
    band = Band((100, 1000, 5000), "万")
    labels = {"<100万", "100-1000万", "1000-5000万", "≥5000万", WITHHELD}
    assert band.apply(value, KEY) in labels


# --- the projection, on the contracts in code and on nested members -------------------------------------------

NAMES = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1, max_size=6)
PHONES = st.text("0123456789", min_size=7, max_size=15)
ID_NUMBERS = st.builds(lambda area, born, seq: f"{area}{born:%Y%m%d}{seq}", st.sampled_from(["320102", "110101"]),
                       st.dates(date(1930, 1, 1), date(2010, 12, 31)), st.from_regex(r"\A\d{3}[\dX]\Z"))

NESTED: dict[str, Any] = {
    "title": "OwnersDeclared", "type": "object", "additionalProperties": False,
    "$defs": {
        "Person": {"type": "object", "additionalProperties": False, "properties": {
            "name": {"type": "string"},
            "phone": {"type": "string", "x-sharing": "conditional", "x-legal-basis": BASIS,
                      "x-mask": {"kind": "last-characters", "keep": 4}},
            "id_number": {"type": "string", "x-sharing": "conditional", "x-legal-basis": BASIS,
                          "x-mask": {"kind": "birth-year"}},
            "note": {"type": "string", "x-sharing": "not_shared"},
        }, "required": ["name", "phone", "id_number", "note"]},
    },
    "properties": {
        "case_id": {"type": "string", "x-sharing": "unconditional"},
        "owner": {"$ref": "#/$defs/Person", "x-sharing": "unconditional"},
        "deputy": {"anyOf": [{"$ref": "#/$defs/Person"}, {"type": "null"}], "x-sharing": "unconditional"},
        "capital": {"type": "number", "x-sharing": "conditional", "x-legal-basis": BASIS,
                    "x-mask": {"kind": "band", "bounds": [100, 1000, 5000], "unit": "万"}},
        "contacts": {"type": "array", "x-sharing": "unconditional", "items": {
            "type": "object", "properties": {
                "name": {"type": "string", "x-sharing": "conditional", "x-legal-basis": BASIS,
                         "x-mask": {"kind": "keyed-hash"}},
                "role": {"type": "string"}},
            "required": ["name", "role"]}},
        "remarks": {"type": "array", "x-sharing": "unconditional",
                    "items": {"type": "string", "x-sharing": "conditional", "x-legal-basis": BASIS}},
        "officer": {"type": "string", "x-sharing": "not_shared"},
    },
    "required": ["case_id", "owner", "deputy", "capital", "contacts", "remarks", "officer"],
    "x-contract": {"id": "market.owners-declared", "version": 1, "owner": "market", "publishers": ["market"],
                   "consumers": ["bureau", "housing"], "subject": "case_id"},
}
NESTED_VERSION = ContractVersion.from_schema(NESTED)
PEOPLE = st.fixed_dictionaries({"name": NAMES, "phone": PHONES, "id_number": ID_NUMBERS, "note": NAMES})
NESTED_PAYLOADS = st.fixed_dictionaries({
    "case_id": st.from_regex(r"\AG-[0-9]{1,6}\Z"), "owner": PEOPLE, "deputy": st.none() | PEOPLE,
    "capital": st.floats(0, 1e6),
    "contacts": st.lists(st.fixed_dictionaries({"name": NAMES, "role": NAMES}), max_size=4),
    "remarks": st.lists(NAMES, max_size=4), "officer": NAMES,
})


def values_at(value: Any, path: str) -> list[Any]:
    """The values a payload holds at a member's path (``*``: each item of an array)."""
    found = [value]
    for step in path.split("/"):
        found = [v for f in found for v in ((f if isinstance(f, list) else []) if step == ITEMS
                                            else ([f[step]] if isinstance(f, dict) and step in f else []))]
    return found


def check_projection(contract: ContractVersion, payload: dict[str, Any], granted: frozenset[str],
                     model: type[Event] | None = None) -> dict[str, Any]:
    """The projection as a consumer granted these paths receives it, checked: valid under the consumer's view
    schema (and model), clear where granted or unconditional, masked or cut everywhere else."""
    assert not contract.violations(payload)
    original = json.dumps(payload).encode()
    visible = contract.unconditional | (granted & contract.conditional)
    shown = json.loads(project(payload, contract, visible, original, KEY))
    assert not list(Draft202012Validator(view_schema(contract.schema), format_checker=FORMATS).iter_errors(shown))
    if model is not None:
        received_view(model).model_validate(shown)
    members: list[Member] = [m for top in contract.members.values() for m in top.walk() if m.declared]
    for member in members:
        clear, seen = values_at(payload, member.path), values_at(shown, member.path)
        if member.path in visible and all(p in visible for p in _holders(member.path, members)):
            assert member.classed_below or seen == clear, member.path  # what holds classed members: checked there
        elif member.mask is not None and member.path not in visible:
            assert all(isinstance(s, str) for s in seen), member.path
            for c, s in zip(clear, seen, strict=False):
                assert s == member.mask.apply(c, KEY) and s != c and json.dumps(c, ensure_ascii=False)[1:-1] not in s
        elif member.path not in visible:
            assert seen == [], member.path  # cut
    return shown  # type: ignore[no-any-return]


def _holders(path: str, members: list[Member]) -> list[str]:
    """The declared members that hold a member (its path's prefixes)."""
    return [m.path for m in members if path.startswith(m.path + "/")]


@given(NESTED_PAYLOADS, st.sets(st.sampled_from(sorted(NESTED_VERSION.conditional))))
def test_a_masked_projection_of_nested_members_is_valid_for_the_consumer_and_holds_no_withheld_value(
        payload: dict[str, Any], granted: set[str]) -> None:
    shown = check_projection(NESTED_VERSION, payload, frozenset(granted))
    assert "officer" not in shown and "note" not in shown["owner"]  # not shared: never, nested or not
    if "remarks/*" not in granted:
        assert shown["remarks"] == []  # conditional items without a mask are cut from the array


@given(NAMES, PHONES, NAMES, st.sets(st.sampled_from(["contact_person", "contact_phone"])))
def test_a_masked_case_submission_is_valid_for_its_consumers(person: str, phone: str, agent: str,
                                                             granted: set[str]) -> None:
    payload = case_submitted().model_copy(update={"contact_person": person, "contact_phone": phone,
                                                  "agent": agent}).model_dump(mode="json")
    contract = ContractVersion.from_schema(CaseSubmitted.CONTRACT.json_schema)
    shown = check_projection(contract, payload, frozenset(granted), CaseSubmitted)
    assert "agent" not in shown


@given(NAMES, ID_NUMBERS, st.floats(0, 1e7), st.booleans())
def test_a_masked_business_registration_is_valid_for_its_consumers(representative: str, id_number: str,
                                                                   capital: float, granted: bool) -> None:
    payload = business_registration(legal_representative=representative, representative_id_number=id_number,
                                    registered_capital_10k_cny=capital).model_dump(mode="json")
    contract = ContractVersion.from_schema(BusinessRegistration.CONTRACT.json_schema)
    check_projection(contract, payload, frozenset({"legal_representative"} if granted else ()), BusinessRegistration)


def test_the_contracts_in_code_declare_masks_on_the_applicants_contact_and_the_legal_representative() -> None:
    declared = {(c.id, m.path): m.mask for c in (CaseSubmitted.CONTRACT, BusinessRegistration.CONTRACT)
                for m in every_member(c.json_schema) if m.mask is not None}
    assert declared == {("bureau.case-submitted", "contact_phone"): LastCharacters(4),
                        ("bureau.case-submitted", "contact_person"): KeyedHash(),
                        ("market.business-registration", "legal_representative"): KeyedHash()}


def test_a_consumer_with_the_agreement_gets_the_real_value_and_one_without_gets_the_mask() -> None:
    payload = {
        "case_id": "G-1", "owner": {"name": "王", "phone": "13812345678", "id_number": "320102199001011234",
                                    "note": "内部"},
        "deputy": None, "capital": 1234.0, "contacts": [{"name": "李四", "role": "经办"}], "remarks": ["备注"],
        "officer": "赵"}
    original = json.dumps(payload).encode()
    without = json.loads(project(payload, NESTED_VERSION, NESTED_VERSION.unconditional, original, KEY))
    assert without == {"case_id": "G-1", "owner": {"name": "王", "phone": "****5678", "id_number": "1990"},
                       "deputy": None, "capital": "1000-5000万",
                       "contacts": [{"name": KeyedHash().apply("李四", KEY), "role": "经办"}], "remarks": []}
    granted = NESTED_VERSION.unconditional | {"owner/phone", "capital", "remarks/*"}
    with_agreement = json.loads(project(payload, NESTED_VERSION, granted, original, KEY))
    assert with_agreement["owner"]["phone"] == "13812345678" and with_agreement["capital"] == 1234.0
    assert with_agreement["owner"]["id_number"] == "1990" and with_agreement["remarks"] == ["备注"]
    record = json.loads(project(payload, NESTED_VERSION, NESTED_VERSION.shareable, original, KEY))  # the exchange's
    expected = copy.deepcopy(payload)
    del expected["officer"], expected["owner"]["note"]  # not shared: cut from the record too, nested or not
    assert record == expected
