"""Masking by sharing class: what the console and `concord tail` show of a payload. Conditional and not-shared
values never come out; a value whose class cannot be determined is masked (fail closed)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contracts.base import Sharing
from contracts.bureau import CaseSubmitted
from gateway.masking import MASKS, masked
from tests.factories import case_submitted

SCHEMA = CaseSubmitted.CONTRACT.json_schema


def test_unconditional_values_show_and_conditional_ones_are_masked_by_class() -> None:
    payload = case_submitted().model_dump(mode="json")
    shown = masked(payload, SCHEMA)
    assert shown["case_id"] == payload["case_id"]
    assert shown["applicant_name"] == payload["applicant_name"]
    assert shown["project"] == payload["project"]  # an unconditional object, whole, through its $ref
    assert shown["contact_person"] == MASKS[Sharing.CONDITIONAL]
    assert shown["contact_phone"] == MASKS[Sharing.CONDITIONAL]
    text = json.dumps(shown, ensure_ascii=False)
    assert payload["contact_person"] not in text and payload["contact_phone"] not in text


def test_a_field_the_contract_does_not_declare_is_masked() -> None:
    shown = masked({"case_id": "G-1", "secret": "s3cr3t", "project": {"name": "x", "hidden": "h1dden"}}, SCHEMA)
    assert shown["case_id"] == "G-1"
    assert shown["secret"] == MASKS[None]
    assert shown["project"] == {"name": "x", "hidden": MASKS[None]}


def test_without_a_contract_every_value_is_masked_and_the_shape_stays() -> None:
    assert masked({"a": "x", "b": {"c": [1, 2]}}, None) == {"a": MASKS[None], "b": {"c": MASKS[None]}}
    assert masked("plain text", None) == MASKS[None]
    assert masked([1, 2], None) == MASKS[None]


NESTED: dict[str, Any] = {
    "type": "object",
    "$defs": {"Person": {"type": "object", "properties": {
        "name": {"type": "string"}, "id_number": {"type": "string", "x-sharing": "not_shared"}}}},
    "properties": {
        "people": {"type": "array", "x-sharing": "unconditional", "items": {"$ref": "#/$defs/Person"}},
        "maybe": {"x-sharing": "unconditional", "anyOf": [
            {"type": "null"},
            {"type": "object", "properties": {"code": {"type": "string", "x-sharing": "conditional"}}}]},
        "odd": {"type": "string", "x-sharing": "secret-ish"},
        "broken": {"$ref": "#/$defs/Nowhere"},
        "free": {"type": "object", "x-sharing": "unconditional"},
    },
}


def test_nested_classes_arrays_unions_and_unknown_classes() -> None:
    payload = {"people": [{"name": "张三", "id_number": "110101199003074512"}], "maybe": {"code": "C-9"},
               "odd": "o", "broken": "b", "free": {"k": "v"}}
    shown = masked(payload, NESTED)
    assert shown == {
        "people": [{"name": "张三", "id_number": MASKS[Sharing.NOT_SHARED]}],
        "maybe": {"code": MASKS[Sharing.CONDITIONAL]},
        "odd": MASKS[None],  # a class the masker does not know
        "broken": MASKS[None],  # a top-level field without a class of its own
        "free": {"k": "v"},  # a free-form object: its members take its class
    }


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=3), max_leaves=20)


@given(st.dictionaries(st.sampled_from(["case_id", "contact_phone", "contact_person", "zz"]), json_values,
                       min_size=1))
def test_no_value_of_a_conditional_or_undeclared_field_comes_out(payload: dict[str, Any]) -> None:
    shown = masked(payload, SCHEMA)
    assert set(shown) == set(payload)
    for key in ("contact_phone", "contact_person", "zz"):
        if key in payload:
            assert shown[key] in MASKS.values()
