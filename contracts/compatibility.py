"""Whether a new version of a contract's JSON Schema may follow the versions before it.

The meaning is Confluent Schema Registry's: its seven compatibility modes, and its JSON Schema diff
(``io.confluent.kafka.schemaregistry.json.diff``), ported rule by rule. The diff walks two schemas side by side,
``original`` and ``update``, and names every difference with Confluent's change name and a JSON pointer relative to
the schema root (``#/properties/foo/items``). A fixed set of those changes is compatible: they keep every document
the original accepts acceptable to the update. Any other change makes the pair incompatible.

Under BACKWARD the previous version is the original and the new version the update (the new schema must read what
the old one described); FORWARD swaps them; FULL asks both. The transitive modes ask it of every previous version,
the others of the latest only.

Schemas are read the way Confluent's loader (everit, JSON Schema draft 7, the default for a document without
``$schema``) reads them: a schema object yields one facet per group of keywords it carries (``enum``, each of
``allOf``/``anyOf``/``oneOf``, ``not``, ``const``, ``type``, then keywords that imply a type without ``type``); one
facet is the schema, several are an implicit ``allOf`` of the facets (so ``{"type": "string", "enum": [...]}``, which
pydantic emits for enums, is compared as ``allOf: [enum, string]``, and reported under ``#/.../allOf/0``); ``type``
given as an array is an ``anyOf`` of one schema per type. ``$ref`` replaces its schema object (draft 7: sibling
keywords other than annotations are not applied) and is resolved locally within the same document (pydantic's
``#/$defs/Name``); a recursive reference is compared once per pair of schemas, then taken as compatible.

Annotations do not decide compatibility: ``$id``, ``title``, ``description`` and ``default`` changes are reported
as compatible differences, and ``default`` counts only where Confluent lets it (a property made required, or added
as required to a closed model, is compatible when it has a default). ``examples``, ``$schema``, ``$comment``,
``format`` and every extension keyword (``x-sharing``, ``x-legal-basis``, ``x-contract``, ...) are not compared.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

from contracts.sharing import resolve as resolve_pointer

__all__ = [
    "COMPATIBLE_CHANGES",
    "Change",
    "Difference",
    "Mode",
    "SchemaError",
    "diff",
    "incompatibilities",
    "is_compatible",
]


class Mode(StrEnum):
    """A subject's compatibility level in Confluent Schema Registry."""

    BACKWARD = "BACKWARD"  # the new schema reads what the latest previous one described
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"  # ... what every previous one described
    FORWARD = "FORWARD"  # the latest previous schema reads what the new one describes
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"  # every previous schema reads what the new one describes
    FULL = "FULL"  # both BACKWARD and FORWARD
    FULL_TRANSITIVE = "FULL_TRANSITIVE"  # both, against every previous version
    NONE = "NONE"  # anything goes


class Change(StrEnum):
    """Confluent's name for a kind of difference (``Difference.Type``), as far as this port emits it."""

    ID_CHANGED = "ID_CHANGED"
    DESCRIPTION_CHANGED = "DESCRIPTION_CHANGED"
    TITLE_CHANGED = "TITLE_CHANGED"
    DEFAULT_CHANGED = "DEFAULT_CHANGED"
    SCHEMA_ADDED = "SCHEMA_ADDED"
    SCHEMA_REMOVED = "SCHEMA_REMOVED"
    TYPE_EXTENDED = "TYPE_EXTENDED"
    TYPE_NARROWED = "TYPE_NARROWED"
    TYPE_CHANGED = "TYPE_CHANGED"

    MAX_LENGTH_ADDED = "MAX_LENGTH_ADDED"
    MAX_LENGTH_REMOVED = "MAX_LENGTH_REMOVED"
    MAX_LENGTH_INCREASED = "MAX_LENGTH_INCREASED"
    MAX_LENGTH_DECREASED = "MAX_LENGTH_DECREASED"
    MIN_LENGTH_ADDED = "MIN_LENGTH_ADDED"
    MIN_LENGTH_REMOVED = "MIN_LENGTH_REMOVED"
    MIN_LENGTH_INCREASED = "MIN_LENGTH_INCREASED"
    MIN_LENGTH_DECREASED = "MIN_LENGTH_DECREASED"
    PATTERN_ADDED = "PATTERN_ADDED"
    PATTERN_REMOVED = "PATTERN_REMOVED"
    PATTERN_CHANGED = "PATTERN_CHANGED"

    MAXIMUM_ADDED = "MAXIMUM_ADDED"
    MAXIMUM_REMOVED = "MAXIMUM_REMOVED"
    MAXIMUM_INCREASED = "MAXIMUM_INCREASED"
    MAXIMUM_DECREASED = "MAXIMUM_DECREASED"
    MINIMUM_ADDED = "MINIMUM_ADDED"
    MINIMUM_REMOVED = "MINIMUM_REMOVED"
    MINIMUM_INCREASED = "MINIMUM_INCREASED"
    MINIMUM_DECREASED = "MINIMUM_DECREASED"
    EXCLUSIVE_MAXIMUM_ADDED = "EXCLUSIVE_MAXIMUM_ADDED"
    EXCLUSIVE_MAXIMUM_REMOVED = "EXCLUSIVE_MAXIMUM_REMOVED"
    EXCLUSIVE_MAXIMUM_INCREASED = "EXCLUSIVE_MAXIMUM_INCREASED"
    EXCLUSIVE_MAXIMUM_DECREASED = "EXCLUSIVE_MAXIMUM_DECREASED"
    EXCLUSIVE_MINIMUM_ADDED = "EXCLUSIVE_MINIMUM_ADDED"
    EXCLUSIVE_MINIMUM_REMOVED = "EXCLUSIVE_MINIMUM_REMOVED"
    EXCLUSIVE_MINIMUM_INCREASED = "EXCLUSIVE_MINIMUM_INCREASED"
    EXCLUSIVE_MINIMUM_DECREASED = "EXCLUSIVE_MINIMUM_DECREASED"
    MULTIPLE_OF_ADDED = "MULTIPLE_OF_ADDED"
    MULTIPLE_OF_REMOVED = "MULTIPLE_OF_REMOVED"
    MULTIPLE_OF_EXPANDED = "MULTIPLE_OF_EXPANDED"
    MULTIPLE_OF_REDUCED = "MULTIPLE_OF_REDUCED"
    MULTIPLE_OF_CHANGED = "MULTIPLE_OF_CHANGED"

    REQUIRED_ATTRIBUTE_ADDED = "REQUIRED_ATTRIBUTE_ADDED"
    REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED = "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED"
    REQUIRED_ATTRIBUTE_REMOVED = "REQUIRED_ATTRIBUTE_REMOVED"
    MAX_PROPERTIES_ADDED = "MAX_PROPERTIES_ADDED"
    MAX_PROPERTIES_REMOVED = "MAX_PROPERTIES_REMOVED"
    MAX_PROPERTIES_INCREASED = "MAX_PROPERTIES_INCREASED"
    MAX_PROPERTIES_DECREASED = "MAX_PROPERTIES_DECREASED"
    MIN_PROPERTIES_ADDED = "MIN_PROPERTIES_ADDED"
    MIN_PROPERTIES_REMOVED = "MIN_PROPERTIES_REMOVED"
    MIN_PROPERTIES_INCREASED = "MIN_PROPERTIES_INCREASED"
    MIN_PROPERTIES_DECREASED = "MIN_PROPERTIES_DECREASED"
    ADDITIONAL_PROPERTIES_ADDED = "ADDITIONAL_PROPERTIES_ADDED"
    ADDITIONAL_PROPERTIES_REMOVED = "ADDITIONAL_PROPERTIES_REMOVED"
    ADDITIONAL_PROPERTIES_EXTENDED = "ADDITIONAL_PROPERTIES_EXTENDED"
    ADDITIONAL_PROPERTIES_NARROWED = "ADDITIONAL_PROPERTIES_NARROWED"
    DEPENDENCY_ARRAY_ADDED = "DEPENDENCY_ARRAY_ADDED"
    DEPENDENCY_ARRAY_REMOVED = "DEPENDENCY_ARRAY_REMOVED"
    DEPENDENCY_ARRAY_EXTENDED = "DEPENDENCY_ARRAY_EXTENDED"
    DEPENDENCY_ARRAY_NARROWED = "DEPENDENCY_ARRAY_NARROWED"
    DEPENDENCY_ARRAY_CHANGED = "DEPENDENCY_ARRAY_CHANGED"
    DEPENDENCY_SCHEMA_ADDED = "DEPENDENCY_SCHEMA_ADDED"
    DEPENDENCY_SCHEMA_REMOVED = "DEPENDENCY_SCHEMA_REMOVED"
    REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL = "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
    REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL = (
        "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL"
    )
    OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL = "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
    PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL = "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"
    REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL = "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
    REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL = (
        "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL"
    )
    OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL = "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
    PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL = "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL"
    PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL = "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL"
    PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL = "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"
    PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = (
        "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
    )
    PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = (
        "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
    )
    PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = (
        "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
    )
    PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = (
        "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
    )

    MAX_ITEMS_ADDED = "MAX_ITEMS_ADDED"
    MAX_ITEMS_REMOVED = "MAX_ITEMS_REMOVED"
    MAX_ITEMS_INCREASED = "MAX_ITEMS_INCREASED"
    MAX_ITEMS_DECREASED = "MAX_ITEMS_DECREASED"
    MIN_ITEMS_ADDED = "MIN_ITEMS_ADDED"
    MIN_ITEMS_REMOVED = "MIN_ITEMS_REMOVED"
    MIN_ITEMS_INCREASED = "MIN_ITEMS_INCREASED"
    MIN_ITEMS_DECREASED = "MIN_ITEMS_DECREASED"
    UNIQUE_ITEMS_ADDED = "UNIQUE_ITEMS_ADDED"
    UNIQUE_ITEMS_REMOVED = "UNIQUE_ITEMS_REMOVED"
    ADDITIONAL_ITEMS_ADDED = "ADDITIONAL_ITEMS_ADDED"
    ADDITIONAL_ITEMS_REMOVED = "ADDITIONAL_ITEMS_REMOVED"
    ADDITIONAL_ITEMS_EXTENDED = "ADDITIONAL_ITEMS_EXTENDED"
    ADDITIONAL_ITEMS_NARROWED = "ADDITIONAL_ITEMS_NARROWED"
    ITEM_ADDED_TO_OPEN_CONTENT_MODEL = "ITEM_ADDED_TO_OPEN_CONTENT_MODEL"
    ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL = "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"
    ITEM_ADDED_TO_CLOSED_CONTENT_MODEL = "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL"
    ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL = "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL"
    ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL = "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL"
    ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL = "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL"
    ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
    ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = (
        "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
    )
    ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
    ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"

    ENUM_ARRAY_EXTENDED = "ENUM_ARRAY_EXTENDED"
    ENUM_ARRAY_NARROWED = "ENUM_ARRAY_NARROWED"
    ENUM_ARRAY_CHANGED = "ENUM_ARRAY_CHANGED"

    COMBINED_TYPE_EXTENDED = "COMBINED_TYPE_EXTENDED"
    COMBINED_TYPE_CHANGED = "COMBINED_TYPE_CHANGED"
    PRODUCT_TYPE_EXTENDED = "PRODUCT_TYPE_EXTENDED"
    PRODUCT_TYPE_NARROWED = "PRODUCT_TYPE_NARROWED"
    SUM_TYPE_EXTENDED = "SUM_TYPE_EXTENDED"
    SUM_TYPE_NARROWED = "SUM_TYPE_NARROWED"
    COMBINED_TYPE_SUBSCHEMAS_CHANGED = "COMBINED_TYPE_SUBSCHEMAS_CHANGED"
    NOT_TYPE_EXTENDED = "NOT_TYPE_EXTENDED"
    NOT_TYPE_NARROWED = "NOT_TYPE_NARROWED"


C = Change

COMPATIBLE_CHANGES: frozenset[Change] = frozenset(
    {
        # Confluent's SchemaDiff.COMPATIBLE_CHANGES: each of these only lets the update accept more.
        C.ID_CHANGED, C.DESCRIPTION_CHANGED, C.TITLE_CHANGED, C.DEFAULT_CHANGED, C.SCHEMA_REMOVED, C.TYPE_EXTENDED,
        C.MAX_LENGTH_INCREASED, C.MAX_LENGTH_REMOVED, C.MIN_LENGTH_DECREASED, C.MIN_LENGTH_REMOVED, C.PATTERN_REMOVED,
        C.MAXIMUM_INCREASED, C.MAXIMUM_REMOVED, C.MINIMUM_DECREASED, C.MINIMUM_REMOVED,
        C.EXCLUSIVE_MAXIMUM_INCREASED, C.EXCLUSIVE_MAXIMUM_REMOVED, C.EXCLUSIVE_MINIMUM_DECREASED,
        C.EXCLUSIVE_MINIMUM_REMOVED, C.MULTIPLE_OF_REDUCED, C.MULTIPLE_OF_REMOVED,
        C.REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED, C.REQUIRED_ATTRIBUTE_REMOVED, C.DEPENDENCY_ARRAY_NARROWED,
        C.DEPENDENCY_ARRAY_REMOVED, C.DEPENDENCY_SCHEMA_REMOVED, C.MAX_PROPERTIES_INCREASED, C.MAX_PROPERTIES_REMOVED,
        C.MIN_PROPERTIES_DECREASED, C.MIN_PROPERTIES_REMOVED, C.ADDITIONAL_PROPERTIES_ADDED,
        C.ADDITIONAL_PROPERTIES_EXTENDED, C.PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL,
        C.REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL,
        C.OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL,
        C.PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL, C.PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL,
        C.PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
        C.PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
        C.MAX_ITEMS_INCREASED, C.MAX_ITEMS_REMOVED, C.MIN_ITEMS_DECREASED, C.MIN_ITEMS_REMOVED, C.UNIQUE_ITEMS_REMOVED,
        C.ADDITIONAL_ITEMS_ADDED, C.ADDITIONAL_ITEMS_EXTENDED, C.ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL,
        C.ITEM_ADDED_TO_CLOSED_CONTENT_MODEL, C.ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL,
        C.ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL, C.ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
        C.ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
        C.ENUM_ARRAY_EXTENDED,
        C.COMBINED_TYPE_EXTENDED, C.PRODUCT_TYPE_NARROWED, C.SUM_TYPE_EXTENDED, C.NOT_TYPE_NARROWED,
    }
)


@dataclass(frozen=True)
class Difference:
    """One difference between two schemas: Confluent's change name, where it is, and whether it is compatible."""

    type: str
    path: str
    compatible: bool

    def __str__(self) -> str:
        return f"{self.type} {self.path}"


class SchemaError(ValueError):
    """The document cannot be read as a JSON Schema (for instance a ``$ref`` that does not resolve in it)."""


def diff(original: Mapping[str, Any], update: Mapping[str, Any]) -> list[Difference]:
    """Every difference from ``original`` to ``update``, compatible or not (Confluent's ``SchemaDiff.compare``)."""
    ctx = _Context([], set())
    _compare(ctx, _Loader(original).root(), _Loader(update).root())
    return ctx.differences


def incompatibilities(mode: Mode, previous: Sequence[Mapping[str, Any]], new: Mapping[str, Any]) -> list[Difference]:
    """The incompatible differences that make ``new`` unacceptable after ``previous`` (oldest first) under ``mode``.

    Versions are checked newest first, as Confluent does; under FULL the forward direction (``new`` read by the
    previous schema) comes before the backward one. A difference found twice is reported once."""
    if mode is Mode.NONE or not previous:
        return []
    transitive = mode in (Mode.BACKWARD_TRANSITIVE, Mode.FORWARD_TRANSITIVE, Mode.FULL_TRANSITIVE)
    forward = mode in (Mode.FORWARD, Mode.FORWARD_TRANSITIVE, Mode.FULL, Mode.FULL_TRANSITIVE)
    backward = mode in (Mode.BACKWARD, Mode.BACKWARD_TRANSITIVE, Mode.FULL, Mode.FULL_TRANSITIVE)
    versions = list(reversed(previous)) if transitive else [previous[-1]]
    found: dict[Difference, None] = {}
    for old in versions:
        pairs = ([(new, old)] if forward else []) + ([(old, new)] if backward else [])
        for original, update in pairs:
            found.update((d, None) for d in diff(original, update) if not d.compatible)
    return list(found)


def is_compatible(mode: Mode, previous: Sequence[Mapping[str, Any]], new: Mapping[str, Any]) -> bool:
    """Whether ``new`` may follow ``previous`` (oldest first) under ``mode``."""
    return not incompatibilities(mode, previous, new)


# --- Schemas as Confluent's loader sees them ------------------------------------------------------------------------

ANNOTATIONS = {"$id": C.ID_CHANGED, "title": C.TITLE_CHANGED, "description": C.DESCRIPTION_CHANGED,
               "default": C.DEFAULT_CHANGED}
STRING_KEYWORDS = ("minLength", "maxLength", "pattern", "format")
NUMBER_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
OBJECT_KEYWORDS = ("properties", "required", "minProperties", "maxProperties", "dependencies", "patternProperties",
                   "additionalProperties", "propertyNames")
ARRAY_KEYWORDS = ("items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains")
TYPE_KEYWORDS = {"string": STRING_KEYWORDS, "integer": NUMBER_KEYWORDS, "number": NUMBER_KEYWORDS,
                 "object": OBJECT_KEYWORDS, "array": ARRAY_KEYWORDS, "boolean": (), "null": ()}
COMBINATORS = ("allOf", "anyOf", "oneOf")

# A numeric bound, by keyword: the change when it is added, removed, increased, decreased.
LIMITS: dict[str, tuple[Change, Change, Change, Change]] = {
    "maxLength": (C.MAX_LENGTH_ADDED, C.MAX_LENGTH_REMOVED, C.MAX_LENGTH_INCREASED, C.MAX_LENGTH_DECREASED),
    "minLength": (C.MIN_LENGTH_ADDED, C.MIN_LENGTH_REMOVED, C.MIN_LENGTH_INCREASED, C.MIN_LENGTH_DECREASED),
    "maximum": (C.MAXIMUM_ADDED, C.MAXIMUM_REMOVED, C.MAXIMUM_INCREASED, C.MAXIMUM_DECREASED),
    "minimum": (C.MINIMUM_ADDED, C.MINIMUM_REMOVED, C.MINIMUM_INCREASED, C.MINIMUM_DECREASED),
    "exclusiveMaximum": (C.EXCLUSIVE_MAXIMUM_ADDED, C.EXCLUSIVE_MAXIMUM_REMOVED, C.EXCLUSIVE_MAXIMUM_INCREASED,
                         C.EXCLUSIVE_MAXIMUM_DECREASED),
    "exclusiveMinimum": (C.EXCLUSIVE_MINIMUM_ADDED, C.EXCLUSIVE_MINIMUM_REMOVED, C.EXCLUSIVE_MINIMUM_INCREASED,
                         C.EXCLUSIVE_MINIMUM_DECREASED),
    "maxProperties": (C.MAX_PROPERTIES_ADDED, C.MAX_PROPERTIES_REMOVED, C.MAX_PROPERTIES_INCREASED,
                      C.MAX_PROPERTIES_DECREASED),
    "minProperties": (C.MIN_PROPERTIES_ADDED, C.MIN_PROPERTIES_REMOVED, C.MIN_PROPERTIES_INCREASED,
                      C.MIN_PROPERTIES_DECREASED),
    "maxItems": (C.MAX_ITEMS_ADDED, C.MAX_ITEMS_REMOVED, C.MAX_ITEMS_INCREASED, C.MAX_ITEMS_DECREASED),
    "minItems": (C.MIN_ITEMS_ADDED, C.MIN_ITEMS_REMOVED, C.MIN_ITEMS_INCREASED, C.MIN_ITEMS_DECREASED),
}

Number = int | float


@dataclass(eq=False, kw_only=True)
class _Schema:
    """A loaded schema. ``key`` is the canonical JSON it was loaded from: equal keys are the same subschema."""

    key: str
    annotations: dict[str, str] = field(default_factory=dict)  # canonical JSON of $id, title, description, default


class _Empty(_Schema):
    """``{}`` (or only annotations): accepts anything."""


class _True(_Empty):
    """``true``: accepts anything."""


class _False(_Schema):
    """``false``: accepts nothing."""


class _Boolean(_Schema):
    pass


class _Null(_Schema):
    pass


@dataclass(eq=False, kw_only=True)
class _String(_Schema):
    limits: dict[str, Number]
    pattern: str | None


@dataclass(eq=False, kw_only=True)
class _Number(_Schema):
    limits: dict[str, Number]
    multiple_of: Number | None
    integer: bool


@dataclass(eq=False, kw_only=True)
class _Enum(_Schema):
    values: frozenset[str]  # canonical JSON of each permitted value


@dataclass(eq=False, kw_only=True)
class _Const(_Schema):
    value: str  # canonical JSON


@dataclass(eq=False, kw_only=True)
class _Combined(_Schema):
    criterion: str  # allOf, anyOf or oneOf
    subschemas: list[_Schema]


@dataclass(eq=False, kw_only=True)
class _Not(_Schema):
    negated: _Schema


@dataclass(eq=False, kw_only=True)
class _Object(_Schema):
    properties: dict[str, _Schema]
    required: frozenset[str]
    limits: dict[str, Number]
    additional_allowed: bool
    additional_schema: _Schema | None
    pattern_properties: list[tuple[str, _Schema]]
    property_dependencies: dict[str, frozenset[str]]
    schema_dependencies: dict[str, _Schema]


@dataclass(eq=False, kw_only=True)
class _Array(_Schema):
    items: _Schema | None  # one schema for every item
    tuple_items: list[_Schema]  # one schema per position (``items`` as an array, or ``prefixItems``)
    additional_allowed: bool  # items past the positional ones
    additional_schema: _Schema | None
    limits: dict[str, Number]
    unique: bool


class _Conditional(_Schema):
    """``if``/``then``/``else``: Confluent does not compare it."""


@dataclass(eq=False, kw_only=True)
class _Reference(_Schema):
    pointer: str
    target: _Schema | None = None  # set once the whole document is loaded


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


class _Loader:
    """Reads one schema document into ``_Schema`` nodes, resolving its local ``$ref``s."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.loaded: dict[int, _Schema] = {}  # by id() of the JSON object, so a $ref target is one node
        self.unresolved: list[_Reference] = []

    def root(self) -> _Schema:
        root = self.load(self.document)
        while self.unresolved:
            reference = self.unresolved.pop()
            reference.target = self.load(self.resolve(reference.pointer))
        return root

    def resolve(self, pointer: str) -> Any:
        if not pointer.startswith("#"):
            raise SchemaError(f"only references within the document are supported, not {pointer!r}")
        node = resolve_pointer(self.document, "#" + unquote(pointer[1:]))
        if node is None:
            raise SchemaError(f"$ref {pointer!r} does not resolve within the document")
        return node

    def load(self, value: Any) -> _Schema:
        if isinstance(value, bool):
            return _True(key="true") if value else _False(key="false")
        if not isinstance(value, Mapping):
            raise SchemaError(f"a schema must be a JSON object or a boolean, not {_canonical(value)}")
        if id(value) not in self.loaded:
            self.loaded[id(value)] = self.load_object(value)
        return self.loaded[id(value)]

    def load_object(self, value: Mapping[str, Any]) -> _Schema:
        key = _canonical(value)
        annotations = {name: _canonical(value[name]) for name in ANNOTATIONS if name in value}
        if "$ref" in value:
            if not isinstance(value["$ref"], str):
                raise SchemaError(f"$ref must be a string, not {_canonical(value['$ref'])}")
            reference = _Reference(key=key, annotations=annotations, pointer=value["$ref"])
            self.unresolved.append(reference)
            return reference
        facets = self.facets(value, key)
        if not facets:
            return _Empty(key=key, annotations=annotations)
        if len(facets) == 1:
            return replace(facets[0], key=key, annotations=annotations)
        return _Combined(key=key, annotations=annotations, criterion="allOf", subschemas=facets)

    def facets(self, value: Mapping[str, Any], key: str) -> list[_Schema]:
        """One schema per group of keywords, in everit's order: enum, combinators, not, const, type, sniffed."""
        facets: list[_Schema] = []
        if "enum" in value:
            values = _array(value, "enum")
            facets.append(_Enum(key=f"{key}|enum", values=frozenset(_canonical(v) for v in values)))
        for criterion in COMBINATORS:
            if criterion in value:
                subschemas = [self.load(s) for s in _array(value, criterion)]
                facets.append(_Combined(key=f"{key}|{criterion}", criterion=criterion, subschemas=subschemas))
        if "not" in value:
            facets.append(_Not(key=f"{key}|not", negated=self.load(value["not"])))
        if "const" in value:
            facets.append(_Const(key=f"{key}|const", value=_canonical(value["const"])))
        consumed: set[str] = set()
        if "type" in value:
            types = value["type"]
            if isinstance(types, str):
                facets.append(self.typed(value, types, f"{key}|type"))
                consumed.update(TYPE_KEYWORDS.get(types, ()))
            elif isinstance(types, list) and all(isinstance(t, str) for t in types):
                typed = [self.typed(value, t, f"{key}|type:{t}") for t in types]
                facets.append(_Combined(key=f"{key}|type", criterion="anyOf", subschemas=typed))
                consumed.update(k for t in types for k in TYPE_KEYWORDS[t])
            else:
                raise SchemaError(f"type must be a string or an array of strings, not {_canonical(types)}")
        for implied in ("array", "object", "number", "string"):  # keywords that imply a type without ``type``
            if any(k in value and k not in consumed for k in TYPE_KEYWORDS[implied]):
                facets.append(self.typed(value, implied, f"{key}|{implied}"))
        if any(k in value for k in ("if", "then", "else")):
            facets.append(_Conditional(key=f"{key}|if"))
        return facets

    def typed(self, value: Mapping[str, Any], type_name: str, key: str) -> _Schema:
        """The schema of one JSON type, from the keywords of that type."""
        if type_name == "string":
            limits = _limits(value, ("maxLength", "minLength"))
            return _String(key=key, limits=limits, pattern=_string(value, "pattern"))
        if type_name in ("integer", "number"):
            return self.number(value, key, integer=type_name == "integer")
        if type_name == "object":
            return self.object(value, key)
        if type_name == "array":
            return self.array(value, key)
        if type_name == "boolean":
            return _Boolean(key=key)
        if type_name == "null":
            return _Null(key=key)
        raise SchemaError(f"unknown type {type_name!r}")

    def number(self, value: Mapping[str, Any], key: str, integer: bool) -> _Number:
        limits = _limits(value, ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum"))
        multiple_of = _limits(value, ("multipleOf",)).get("multipleOf")
        if multiple_of is not None and multiple_of <= 0:
            raise SchemaError(f"multipleOf must be greater than 0, not {multiple_of}")
        return _Number(key=key, limits=limits, multiple_of=multiple_of, integer=integer)

    def object(self, value: Mapping[str, Any], key: str) -> _Object:
        additional = value.get("additionalProperties", True)
        required = _array(value, "required") if "required" in value else []
        dependencies = _mapping(value, "dependencies")
        return _Object(
            key=key,
            properties={name: self.load(s) for name, s in _mapping(value, "properties").items()},
            required=frozenset(str(name) for name in required),
            limits=_limits(value, ("maxProperties", "minProperties")),
            additional_allowed=additional is not False,
            additional_schema=None if isinstance(additional, bool) else self.load(additional),
            pattern_properties=[(p, self.load(s)) for p, s in _mapping(value, "patternProperties").items()],
            property_dependencies={
                name: frozenset(str(d) for d in dep) for name, dep in dependencies.items() if isinstance(dep, list)
            },
            schema_dependencies={
                name: self.load(dep) for name, dep in dependencies.items() if not isinstance(dep, list)
            },
        )

    def array(self, value: Mapping[str, Any], key: str) -> _Array:
        """``items`` as a schema applies to every item. Positional schemas come from ``items`` as an array (draft 7,
        then ``additionalItems`` governs the rest) or from ``prefixItems`` (2020-12, then ``items`` does)."""
        items = value.get("items")
        if "prefixItems" in value:
            positional, rest, items = _array(value, "prefixItems"), items, None
        elif isinstance(items, list):
            positional, rest, items = items, value.get("additionalItems"), None
        else:
            positional, rest = [], value.get("additionalItems")
        return _Array(
            key=key,
            items=None if items is None else self.load(items),
            tuple_items=[self.load(s) for s in positional],
            additional_allowed=rest is not False,
            additional_schema=None if rest is None or isinstance(rest, bool) else self.load(rest),
            limits=_limits(value, ("maxItems", "minItems")),
            unique=value.get("uniqueItems") is True,
        )


def _limits(value: Mapping[str, Any], keywords: Sequence[str]) -> dict[str, Number]:
    limits: dict[str, Number] = {}
    for keyword in keywords:
        if keyword in value:
            number = value[keyword]
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise SchemaError(f"{keyword} must be a number, not {_canonical(number)}")
            limits[keyword] = number
    return limits


def _string(value: Mapping[str, Any], keyword: str) -> str | None:
    text = value.get(keyword)
    if text is not None and not isinstance(text, str):
        raise SchemaError(f"{keyword} must be a string, not {_canonical(text)}")
    return text


def _array(value: Mapping[str, Any], keyword: str) -> list[Any]:
    items = value[keyword]
    if not isinstance(items, list):
        raise SchemaError(f"{keyword} must be an array, not {_canonical(items)}")
    return items


def _mapping(value: Mapping[str, Any], keyword: str) -> Mapping[str, Any]:
    mapping = value.get(keyword, {})
    if not isinstance(mapping, Mapping):
        raise SchemaError(f"{keyword} must be an object, not {_canonical(mapping)}")
    return mapping


# --- The diff -------------------------------------------------------------------------------------------------------


class _Context:
    """Where the walk is (JSON pointer segments), what it found, and which pairs of schemas it is inside."""

    def __init__(self, path: list[str], in_progress: set[tuple[int, int]]) -> None:
        self.path = path
        self.in_progress = in_progress
        self.differences: list[Difference] = []

    def subcontext(self) -> _Context:
        """A context for a trial comparison: same place, its own findings."""
        return _Context(list(self.path), self.in_progress)

    def is_compatible(self) -> bool:
        return all(d.compatible for d in self.differences)

    def add(self, change: Change, *segments: str) -> None:
        path = "#/" + "/".join([*self.path, *(_escape(s) for s in segments)])
        self.differences.append(Difference(change.value, path, change in COMPATIBLE_CHANGES))

    @contextmanager
    def at(self, *segments: str) -> Iterator[None]:
        self.path.extend(_escape(s) for s in segments)
        try:
            yield
        finally:
            del self.path[-len(segments) :]


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _dereference(schema: _Schema) -> _Schema:
    seen: set[int] = set()
    while isinstance(schema, _Reference) and schema.target is not None and id(schema) not in seen:
        seen.add(id(schema))
        schema = schema.target
    return schema


def _compare(ctx: _Context, original: _Schema | None, update: _Schema | None) -> None:
    """Confluent's ``SchemaDiff.compare``: how ``update`` differs from ``original`` at the current place."""
    if original is None or update is None:
        if original is not None:
            ctx.add(C.SCHEMA_REMOVED)  # the constraint is gone: anything goes there now
        elif update is not None:
            ctx.add(C.SCHEMA_ADDED)
        return
    original, update = _dereference(original), _dereference(update)
    pair = (id(original), id(update))
    if pair in ctx.in_progress:  # a recursive reference back to a pair being compared: compatible so far
        return
    ctx.in_progress.add(pair)
    try:
        _compare_pair(ctx, original, update)
    finally:
        ctx.in_progress.discard(pair)


def _compare_pair(ctx: _Context, original: _Schema, update: _Schema) -> None:
    if isinstance(update, _Combined) and not isinstance(original, _Combined):
        settled = _update_combines_original(ctx, original, update)
    elif isinstance(original, _Combined) and not isinstance(update, _Combined):
        settled = _original_combines_update(ctx, original, update)
    else:
        settled = False
    if settled:
        return
    if type(original) is not type(update):
        # Nothing was accepted before (false), or everything is accepted now ({} or true): no narrowing possible.
        if not isinstance(original, _False) and not isinstance(update, _Empty):
            ctx.add(C.TYPE_CHANGED)
        return
    for keyword, change in ANNOTATIONS.items():
        if original.annotations.get(keyword) != update.annotations.get(keyword):
            ctx.add(change)
    _compare_same_kind(ctx, original, update)


def _compare_same_kind(ctx: _Context, original: _Schema, update: _Schema) -> None:
    if isinstance(original, _String) and isinstance(update, _String):
        _compare_string(ctx, original, update)
    elif isinstance(original, _Number) and isinstance(update, _Number):
        _compare_number(ctx, original, update)
    elif isinstance(original, _Const) and isinstance(update, _Const):
        if original.value != update.value:
            ctx.add(C.ENUM_ARRAY_CHANGED, "const")
    elif isinstance(original, _Enum) and isinstance(update, _Enum):
        _compare_enum(ctx, original, update)
    elif isinstance(original, _Combined) and isinstance(update, _Combined):
        _compare_combined(ctx, original, update)
    elif isinstance(original, _Not) and isinstance(update, _Not):
        _compare_not(ctx, original, update)
    elif isinstance(original, _Object) and isinstance(update, _Object):
        _compare_object(ctx, original, update)
    elif isinstance(original, _Array) and isinstance(update, _Array):
        _compare_array(ctx, original, update)


def _update_combines_original(ctx: _Context, original: _Schema, update: _Combined) -> bool:
    """A schema that became a union: compatible if one member accepts everything the old schema did (a member that
    is the whole union, or any member of an anyOf/oneOf, which then widens it: SUM_TYPE_EXTENDED)."""
    if len(update.subschemas) == 1:
        return _adopt_if_compatible(ctx, original, update.subschemas[0], None)
    if update.criterion in ("anyOf", "oneOf"):
        return any(_adopt_if_compatible(ctx, original, s, C.SUM_TYPE_EXTENDED) for s in update.subschemas)
    return False


def _original_combines_update(ctx: _Context, original: _Combined, update: _Schema) -> bool:
    """A combination that became one schema: compatible if the single member, or any member of an allOf (the update
    then drops the other constraints: PRODUCT_TYPE_NARROWED), is accepted by the new schema."""
    if len(original.subschemas) == 1:
        return _adopt_if_compatible(ctx, original.subschemas[0], update, None)
    if original.criterion == "allOf":
        return any(_adopt_if_compatible(ctx, s, update, C.PRODUCT_TYPE_NARROWED) for s in original.subschemas)
    return False


def _adopt_if_compatible(ctx: _Context, original: _Schema, update: _Schema, change: Change | None) -> bool:
    trial = ctx.subcontext()
    _compare(trial, original, update)
    if not trial.is_compatible():
        return False
    ctx.differences.extend(trial.differences)
    if change is not None:
        ctx.add(change)
    return True


def _compare_limits(ctx: _Context, original: Mapping[str, Number], update: Mapping[str, Number]) -> None:
    """Numeric bounds (lengths, range, property and item counts); whether a move is compatible depends on the bound:
    a maximum may only rise, a minimum only fall."""
    for keyword, (added, removed, increased, decreased) in LIMITS.items():
        before, after = original.get(keyword), update.get(keyword)
        if before is None and after is None:
            continue
        if before is None:
            ctx.add(added, keyword)
        elif after is None:
            ctx.add(removed, keyword)
        elif before < after:
            ctx.add(increased, keyword)
        elif before > after:
            ctx.add(decreased, keyword)


def _compare_string(ctx: _Context, original: _String, update: _String) -> None:
    """Lengths, then the pattern: any new or different pattern may reject strings the old one accepted."""
    _compare_limits(ctx, original.limits, update.limits)
    if original.pattern is None and update.pattern is not None:
        ctx.add(C.PATTERN_ADDED, "pattern")
    elif original.pattern is not None and update.pattern is None:
        ctx.add(C.PATTERN_REMOVED, "pattern")
    elif original.pattern != update.pattern:
        ctx.add(C.PATTERN_CHANGED, "pattern")


def _compare_number(ctx: _Context, original: _Number, update: _Number) -> None:
    """The range, then ``multipleOf`` (a multiple of the old step accepts fewer numbers: EXPANDED; a divisor of it
    accepts more: REDUCED), then integer versus number (integer to number extends the type)."""
    _compare_limits(ctx, original.limits, update.limits)
    before, after = original.multiple_of, update.multiple_of
    if before is None and after is not None:
        ctx.add(C.MULTIPLE_OF_ADDED, "multipleOf")
    elif before is not None and after is None:
        ctx.add(C.MULTIPLE_OF_REMOVED, "multipleOf")
    elif before is not None and after is not None and Decimal(str(before)) != Decimal(str(after)):
        if Decimal(str(after)) % Decimal(str(before)) == 0:
            ctx.add(C.MULTIPLE_OF_EXPANDED, "multipleOf")
        elif Decimal(str(before)) % Decimal(str(after)) == 0:
            ctx.add(C.MULTIPLE_OF_REDUCED, "multipleOf")
        else:
            ctx.add(C.MULTIPLE_OF_CHANGED, "multipleOf")
    if original.integer and not update.integer:
        ctx.add(C.TYPE_EXTENDED)
    elif update.integer and not original.integer:
        ctx.add(C.TYPE_NARROWED)


def _compare_enum(ctx: _Context, original: _Enum, update: _Enum) -> None:
    """Only new values (EXTENDED) keep every old value valid."""
    if original.values == update.values:
        return
    if update.values >= original.values:
        ctx.add(C.ENUM_ARRAY_EXTENDED, "enum")
    elif original.values >= update.values:
        ctx.add(C.ENUM_ARRAY_NARROWED, "enum")
    else:
        ctx.add(C.ENUM_ARRAY_CHANGED, "enum")


def _compare_combined(ctx: _Context, original: _Combined, update: _Combined) -> None:
    """Confluent's ``CombinedSchemaDiff``. The criterion may only loosen (to anyOf; a singleton to oneOf; singleton to
    singleton allOf). Duplicate members collapse. An allOf may lose members, an anyOf/oneOf gain them. Then members
    are paired: each old member with a new member that accepts what it did, as many pairs as possible (a maximum
    bipartite matching); if the smaller side is not fully paired, the members changed incompatibly."""
    criterion_change = _criterion_change(original, update)
    if criterion_change is not None:
        ctx.add(criterion_change)
        if criterion_change is C.COMBINED_TYPE_CHANGED:
            return
    before, after = _distinct(original.subschemas), _distinct(update.subschemas)
    if len(before) < len(after):
        ctx.add(C.PRODUCT_TYPE_EXTENDED if update.criterion == "allOf" else C.SUM_TYPE_EXTENDED)
    elif len(before) > len(after):
        ctx.add(C.PRODUCT_TYPE_NARROWED if update.criterion == "allOf" else C.SUM_TYPE_NARROWED)
    compatible_pairs: dict[tuple[int, int], list[Difference]] = {}
    for i, old in enumerate(before):
        with ctx.at(original.criterion, str(i)):
            for j, new in enumerate(after):
                trial = ctx.subcontext()
                _compare(trial, old, new)
                if trial.is_compatible():
                    compatible_pairs[(i, j)] = trial.differences
    matching = _maximum_matching(len(before), len(after), compatible_pairs)
    for pair in matching:
        ctx.differences.extend(compatible_pairs[pair])
    if len(matching) < min(len(before), len(after)):
        ctx.add(C.COMBINED_TYPE_SUBSCHEMAS_CHANGED)


def _criterion_change(original: _Combined, update: _Combined) -> Change | None:
    if original.criterion == update.criterion:
        return None
    if update.criterion == "anyOf":
        return C.COMBINED_TYPE_EXTENDED
    if update.criterion == "oneOf":
        return C.COMBINED_TYPE_EXTENDED if len(original.subschemas) == 1 else C.COMBINED_TYPE_CHANGED
    if len(original.subschemas) == 1 and len(update.subschemas) == 1:  # to allOf
        return C.COMBINED_TYPE_EXTENDED
    return C.COMBINED_TYPE_CHANGED


def _distinct(schemas: list[_Schema]) -> list[_Schema]:
    """The subschemas without repeats, first occurrences in order."""
    first: dict[str, _Schema] = {}
    for schema in schemas:
        first.setdefault(schema.key, schema)
    return list(first.values())


def _maximum_matching(left: int, right: int, edges: Mapping[tuple[int, int], object]) -> list[tuple[int, int]]:
    """A maximum matching of a bipartite graph (augmenting paths), as (left, right) pairs in left order."""
    partner_of_right: dict[int, int] = {}

    def augment(i: int, visited: set[int]) -> bool:
        for j in range(right):
            if (i, j) in edges and j not in visited:
                visited.add(j)
                if j not in partner_of_right or augment(partner_of_right[j], visited):
                    partner_of_right[j] = i
                    return True
        return False

    for i in range(left):
        augment(i, set())
    return sorted((i, j) for j, i in partner_of_right.items())


def _compare_not(ctx: _Context, original: _Not, update: _Not) -> None:
    """``not`` reverses the direction: the update must exclude at least what the original excluded, so the excluded
    schemas are compared the other way round (compatible: NOT_TYPE_NARROWED, else NOT_TYPE_EXTENDED)."""
    with ctx.at("not"):
        trial = ctx.subcontext()
        _compare(trial, update.negated, original.negated)
        ctx.add(C.NOT_TYPE_NARROWED if trial.is_compatible() else C.NOT_TYPE_EXTENDED)


def _compare_object(ctx: _Context, original: _Object, update: _Object) -> None:
    """Confluent's ``ObjectSchemaDiff``: required flags, properties under the content models, dependencies,
    ``additionalProperties``, then the property counts."""
    _compare_required(ctx, original, update)
    _compare_properties(ctx, original, update)
    _compare_dependencies(ctx, original, update)
    _compare_additional_properties(ctx, original, update)
    _compare_limits(ctx, original.limits, update.limits)


def _compare_required(ctx: _Context, original: _Object, update: _Object) -> None:
    """A property both versions declare may stop being required; becoming required breaks old data that lacks it,
    unless the property has a default."""
    for name in original.properties:
        if name not in update.properties:
            continue
        was, now = name in original.required, name in update.required
        if was and not now:
            ctx.add(C.REQUIRED_ATTRIBUTE_REMOVED, "required", name)
        elif now and not was:
            with_default = "default" in update.properties[name].annotations
            ctx.add(C.REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED if with_default else C.REQUIRED_ATTRIBUTE_ADDED,
                    "required", name)


def _is_open(schema: _Object) -> bool:
    """Open content model: any undeclared property, of any type, is allowed (no patternProperties, and
    additionalProperties absent or true)."""
    return not schema.pattern_properties and schema.additional_schema is None and schema.additional_allowed


def _partially_open_schema(schema: _Object, name: str) -> _Schema | None:
    """The schema an undeclared property ``name`` must match in a partially open content model: the first matching
    patternProperties entry, else the additionalProperties schema. None in a closed model."""
    for pattern, pattern_schema in schema.pattern_properties:
        if _search(pattern, name):
            return pattern_schema
    return schema.additional_schema


def _search(pattern: str, text: str) -> bool:
    """Whether the regular expression finds a match in ``text``; a pattern Python cannot read matches nothing."""
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False


def _compare_properties(ctx: _Context, original: _Object, update: _Object) -> None:
    """A removed property is judged by the update's content model: open, it still allows the old values; partially
    open, they must match the schema that now covers the name; closed, they are rejected (unless the property was
    ``false``). An added property is judged by the original's content model: open, old data may already carry it
    with any value, so only an added ``{}`` is safe; partially open, the new schema must accept what covered the name
    before; closed, no old data has it, so it may be added unless it is required without a default."""
    names = list(original.properties) + [n for n in update.properties if n not in original.properties]
    for name in names:
        before, after = original.properties.get(name), update.properties.get(name)
        with ctx.at("properties", name):
            if before is not None and after is not None:
                _compare(ctx, before, after)
            elif before is not None:
                _property_removed(ctx, before, update, name)
            elif after is not None:
                _property_added(ctx, after, original, update, name)


def _property_removed(ctx: _Context, before: _Schema, update: _Object, name: str) -> None:
    if _is_open(update):
        ctx.add(C.PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL)
        return
    covering = _partially_open_schema(update, name)
    if covering is not None:
        covered = _trial_into(ctx, before, covering)
        ctx.add(C.PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL if covered
                else C.PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL)
    elif isinstance(before, _False):
        ctx.add(C.PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL)
    else:
        ctx.add(C.PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL)


def _property_added(ctx: _Context, after: _Schema, original: _Object, update: _Object, name: str) -> None:
    required = name in update.required
    with_default = "default" in after.annotations
    if _is_open(original):
        if isinstance(after, _Empty):
            ctx.add(C.PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL)
        elif required:
            ctx.add(C.REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL if with_default
                    else C.REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL)
        else:
            ctx.add(C.OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL)
        return
    covering = _partially_open_schema(original, name)
    if covering is not None:
        covered = _trial_into(ctx, covering, after)
        ctx.add(C.PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL if covered
                else C.PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL)
    if required:
        ctx.add(C.REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL if with_default
                else C.REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL)
    else:
        ctx.add(C.OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL)


def _trial_into(ctx: _Context, original: _Schema, update: _Schema) -> bool:
    """Compare in a trial context, keep what it found, and say whether it was compatible."""
    trial = ctx.subcontext()
    _compare(trial, original, update)
    ctx.differences.extend(trial.differences)
    return trial.is_compatible()


def _compare_dependencies(ctx: _Context, original: _Object, update: _Object) -> None:
    """``dependencies``: a property that requires others may require fewer (NARROWED) but not more; a dependent
    schema may be dropped but not added."""
    with ctx.at("dependencies"):
        names = list(original.property_dependencies)
        names += [n for n in update.property_dependencies if n not in original.property_dependencies]
        for name in names:
            before, after = original.property_dependencies.get(name), update.property_dependencies.get(name)
            if after is None:
                ctx.add(C.DEPENDENCY_ARRAY_REMOVED, name)
            elif before is None:
                ctx.add(C.DEPENDENCY_ARRAY_ADDED, name)
            elif before != after:
                ctx.add(C.DEPENDENCY_ARRAY_EXTENDED if after >= before
                        else C.DEPENDENCY_ARRAY_NARROWED if before >= after
                        else C.DEPENDENCY_ARRAY_CHANGED, name)
        names = list(original.schema_dependencies)
        names += [n for n in update.schema_dependencies if n not in original.schema_dependencies]
        for name in names:
            before_schema, after_schema = original.schema_dependencies.get(name), update.schema_dependencies.get(name)
            if after_schema is None:
                ctx.add(C.DEPENDENCY_SCHEMA_REMOVED, name)
            elif before_schema is None:
                ctx.add(C.DEPENDENCY_SCHEMA_ADDED, name)
            else:
                with ctx.at(name):
                    _compare(ctx, before_schema, after_schema)


def _compare_additional_properties(ctx: _Context, original: _Object, update: _Object) -> None:
    """Allowing undeclared properties is compatible (ADDED), forbidding them is not (REMOVED); constraining them with
    a schema narrows, dropping that schema extends; two schemas are compared."""
    with ctx.at("additionalProperties"):
        if original.additional_allowed != update.additional_allowed:
            ctx.add(C.ADDITIONAL_PROPERTIES_ADDED if update.additional_allowed else C.ADDITIONAL_PROPERTIES_REMOVED)
        elif original.additional_schema is None and update.additional_schema is not None:
            ctx.add(C.ADDITIONAL_PROPERTIES_NARROWED)
        elif original.additional_schema is not None and update.additional_schema is None:
            ctx.add(C.ADDITIONAL_PROPERTIES_EXTENDED)
        else:
            _compare(ctx, original.additional_schema, update.additional_schema)


def _compare_array(ctx: _Context, original: _Array, update: _Array) -> None:
    """Confluent's ``ArraySchemaDiff``: the schema of every item, positional items under the content models, the
    items past them, then counts and uniqueness (requiring unique items is incompatible, dropping it is not)."""
    with ctx.at("items"):
        _compare(ctx, original.items, update.items)
    _compare_tuple_items(ctx, original, update)
    with ctx.at("additionalItems"):
        if original.additional_allowed != update.additional_allowed:
            ctx.add(C.ADDITIONAL_ITEMS_REMOVED if original.additional_allowed else C.ADDITIONAL_ITEMS_ADDED)
        elif original.additional_schema is None and update.additional_schema is not None:
            ctx.add(C.ADDITIONAL_ITEMS_NARROWED)
        elif original.additional_schema is not None and update.additional_schema is None:
            ctx.add(C.ADDITIONAL_ITEMS_EXTENDED)
        else:
            _compare(ctx, original.additional_schema, update.additional_schema)
    _compare_limits(ctx, original.limits, update.limits)
    if original.unique != update.unique:
        ctx.add(C.UNIQUE_ITEMS_REMOVED if original.unique else C.UNIQUE_ITEMS_ADDED, "uniqueItems")


def _compare_tuple_items(ctx: _Context, original: _Array, update: _Array) -> None:
    """Positions both declare are compared. A position the update drops falls to the update's rule for further items
    (open: fine; a schema: must accept the old one; closed: incompatible unless it was ``false``). A position the
    update adds is judged by the original's rule for further items (open: only ``{}`` is safe; a schema: the new one
    must accept it; closed: old data never had it, fine)."""
    before, after = original.tuple_items, update.tuple_items
    for index in range(max(len(before), len(after))):
        with ctx.at("items", str(index)):
            if index < len(before) and index < len(after):
                _compare(ctx, before[index], after[index])
            elif index < len(before):
                _item_removed(ctx, before[index], update)
            else:
                _item_added(ctx, after[index], original)


def _item_removed(ctx: _Context, before: _Schema, update: _Array) -> None:
    if update.additional_allowed and update.additional_schema is None:
        ctx.add(C.ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL)
    elif update.additional_schema is not None:
        covered = _trial_into(ctx, before, update.additional_schema)
        ctx.add(C.ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL if covered
                else C.ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL)
    elif isinstance(before, _False):
        ctx.add(C.ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL)
    else:
        ctx.add(C.ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL)


def _item_added(ctx: _Context, after: _Schema, original: _Array) -> None:
    if original.additional_allowed and original.additional_schema is None:
        ctx.add(C.ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL if isinstance(after, _Empty)
                else C.ITEM_ADDED_TO_OPEN_CONTENT_MODEL)
    elif original.additional_schema is not None:
        covered = _trial_into(ctx, original.additional_schema, after)
        ctx.add(C.ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL if covered
                else C.ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL)
    else:
        ctx.add(C.ITEM_ADDED_TO_CLOSED_CONTENT_MODEL)
