"""Contract evolution under Confluent Schema Registry's JSON Schema compatibility rules."""

from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from contracts.compatibility import (
    COMPATIBLE_CHANGES,
    Change,
    Difference,
    Mode,
    SchemaError,
    diff,
    incompatibilities,
    is_compatible,
)
from deploy.cli import main

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}
NULL: Schema = {"type": "null"}


def obj(properties: Schema, required: tuple[str, ...] = (), **keywords: Any) -> Schema:
    return {"type": "object", "properties": properties, "required": list(required), **keywords}


def closed(properties: Schema, required: tuple[str, ...] = (), **keywords: Any) -> Schema:
    return obj(properties, required, additionalProperties=False, **keywords)


def array(**keywords: Any) -> Schema:
    return {"type": "array", **keywords}


def with_defs(root: Schema, **defs: Schema) -> Schema:
    return {**root, "$defs": defs}


# --- pydantic v2 models, each version a separate class of the same name (so the same title) -------------------------


def person_v1() -> Schema:
    class Person(BaseModel):
        name: str
        age: int

    return Person.model_json_schema()


def person_with_nickname() -> Schema:
    class Person(BaseModel):
        name: str
        age: int
        nickname: str | None = None

    return Person.model_json_schema()


def person_age_as_text() -> Schema:
    class Person(BaseModel):
        name: str
        age: str

    return Person.model_json_schema()


def person_closed() -> Schema:
    class Person(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str
        age: int

    return Person.model_json_schema()


def person_closed_with_nickname() -> Schema:
    class Person(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str
        age: int
        nickname: str | None = None

    return Person.model_json_schema()


def person_closed_without_age() -> Schema:
    class Person(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str

    return Person.model_json_schema()


def filing(*, postcode: bool = False, statuses: tuple[str, ...] = ("open", "closed")) -> Schema:
    """A closed model with a nested closed model and an enum, both in ``$defs`` behind ``$ref``."""
    members = {s.upper(): s for s in statuses}
    Status = Enum("Status", members, type=str)  # type: ignore[misc]

    class Address(BaseModel):
        model_config = ConfigDict(extra="forbid")
        street: str

    class AddressWithPostcode(BaseModel):
        model_config = ConfigDict(extra="forbid", title="Address")
        street: str
        postcode: str

    address_model = AddressWithPostcode if postcode else Address

    class Filing(BaseModel):
        model_config = ConfigDict(extra="forbid")
        status: Status
        address: address_model = Field(description="where the filing was made")  # type: ignore[valid-type]

    return Filing.model_json_schema()


def measurement(number_type: type, name_length: int = 10) -> Schema:
    class Measurement(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: Annotated[str, Field(max_length=name_length)]
        value: number_type | None = None  # type: ignore[valid-type]
        samples: list[number_type] = Field(default_factory=list)  # type: ignore[valid-type]

    return Measurement.model_json_schema()


# --- the table ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    old: Schema
    new: Schema
    changes: set[str]  # every difference from old to new, "CHANGE_NAME path"
    compatible: str  # the modes among backward, forward and full under which new may follow old

    def modes(self) -> set[Mode]:
        return {Mode(word.upper()) for word in self.compatible.split()}


ALL = "backward forward full"

NODE = {
    "type": "object",
    "properties": {"value": INTEGER, "children": array(items={"$ref": "#/$defs/Node"})},
}
NODE_NUMBER = {
    "type": "object",
    "properties": {"value": NUMBER, "children": array(items={"$ref": "#/$defs/Node"})},
}
ADDRESS = closed({"street": STRING})

CASES = [
    # Open content model (additionalProperties absent or true): old data may hold any undeclared property.
    Case("open: optional property added", obj({"a": STRING}), obj({"a": STRING, "b": STRING}),
         {"OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b"}, "forward"),
    Case("open: required property added", obj({"a": STRING}), obj({"a": STRING, "b": STRING}, ("b",)),
         {"REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b"}, "forward"),
    Case("open: required property with default added", obj({"a": STRING}),
         obj({"a": STRING, "b": {**STRING, "default": "x"}}, ("b",)),
         {"REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b"}, "forward"),
    Case("open: property with empty schema added", obj({"a": STRING}),
         obj({"a": STRING, "b": {"description": "free"}}),
         {"PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b"}, ALL),
    Case("open: property removed", obj({"a": STRING, "b": INTEGER}), obj({"a": STRING}),
         {"PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL #/properties/b"}, "backward"),
    Case("open: additionalProperties true is open too", obj({"a": STRING}, additionalProperties=True),
         obj({"a": STRING, "b": STRING}, additionalProperties=True),
         {"OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b"}, "forward"),
    # Closed content model (additionalProperties false): old data never holds an undeclared property.
    Case("closed: optional property added", closed({"a": STRING}), closed({"a": STRING, "b": STRING}),
         {"OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b"}, "backward"),
    Case("closed: required property added", closed({"a": STRING}), closed({"a": STRING, "b": STRING}, ("b",)),
         {"REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b"}, ""),
    Case("closed: required property with default added", closed({"a": STRING}),
         closed({"a": STRING, "b": {**STRING, "default": "x"}}, ("b",)),
         {"REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b"}, "backward"),
    Case("closed: property removed", closed({"a": STRING, "b": INTEGER}), closed({"a": STRING}),
         {"PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL #/properties/b"}, "forward"),
    Case("closed: property that was false removed", closed({"a": STRING, "b": False}), closed({"a": STRING}),
         {"PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL #/properties/b"}, ALL),
    Case("open model closed", obj({"a": STRING}), closed({"a": STRING}),
         {"ADDITIONAL_PROPERTIES_REMOVED #/additionalProperties"}, "forward"),
    Case("closed model opened", closed({"a": STRING}), obj({"a": STRING}),
         {"ADDITIONAL_PROPERTIES_ADDED #/additionalProperties"}, "backward"),
    # Partially open content model (additionalProperties a schema, or patternProperties).
    Case("partially open: added property covered", obj({"a": STRING}, additionalProperties=STRING),
         obj({"a": STRING, "b": STRING}, additionalProperties=STRING),
         {"PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/properties/b",
          "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b"}, ALL),
    Case("partially open: added property not covered", obj({"a": STRING}, additionalProperties=STRING),
         obj({"a": STRING, "b": INTEGER}, additionalProperties=STRING),
         {"TYPE_CHANGED #/properties/b",
          "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/properties/b",
          "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b"}, ""),
    Case("partially open: removed property covered by a pattern",
         closed({"a": STRING, "x_count": INTEGER}, patternProperties={"^x_": INTEGER}),
         closed({"a": STRING}, patternProperties={"^x_": INTEGER}),
         {"PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/properties/x_count"}, ALL),
    Case("partially open: name outside every pattern is closed",
         closed({"a": STRING}, patternProperties={"^x_": INTEGER}),
         closed({"a": STRING, "y": INTEGER}, patternProperties={"^x_": INTEGER}),
         {"OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/y"}, "backward"),
    Case("additionalProperties schema added", obj({}), obj({}, additionalProperties=STRING),
         {"ADDITIONAL_PROPERTIES_NARROWED #/additionalProperties"}, "forward"),
    Case("additionalProperties schema changed", obj({}, additionalProperties=STRING),
         obj({}, additionalProperties=INTEGER), {"TYPE_CHANGED #/additionalProperties"}, ""),
    # Required, counts, dependencies.
    Case("property made required", obj({"a": STRING}), obj({"a": STRING}, ("a",)),
         {"REQUIRED_ATTRIBUTE_ADDED #/required/a"}, "forward"),
    Case("property with default made required", obj({"a": {**STRING, "default": "x"}}),
         obj({"a": {**STRING, "default": "x"}}, ("a",)),
         {"REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED #/required/a"}, ALL),
    Case("maxProperties decreased", obj({}, maxProperties=5), obj({}, maxProperties=3),
         {"MAX_PROPERTIES_DECREASED #/maxProperties"}, "forward"),
    Case("minProperties added", obj({}), obj({}, minProperties=1), {"MIN_PROPERTIES_ADDED #/minProperties"},
         "forward"),
    Case("property dependency extended", {"dependencies": {"a": ["b"]}}, {"dependencies": {"a": ["b", "c"]}},
         {"DEPENDENCY_ARRAY_EXTENDED #/dependencies/a"}, "forward"),
    Case("schema dependency removed", {"dependencies": {"a": {"required": ["b"]}}}, {"dependencies": {}},
         {"DEPENDENCY_SCHEMA_REMOVED #/dependencies/a"}, "backward"),
    # Numbers.
    Case("maximum decreased", {**NUMBER, "maximum": 10}, {**NUMBER, "maximum": 5},
         {"MAXIMUM_DECREASED #/maximum"}, "forward"),
    Case("maximum increased", {**NUMBER, "maximum": 5}, {**NUMBER, "maximum": 10},
         {"MAXIMUM_INCREASED #/maximum"}, "backward"),
    Case("minimum added", INTEGER, {**INTEGER, "minimum": 0}, {"MINIMUM_ADDED #/minimum"}, "forward"),
    Case("exclusiveMaximum increased", {**NUMBER, "exclusiveMaximum": 10}, {**NUMBER, "exclusiveMaximum": 20},
         {"EXCLUSIVE_MAXIMUM_INCREASED #/exclusiveMaximum"}, "backward"),
    Case("exclusiveMinimum increased", {**NUMBER, "exclusiveMinimum": 0}, {**NUMBER, "exclusiveMinimum": 1},
         {"EXCLUSIVE_MINIMUM_INCREASED #/exclusiveMinimum"}, "forward"),
    Case("multipleOf expanded", {**INTEGER, "multipleOf": 2}, {**INTEGER, "multipleOf": 4},
         {"MULTIPLE_OF_EXPANDED #/multipleOf"}, "forward"),
    Case("multipleOf changed", {**INTEGER, "multipleOf": 2}, {**INTEGER, "multipleOf": 3},
         {"MULTIPLE_OF_CHANGED #/multipleOf"}, ""),
    Case("multipleOf reduced, decimals", {**NUMBER, "multipleOf": 0.5}, {**NUMBER, "multipleOf": 0.25},
         {"MULTIPLE_OF_REDUCED #/multipleOf"}, "backward"),
    Case("integer to number", INTEGER, NUMBER, {"TYPE_EXTENDED #/"}, "backward"),
    Case("string to integer", STRING, INTEGER, {"TYPE_CHANGED #/"}, ""),
    # Strings.
    Case("maxLength added", STRING, {**STRING, "maxLength": 10}, {"MAX_LENGTH_ADDED #/maxLength"}, "forward"),
    Case("maxLength increased", {**STRING, "maxLength": 10}, {**STRING, "maxLength": 20},
         {"MAX_LENGTH_INCREASED #/maxLength"}, "backward"),
    Case("minLength increased", {**STRING, "minLength": 1}, {**STRING, "minLength": 2},
         {"MIN_LENGTH_INCREASED #/minLength"}, "forward"),
    Case("pattern added", STRING, {**STRING, "pattern": "^[A-Z]+$"}, {"PATTERN_ADDED #/pattern"}, "forward"),
    Case("pattern changed", {**STRING, "pattern": "^[A-Z]+$"}, {**STRING, "pattern": "^[a-z]+$"},
         {"PATTERN_CHANGED #/pattern"}, ""),
    # Enums and const.
    Case("enum extended", {"enum": ["a", "b"]}, {"enum": ["a", "b", "c"]}, {"ENUM_ARRAY_EXTENDED #/enum"},
         "backward"),
    Case("enum narrowed", {"enum": ["a", "b"]}, {"enum": ["a"]}, {"ENUM_ARRAY_NARROWED #/enum"}, "forward"),
    Case("enum changed", {"enum": ["a", "b"]}, {"enum": ["a", "c"]}, {"ENUM_ARRAY_CHANGED #/enum"}, ""),
    Case("typed enum extended: an implicit allOf of enum and type", {**STRING, "enum": ["a"]},
         {**STRING, "enum": ["a", "b"]}, {"ENUM_ARRAY_EXTENDED #/allOf/0/enum"}, "backward"),
    Case("const changed", {"const": "a"}, {"const": "b"}, {"ENUM_ARRAY_CHANGED #/const"}, ""),
    # type as an array: an anyOf of one schema per type.
    Case("type made nullable", STRING, {"type": ["string", "null"]}, {"SUM_TYPE_EXTENDED #/"}, "backward"),
    Case("type array extended", {"type": ["string", "null"]}, {"type": ["string", "null", "integer"]},
         {"SUM_TYPE_EXTENDED #/"}, "backward"),
    Case("type array reordered", {"type": ["string", "null"]}, {"type": ["null", "string"]}, set(), ALL),
    Case("type array keywords apply per type", {"type": ["string", "null"], "maxLength": 5},
         {"type": ["string", "null"], "maxLength": 3}, {"COMBINED_TYPE_SUBSCHEMAS_CHANGED #/"}, "forward"),
    # Combined schemas.
    Case("anyOf gains a member", {"anyOf": [STRING, INTEGER]}, {"anyOf": [STRING, INTEGER, BOOLEAN]},
         {"SUM_TYPE_EXTENDED #/"}, "backward"),
    Case("oneOf loses a member", {"oneOf": [STRING, INTEGER]}, {"oneOf": [STRING]},
         {"SUM_TYPE_NARROWED #/"}, "forward"),
    Case("allOf gains a member", {"allOf": [STRING, {"minLength": 1}]},
         {"allOf": [STRING, {"minLength": 1}, {"maxLength": 5}]}, {"PRODUCT_TYPE_EXTENDED #/"}, "forward"),
    Case("anyOf member changed", {"anyOf": [STRING, INTEGER]}, {"anyOf": [STRING, BOOLEAN]},
         {"COMBINED_TYPE_SUBSCHEMAS_CHANGED #/"}, ""),
    Case("anyOf member narrowed", {"anyOf": [STRING, INTEGER]}, {"anyOf": [STRING, {**INTEGER, "maximum": 9}]},
         {"COMBINED_TYPE_SUBSCHEMAS_CHANGED #/"}, "forward"),
    Case("anyOf member widened: its compatible difference is kept", {"anyOf": [STRING, INTEGER]},
         {"anyOf": [STRING, NUMBER]}, {"TYPE_EXTENDED #/anyOf/1"}, "backward"),
    Case("duplicate members collapse", {"anyOf": [STRING, STRING, INTEGER]}, {"anyOf": [STRING, INTEGER]}, set(),
         ALL),
    Case("oneOf to anyOf", {"oneOf": [STRING, INTEGER]}, {"anyOf": [STRING, INTEGER]},
         {"COMBINED_TYPE_EXTENDED #/"}, "backward"),
    Case("anyOf to oneOf", {"anyOf": [STRING, INTEGER]}, {"oneOf": [STRING, INTEGER]},
         {"COMBINED_TYPE_CHANGED #/"}, "forward"),
    Case("singleton anyOf is its member", STRING, {"anyOf": [STRING]}, set(), ALL),
    Case("singleton allOf to singleton oneOf", {"allOf": [STRING]}, {"oneOf": [STRING]},
         {"COMBINED_TYPE_EXTENDED #/"}, ALL),
    Case("allOf reduced to one of its members", {"allOf": [STRING, {"maxLength": 5}]}, STRING,
         {"PRODUCT_TYPE_NARROWED #/"}, "backward"),
    Case("nullable made non-null", {"anyOf": [INTEGER, NULL]}, INTEGER, {"TYPE_CHANGED #/"}, "forward"),
    # not: the excluded schemas compare the other way round.
    Case("not excludes more", {"not": STRING}, {"not": {"type": ["string", "null"]}},
         {"NOT_TYPE_EXTENDED #/not"}, "forward"),
    Case("not unchanged (Confluent reports it narrowed)", {"not": STRING}, {"not": STRING},
         {"NOT_TYPE_NARROWED #/not"}, ALL),
    # Arrays.
    Case("items type changed", array(items=STRING), array(items=INTEGER), {"TYPE_CHANGED #/items"}, ""),
    Case("items schema added", array(), array(items=STRING), {"SCHEMA_ADDED #/items"}, "forward"),
    Case("maxItems decreased", array(maxItems=5), array(maxItems=3), {"MAX_ITEMS_DECREASED #/maxItems"},
         "forward"),
    Case("minItems added", array(), array(minItems=1), {"MIN_ITEMS_ADDED #/minItems"}, "forward"),
    Case("uniqueItems added", array(), array(uniqueItems=True), {"UNIQUE_ITEMS_ADDED #/uniqueItems"}, "forward"),
    Case("prefixItems: item added to open tuple", array(prefixItems=[STRING]),
         array(prefixItems=[STRING, INTEGER]), {"ITEM_ADDED_TO_OPEN_CONTENT_MODEL #/items/1"}, "forward"),
    Case("prefixItems: item added to closed tuple", array(prefixItems=[STRING], items=False),
         array(prefixItems=[STRING, INTEGER], items=False), {"ITEM_ADDED_TO_CLOSED_CONTENT_MODEL #/items/1"},
         "backward"),
    Case("prefixItems: item added covered by items", array(prefixItems=[STRING], items=INTEGER),
         array(prefixItems=[STRING, INTEGER], items=INTEGER),
         {"ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/items/1"}, ALL),
    Case("draft 7 tuple: item removed from closed tuple", array(items=[STRING, INTEGER], additionalItems=False),
         array(items=[STRING], additionalItems=False), {"ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL #/items/1"},
         "forward"),
    Case("draft 7 tuple closed", array(items=[STRING]), array(items=[STRING], additionalItems=False),
         {"ADDITIONAL_ITEMS_REMOVED #/additionalItems"}, "forward"),
    # $ref, resolved within the document.
    Case("referenced schema changed", with_defs(obj({"a": {"$ref": "#/$defs/A"}}), A=closed({"x": STRING})),
         with_defs(obj({"a": {"$ref": "#/$defs/A"}}), A=closed({"x": INTEGER})),
         {"TYPE_CHANGED #/properties/a/properties/x"}, ""),
    Case("description beside $ref is an annotation",
         with_defs(obj({"a": {"$ref": "#/$defs/A", "description": "old"}}), A=ADDRESS),
         with_defs(obj({"a": {"$ref": "#/$defs/A", "description": "new"}}), A=ADDRESS), set(), ALL),
    Case("inlined reference is the same schema", with_defs(obj({"a": {"$ref": "#/$defs/A"}}), A=ADDRESS),
         obj({"a": ADDRESS}), set(), ALL),
    Case("recursive reference", with_defs({"$ref": "#/$defs/Node"}, Node=NODE),
         with_defs({"$ref": "#/$defs/Node"}, Node=NODE_NUMBER), {"TYPE_EXTENDED #/properties/value"}, "backward"),
    # Annotations and extension keywords.
    Case("annotations and extensions changed",
         {**STRING, "title": "A", "description": "x", "examples": ["a"], "x-sharing": "unconditional"},
         {**STRING, "title": "B", "description": "y", "examples": ["b"], "x-sharing": "not_shared",
          "x-legal-basis": "article 14", "$comment": "c"},
         {"TITLE_CHANGED #/", "DESCRIPTION_CHANGED #/"}, ALL),
    Case("default changed", {**STRING, "default": "a"}, {**STRING, "default": "b"}, {"DEFAULT_CHANGED #/"}, ALL),
    Case("$id changed", {**STRING, "$id": "urn:a"}, {**STRING, "$id": "urn:b"}, {"ID_CHANGED #/"}, ALL),
    Case("format is not compared (as in Confluent)", STRING, {**STRING, "format": "date-time"}, set(), ALL),
    Case("constraint dropped to an empty schema", obj({"a": STRING}), obj({"a": {}}), set(), "backward"),
    # pydantic v2 models.
    Case("pydantic: optional field added to an open model", person_v1(), person_with_nickname(),
         {"OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/nickname"}, "forward"),
    Case("pydantic: optional field added to a closed model", person_closed(), person_closed_with_nickname(),
         {"OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/nickname"}, "backward"),
    Case("pydantic: optional field removed from a closed model", person_closed_with_nickname(),
         person_closed(), {"PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL #/properties/nickname"},
         "forward"),
    Case("pydantic: required field removed from a closed model", person_closed(), person_closed_without_age(),
         {"PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL #/properties/age"}, ""),
    Case("pydantic: field type changed", person_v1(), person_age_as_text(), {"TYPE_CHANGED #/properties/age"}, ""),
    Case("pydantic: extra=forbid", person_v1(), person_closed(),
         {"ADDITIONAL_PROPERTIES_REMOVED #/additionalProperties"}, "forward"),
    Case("pydantic: required field added to a nested model in $defs", filing(), filing(postcode=True),
         {"REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/address/properties/postcode"}, ""),
    Case("pydantic: enum member added", filing(), filing(statuses=("open", "closed", "withdrawn")),
         {"ENUM_ARRAY_EXTENDED #/properties/status/allOf/0/enum"}, "backward"),
    Case("pydantic: enum member removed", filing(), filing(statuses=("open",)),
         {"COMBINED_TYPE_SUBSCHEMAS_CHANGED #/properties/status"}, "forward"),
    Case("pydantic: int to float, in an Optional and in a list", measurement(int), measurement(float),
         {"TYPE_EXTENDED #/properties/value/anyOf/0", "TYPE_EXTENDED #/properties/samples/items"}, "backward"),
    Case("pydantic: max_length tightened", measurement(int, name_length=10), measurement(int, name_length=5),
         {"MAX_LENGTH_DECREASED #/properties/name/maxLength"}, "forward"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_differences_and_verdicts(case: Case) -> None:
    assert {str(d) for d in diff(case.old, case.new)} == case.changes
    verdicts = {mode: is_compatible(mode, [case.old], case.new) for mode in (Mode.BACKWARD, Mode.FORWARD, Mode.FULL)}
    assert {mode for mode, ok in verdicts.items() if ok} == case.modes()
    for mode, transitive in ((Mode.BACKWARD, Mode.BACKWARD_TRANSITIVE), (Mode.FORWARD, Mode.FORWARD_TRANSITIVE),
                             (Mode.FULL, Mode.FULL_TRANSITIVE)):
        assert is_compatible(transitive, [case.old], case.new) == verdicts[mode]
    assert is_compatible(Mode.NONE, [case.old], case.new)


def test_verdicts_in_the_table_are_consistent() -> None:
    for case in CASES:
        modes = case.modes()
        assert (Mode.FULL in modes) == ({Mode.BACKWARD, Mode.FORWARD} <= modes), case.id


def test_a_difference_prints_as_name_and_pointer() -> None:
    difference = Difference("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", "#/properties/foo", False)
    assert str(difference) == "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL #/properties/foo"


def test_compatibility_of_a_difference_follows_confluents_set() -> None:
    found = diff(closed({"a": STRING, "b": INTEGER}), closed({"a": {**STRING, "maxLength": 3}}))
    assert {d.type: d.compatible for d in found} == {
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL": False,
        "MAX_LENGTH_ADDED": False,
    }
    assert Change.MAX_LENGTH_INCREASED in COMPATIBLE_CHANGES
    assert Change.MAX_LENGTH_ADDED not in COMPATIBLE_CHANGES


def test_backward_takes_the_previous_version_as_original() -> None:
    old, new = closed({"a": STRING}), closed({"a": STRING, "b": STRING}, ("b",))
    assert incompatibilities(Mode.BACKWARD, [old], new) == [
        Difference("REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", "#/properties/b", False)
    ]
    assert incompatibilities(Mode.FORWARD, [old], new) == [
        Difference("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", "#/properties/b", False)
    ]
    assert [str(d) for d in incompatibilities(Mode.FULL, [old], new)] == [
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL #/properties/b",
        "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b",
    ]


# --- transitive modes -----------------------------------------------------------------------------------------------

# v2 gives `a` a default and makes it required; v3 drops the default. Each step is backward compatible with the one
# before, but v3 requires `a` of data written under v1, which may lack it.
V1 = closed({"a": STRING})
V2 = closed({"a": {**STRING, "default": "x"}}, ("a",))
V3 = closed({"a": STRING}, ("a",))


def test_transitive_modes_check_every_previous_version() -> None:
    assert is_compatible(Mode.BACKWARD, [V1], V2)
    assert is_compatible(Mode.BACKWARD, [V2], V3)
    assert is_compatible(Mode.BACKWARD, [V1, V2], V3)
    assert not is_compatible(Mode.BACKWARD_TRANSITIVE, [V1, V2], V3)
    assert [str(d) for d in incompatibilities(Mode.BACKWARD_TRANSITIVE, [V1, V2], V3)] == [
        "REQUIRED_ATTRIBUTE_ADDED #/required/a"
    ]
    assert not is_compatible(Mode.FULL_TRANSITIVE, [V1, V2], V3)


def test_non_transitive_modes_use_the_latest_version_only() -> None:
    assert is_compatible(Mode.FORWARD, [STRING, INTEGER], {**INTEGER, "maximum": 3})
    assert not is_compatible(Mode.FORWARD_TRANSITIVE, [STRING, INTEGER], {**INTEGER, "maximum": 3})


def test_repeated_differences_are_reported_once() -> None:
    found = incompatibilities(Mode.BACKWARD_TRANSITIVE, [STRING, STRING], INTEGER)
    assert [str(d) for d in found] == ["TYPE_CHANGED #/"]


def test_nothing_before_means_compatible() -> None:
    assert incompatibilities(Mode.FULL_TRANSITIVE, [], STRING) == []


# --- reading schemas ------------------------------------------------------------------------------------------------


def test_every_catalogue_contract_is_compatible_with_itself_and_extensions_do_not_count() -> None:
    from contracts.catalogue import CATALOGUE

    for declared in CATALOGUE.values():
        schema = declared.json_schema
        relabelled = json.loads(json.dumps(schema).replace('"x-sharing": "unconditional"', '"x-sharing": "x"'))
        assert is_compatible(Mode.FULL_TRANSITIVE, [schema], schema), declared.id
        assert is_compatible(Mode.FULL, [schema], relabelled), declared.id


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"$ref": "#/$defs/Missing"}, "does not resolve"),
        ({"$ref": "https://example.org/a.json"}, "within the document"),
        ({"type": "text"}, "unknown type"),
        ({"properties": {"a": 3}}, "JSON object or a boolean"),
        ({"anyOf": {"type": "string"}}, "must be an array"),
        ({"maxLength": "3"}, "must be a number"),
    ],
)
def test_unreadable_schemas_are_refused(schema: Schema, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        diff(schema, STRING)


def test_references_use_json_pointer_escapes() -> None:
    old = with_defs(obj({"a": {"$ref": "#/$defs/a~1b"}}), **{"a/b": STRING})
    new = with_defs(obj({"a": {"$ref": "#/$defs/a~1b"}}), **{"a/b": INTEGER})
    assert [str(d) for d in diff(old, new)] == ["TYPE_CHANGED #/properties/a"]


def test_pointers_escape_property_names() -> None:
    assert [str(d) for d in diff(obj({"a/b": STRING}), obj({"a/b": INTEGER}))] == ["TYPE_CHANGED #/properties/a~1b"]


def test_a_reference_cycle_terminates() -> None:
    loop = with_defs({"$ref": "#/$defs/A"}, A={"$ref": "#/$defs/B"}, B={"$ref": "#/$defs/A"})
    assert diff(loop, loop) == []


def test_a_union_that_refers_to_itself_terminates() -> None:
    union = with_defs({"anyOf": [{"$ref": "#/$defs/A"}]}, A={"anyOf": [{"$ref": "#/$defs/A"}, STRING]})
    assert diff(union, {}) == []
    assert [str(d) for d in diff({}, union)] == ["SUM_TYPE_EXTENDED #/"]  # the cycle back to A is taken as compatible


# --- properties -----------------------------------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from(["x", "y"]))
COUNTS = st.integers(0, 3)
BOUNDS = st.sampled_from([0, 1, 2.5, 10])


def keywords(base: Schema, **optional: st.SearchStrategy[Any]) -> st.SearchStrategy[Schema]:
    return st.fixed_dictionaries({k: st.just(v) for k, v in base.items()}, optional=optional)


LEAVES = st.one_of(
    st.sampled_from([{}, True, False, BOOLEAN, NULL, {"$ref": "#/$defs/A"}, {"$ref": "#/$defs/B"}]),
    keywords(STRING, minLength=COUNTS, maxLength=COUNTS, pattern=st.sampled_from(["^a", "b$"]), title=NAMES),
    keywords(
        {"type": "integer"},
        minimum=BOUNDS, maximum=BOUNDS, exclusiveMinimum=BOUNDS, exclusiveMaximum=BOUNDS,
        multipleOf=st.sampled_from([1, 2, 0.5]),
    ),
    keywords(NUMBER, minimum=BOUNDS, maximum=BOUNDS, description=NAMES, default=SCALARS),
    st.builds(lambda values, typed: {"enum": values, **typed},
              st.lists(SCALARS, min_size=1, max_size=3, unique_by=json.dumps), st.sampled_from([{}, STRING])),
    st.builds(lambda value: {"const": value}, SCALARS),
    st.builds(lambda types: {"type": types}, st.lists(st.sampled_from(["string", "integer", "null"]), min_size=1,
                                                      max_size=3, unique=True)),
)


def composite(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        keywords(
            {"type": "object"},
            properties=st.dictionaries(NAMES, children, max_size=3),
            required=st.lists(NAMES, unique=True, max_size=2),
            additionalProperties=st.one_of(st.booleans(), children),
            patternProperties=st.dictionaries(st.sampled_from(["^a", "^x"]), children, max_size=1),
            maxProperties=COUNTS,
            dependencies=st.dictionaries(NAMES, st.one_of(st.lists(NAMES, unique=True, max_size=2), children),
                                         max_size=1),
        ),
        keywords(
            {"type": "array"},
            items=children, prefixItems=st.lists(children, max_size=2), minItems=COUNTS, maxItems=COUNTS,
            uniqueItems=st.booleans(),
        ),
        st.builds(lambda key, subs: {key: subs}, st.sampled_from(["allOf", "anyOf", "oneOf"]),
                  st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda negated: {"not": negated}, children),
    )


SUBSCHEMAS = st.recursive(LEAVES, composite, max_leaves=6)
DOCUMENTS = st.builds(
    lambda root, a, b: {**(root if isinstance(root, dict) else {"allOf": [root]}), "$defs": {"A": a, "B": b}},
    SUBSCHEMAS, SUBSCHEMAS, SUBSCHEMAS,
)
PROPERTIES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTIES
@given(DOCUMENTS)
def test_a_schema_is_compatible_with_itself_under_every_mode(schema: Schema) -> None:
    assert all(d.compatible for d in diff(schema, schema))
    assert all(is_compatible(mode, [schema, schema], schema) for mode in Mode)


@PROPERTIES
@given(DOCUMENTS, DOCUMENTS)
def test_backward_one_way_is_forward_the_other_and_full_is_both(a: Schema, b: Schema) -> None:
    backward = is_compatible(Mode.BACKWARD, [a], b)
    assert backward == is_compatible(Mode.FORWARD, [b], a)
    assert is_compatible(Mode.FULL, [a], b) == (backward and is_compatible(Mode.FORWARD, [a], b))
    assert all(d.path.startswith("#/") for d in diff(a, b))


@PROPERTIES
@given(DOCUMENTS, DOCUMENTS, DOCUMENTS)
def test_transitive_means_against_each_previous_version(a: Schema, b: Schema, c: Schema) -> None:
    assert is_compatible(Mode.BACKWARD_TRANSITIVE, [a, b], c) == (
        is_compatible(Mode.BACKWARD, [a], c) and is_compatible(Mode.BACKWARD, [b], c)
    )


@PROPERTIES
@given(DOCUMENTS)
def test_dropping_every_constraint_is_backward_compatible(schema: Schema) -> None:
    assert is_compatible(Mode.BACKWARD, [schema], {})


# --- the command ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    exit_code: int
    stdout: str
    stderr: str


def run(tmp_path: Path, *arguments: str, schemas: tuple[Any, ...] = ()) -> Ran:
    """`concord contracts compat …` as the command line runs it (its errors told as every command's are)."""
    files = []
    for number, schema in enumerate(schemas, start=1):
        path = tmp_path / f"v{number}.json"
        path.write_text(schema if isinstance(schema, str) else json.dumps(schema), encoding="utf-8")
        files.append(str(path))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), \
            patch.object(sys, "argv", ["concord", "contracts", "compat", *arguments, *files]):
        try:
            main()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
    return Ran(code, out.getvalue(), err.getvalue())


def test_command_compatible_says_so_in_one_line(tmp_path: Path) -> None:
    result = run(tmp_path, "--mode", "BACKWARD", schemas=(closed({"a": STRING}), closed({"a": STRING, "b": STRING})))
    assert result.exit_code == 0
    assert result.stdout == "compatible (BACKWARD): v2.json against v1.json\n"


def test_command_names_versions_by_their_x_contract_and_takes_registration_bodies(tmp_path: Path) -> None:
    old = closed({"a": STRING}) | {"x-contract": {"id": "market.licence", "version": 1}}
    new = {"schema": closed({"a": STRING}) | {"x-contract": {"id": "market.licence", "version": 2}}}
    result = run(tmp_path, "--mode", "full", schemas=(old, new))
    assert (result.exit_code, result.stdout) == (0, "compatible (FULL): v2 against v1\n")


def test_command_prints_a_verdict_then_one_line_per_incompatible_difference(tmp_path: Path) -> None:
    old = closed({"a": STRING, "b": STRING, "c": INTEGER})
    new = closed({"a": {**STRING, "title": "A"}, "c": STRING})
    result = run(tmp_path, "--mode", "backward", schemas=(old, new))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "incompatible (BACKWARD): v2.json against v1.json",
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL #/properties/b",
        "TYPE_CHANGED #/properties/c",
    ]
    assert result.stderr == ""


def test_command_mode_is_case_insensitive_and_transitive_modes_use_every_file(tmp_path: Path) -> None:
    versions = (V1, V2, V3)
    result = run(tmp_path, "--mode", "Backward", schemas=versions)
    assert (result.exit_code, result.stdout) == (0, "compatible (BACKWARD): v3.json against v2.json\n")
    result = run(tmp_path, "--mode", "backward_transitive", schemas=versions)
    assert (result.exit_code, result.stdout) == (
        1, "incompatible (BACKWARD_TRANSITIVE): v3.json against v1.json, v2.json\n"
           "REQUIRED_ATTRIBUTE_ADDED #/required/a\n")


@pytest.mark.parametrize(
    ("arguments", "schemas", "error"),
    [
        (("--mode", "sideways"), (STRING, STRING), "unknown mode 'sideways'"),
        ((), (STRING, STRING), "give --mode"),
        (("--mode", "sideways", "--contract", "market.licence"), (STRING,), "unknown mode 'sideways'"),
        (("--mode", "full"), (STRING,), "at least two schema files"),
        (("--mode", "full"), (STRING, "{not json"), "is not valid JSON"),
        (("--mode", "full"), (STRING, "[1, 2]"), "does not hold a JSON object"),
        (("--mode", "full"), (STRING, {"$ref": "#/$defs/Gone"}), "does not resolve"),
    ],
)
def test_command_refuses_unreadable_input(
    tmp_path: Path, arguments: tuple[str, ...], schemas: tuple[Any, ...], error: str
) -> None:
    result = run(tmp_path, *arguments, schemas=schemas)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert error in result.stderr


def test_command_refuses_a_missing_file(tmp_path: Path) -> None:
    result = run(tmp_path, "--mode", "full", str(tmp_path / "absent.json"), schemas=(STRING,))
    assert result.exit_code == 2
    assert "cannot read" in result.stderr
