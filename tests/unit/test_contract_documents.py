"""A contract version as a file hands it in, and how two versions' schemas differ."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.bureau import CaseSubmitted
from contracts.documents import ContractDocument, DocumentError, contract_document
from contracts.jsondiff import Edit, JsonChange, json_changes

SCHEMA = CaseSubmitted.CONTRACT.json_schema


def test_a_contract_schema_names_its_contract_and_version_in_x_contract() -> None:
    document = contract_document(copy.deepcopy(SCHEMA))
    assert document == ContractDocument("bureau.case-submitted", 1, SCHEMA)


def test_a_registration_body_is_read_as_the_schema_it_wraps() -> None:
    assert contract_document({"schema": copy.deepcopy(SCHEMA)}) == contract_document(copy.deepcopy(SCHEMA))
    with pytest.raises(DocumentError, match="is not a registration body"):
        contract_document({"schema": SCHEMA, "version": 2})


def test_a_version_left_out_is_left_to_the_registry() -> None:
    schema = copy.deepcopy(SCHEMA)
    del schema["x-contract"]["version"]
    assert contract_document(schema).version is None


@pytest.mark.parametrize("version", ["2", 0, -1, True, 1.5])
def test_a_version_must_be_a_positive_integer(version: Any) -> None:
    schema = copy.deepcopy(SCHEMA)
    schema["x-contract"]["version"] = version
    with pytest.raises(DocumentError, match="a version is a positive integer"):
        contract_document(schema)


def test_the_contract_comes_from_x_contract_or_the_command_and_both_must_agree() -> None:
    schema = copy.deepcopy(SCHEMA)
    del schema["x-contract"]["id"]
    with pytest.raises(DocumentError, match="--contract ID"):
        contract_document(schema)
    given_id = contract_document(schema, "bureau.case-submitted")
    assert given_id.contract_id == "bureau.case-submitted"
    assert given_id.schema["x-contract"]["id"] == "bureau.case-submitted"
    assert "id" not in schema["x-contract"]  # the caller's document is left as it was
    with pytest.raises(DocumentError, match=r"not of market\.licence"):
        contract_document(copy.deepcopy(SCHEMA), "market.licence")


@pytest.mark.parametrize(("content", "said"), [
    ([SCHEMA], "no JSON object"),
    ({"type": "object"}, "no x-contract"),
    ({"type": "object", "x-contract": ["bureau.case-submitted"]}, "no x-contract"),
    ({"x-contract": {"id": 7}}, "x-contract.id that is no string"),
])
def test_what_is_not_a_contract_version_is_said(content: Any, said: str) -> None:
    with pytest.raises(DocumentError, match=said):
        contract_document(content)


# --- how two versions differ ----------------------------------------------------------------------------------------


def test_the_same_schema_has_no_changes() -> None:
    assert json_changes(SCHEMA, copy.deepcopy(SCHEMA)) == []


def test_fields_added_removed_and_changed_are_named_by_json_pointer() -> None:
    new = copy.deepcopy(SCHEMA)
    new["properties"]["capital"] = {"type": "number", "x-sharing": "unconditional"}
    del new["properties"]["contact_phone"]["x-legal-basis"]
    new["$defs"]["Project"]["properties"]["name"]["maxLength"] = 500
    old_length = SCHEMA["$defs"]["Project"]["properties"]["name"]["maxLength"]
    assert json_changes(SCHEMA, new) == [  # in the order of the names, whatever order the documents keep
        JsonChange(Edit.CHANGED, "#/$defs/Project/properties/name/maxLength", old_length, 500),
        JsonChange(Edit.ADDED, "#/properties/capital", new=new["properties"]["capital"]),
        JsonChange(Edit.REMOVED, "#/properties/contact_phone/x-legal-basis",
                   SCHEMA["properties"]["contact_phone"]["x-legal-basis"]),
    ]
    assert [str(c).split(":")[0] for c in json_changes(SCHEMA, new)] == [
        "changed #/$defs/Project/properties/name/maxLength", "added   #/properties/capital",
        "removed #/properties/contact_phone/x-legal-basis"]
    assert json_changes(dict(reversed(SCHEMA.items())), new) == json_changes(SCHEMA, new)


def test_lists_of_plain_values_compare_as_sets_and_other_lists_item_by_item() -> None:
    old = {"required": ["a", "b", "c"], "anyOf": [{"type": "string"}, {"type": "null"}]}
    new = {"required": ["a", "x", "b"], "anyOf": [{"type": "integer"}, {"type": "null"}, {"const": 1}]}
    assert [str(c) for c in json_changes(old, new)] == [
        'changed #/anyOf/0/type: "string" -> "integer"',
        'added   #/anyOf/2: {"const":1}',
        'removed #/required: "c"',
        'added   #/required: "x"',
    ]
    assert [str(c) for c in json_changes(old, {**old, "required": ["c", "b", "a"]})] == [
        'changed #/required: ["a","b","c"] -> ["c","b","a"]']


def test_json_types_count_and_pointer_tokens_are_escaped() -> None:
    assert [str(c) for c in json_changes({"a/b~c": 1}, {"a/b~c": 1.0})] == ["changed #/a~1b~0c: 1 -> 1.0"]
    assert json_changes([1], [True]) == [JsonChange(Edit.REMOVED, "#", 1), JsonChange(Edit.ADDED, "#", new=True)]


def test_long_values_are_cut_short() -> None:
    line = str(json_changes({"d": "x" * 500}, {"d": "y"})[0])
    assert len(line) < 100 and line.endswith('-> "y"') and "…" in line


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=20,
)


@given(JSON, JSON)
def test_documents_differ_exactly_when_changes_are_found(old: Any, new: Any) -> None:
    same = json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)
    assert (json_changes(old, new) == []) == same
