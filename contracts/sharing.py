"""Where a contract's sharing classes apply: every member of its payload, the members of nested objects and the
items of arrays included, each with its class (declared by ``x-sharing``, or that of what holds it), its legal
basis and its mask (``x-mask``). The gateway's projection, the operators' masking, the consumers' view, the
registry's checks and the sharing catalogue all walk a schema through this module. No I/O.

A value follows its schema with local ``$ref``s resolved and ``allOf``, ``anyOf`` and ``oneOf`` opened up
(``branches``). A class is applied where a value's place is known from the schema alone: a property, an array's
items, through ``$ref``, ``allOf`` and a nullable ``anyOf``/``oneOf`` (a type or null). A class anywhere else (one
branch of a real choice, ``additionalProperties``, ``not``, ``if``…) is one the gateway cannot apply, and a
registration error (``problems``), as are a mask it does not know and constraints that a withheld member would
break."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from contracts.masks import MASKED_VALUE_SCHEMA, Mask, MaskError, parse_mask


class Sharing(StrEnum):
    """How freely a field may leave its owner (2016 measures; 2025 Regulation on Government Data Sharing)."""

    UNCONDITIONAL = "unconditional"  # any member of the exchange that consumes the contract
    CONDITIONAL = "conditional"  # only under a sharing agreement the owner approved; needs a legal basis
    NOT_SHARED = "not_shared"  # never leaves the owner


STRICTNESS = {Sharing.UNCONDITIONAL: 0, Sharing.CONDITIONAL: 1, Sharing.NOT_SHARED: 2}
MAX_DEPTH = 32  # deeper members are not followed: the value is taken whole with the class of what holds it
ITEMS = "*"  # a path's step into an array's items: refusals/*/department
# Keywords whose subschemas a value does not follow to a known place: a class under them cannot be applied.
UNFOLLOWED = ("anyOf", "oneOf", "not", "if", "then", "else", "patternProperties", "additionalProperties",
              "dependentSchemas", "prefixItems", "contains", "propertyNames", "unevaluatedItems",
              "unevaluatedProperties")


def resolve(root: Any, reference: str) -> Any:
    """What a local reference (``#`` or ``#/json/pointer``) names within the document; None when nothing."""
    if not reference.startswith("#"):
        return None
    node: Any = root
    for token in reference[1:].split("/")[1:] if reference != "#" else ():
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def branches(schema: Any, root: Mapping[str, Any], seen: frozenset[str] = frozenset()) -> Iterator[Mapping[str, Any]]:
    """The schemas a value may follow: the schema itself, with local ``$ref``s resolved and ``allOf``,
    ``anyOf`` and ``oneOf`` opened up (a reference that cannot be resolved yields nothing)."""
    if not isinstance(schema, Mapping):
        return
    reference = schema.get("$ref")
    if isinstance(reference, str):
        target = resolve(root, reference) if reference not in seen else None
        if target is not None:
            yield from branches(target, root, seen | {reference})
    yield schema
    for combinator in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(combinator) or ():
            yield from branches(branch, root, seen)


def strictest(schemas: list[Mapping[str, Any]], inherited: Sharing | None) -> Sharing | None:
    """The strictest class the schemas declare for a value, else the class of what holds it; None when one of
    them declares a class that is not one (undetermined)."""
    declared: list[Sharing] = []
    for schema in schemas:
        raw = schema.get("x-sharing")
        if raw is None:
            continue
        try:
            declared.append(Sharing(raw))
        except ValueError:
            return None
    if not declared:
        return inherited
    return max(declared, key=STRICTNESS.__getitem__)


@dataclass(frozen=True)
class Member:
    """A member of a payload (a field, a nested object's member, an array's items) and how it may be shared."""

    path: str  # field, field/member, field/*/member: what an agreement names to be granted it
    sharing: Sharing
    declared: bool  # declares its class (else it has the class of what holds it, and goes where that goes)
    legal_basis: str | None = None
    mask: Mask | None = None
    description: str = ""
    types: frozenset[str] = frozenset()  # the JSON types its schema allows (empty: not said)
    members: Mapping[str, Member] = field(default_factory=dict)  # of an object: the members its schema declares
    items: Member | None = None  # of an array
    classed_below: bool = False  # a member below declares a class of its own: the projection must go in
    problems: tuple[str, ...] = ()  # why the gateway cannot apply what it declares

    def visible(self, granted: frozenset[str]) -> bool:
        """Whether a consumer granted these paths sees it in clear, once it sees what holds it."""
        if not self.declared or self.sharing is Sharing.UNCONDITIONAL:
            return True
        return self.sharing is Sharing.CONDITIONAL and self.path in granted

    def walk(self) -> Iterator[Member]:
        yield self
        for member in self.members.values():
            yield from member.walk()
        if self.items is not None:
            yield from self.items.walk()


def members(schema: Mapping[str, Any]) -> dict[str, Member]:
    """The top-level members of a contract's JSON Schema, each with what is below it. A top-level field without
    a class (the registry refuses it) is taken as not shared: the projection fails closed."""
    root = _member("", list(branches(schema, schema)), schema, Sharing.NOT_SHARED, frozenset(), 0)
    return dict(root.members)


def every_member(schema: Mapping[str, Any]) -> Iterator[Member]:
    """Every member of a contract, depth first."""
    for member in members(schema).values():
        yield from member.walk()


def _types(schemas: list[Mapping[str, Any]]) -> frozenset[str]:
    found: set[str] = set()
    for schema in schemas:
        declared = schema.get("type")
        found.update([declared] if isinstance(declared, str) else declared if isinstance(declared, list) else [])
    return frozenset(t for t in found if isinstance(t, str))


def _member(path: str, schemas: list[Mapping[str, Any]], root: Mapping[str, Any], inherited: Sharing,
            refs: frozenset[str], depth: int) -> Member:
    problems: list[str] = []
    found = strictest(schemas, inherited)
    if found is None:
        problems.append(f"{path}: x-sharing must be unconditional, conditional or not_shared")
    sharing = found or Sharing.NOT_SHARED  # a class that is not one: withheld
    declared = any("x-sharing" in s for s in schemas)
    legal_basis = next((s["x-legal-basis"] for s in schemas if isinstance(s.get("x-legal-basis"), str)), None)
    if declared and sharing is Sharing.CONDITIONAL and not legal_basis:
        problems.append(f"conditional field {path!r} needs x-legal-basis")
    types = _types(schemas)
    mask: Mask | None = None
    declared_masks = [s["x-mask"] for s in schemas if "x-mask" in s]
    if declared_masks:
        try:
            mask = parse_mask(declared_masks[0])
        except MaskError as exc:
            problems.append(f"{path}: {exc}")
        if not (declared and sharing is Sharing.CONDITIONAL):
            problems.append(f"{path}: x-mask is for conditional fields (what a consumer without an agreement sees)")
            mask = None
        elif mask is not None and (not types - {"null"} or not types - {"null"} <= mask.takes):
            problems.append(f"{path}: x-mask {mask.kind} takes a field of type {' or '.join(sorted(mask.takes))}")
            mask = None
    description = next((s["description"] for s in schemas if isinstance(s.get("description"), str)), "")
    here = {s["$ref"] for s in schemas if isinstance(s.get("$ref"), str)}
    followed = refs | here
    if depth >= MAX_DEPTH or here & refs:  # a schema that holds itself: its members are not followed
        if any(node is not s and ("x-sharing" in node or "x-mask" in node) for s in schemas for node in _nodes(s)):
            problems.append(f"{path}: classes inside a schema that holds itself (or past {MAX_DEPTH} levels) are "
                            "not applied by the gateway")
        return Member(path, sharing, declared, legal_basis, mask, description, types, problems=tuple(problems))
    declared_members: dict[str, list[Mapping[str, Any]]] = {}
    for schema in schemas:
        properties = schema.get("properties")
        if isinstance(properties, Mapping):
            for name, sub in properties.items():
                declared_members.setdefault(str(name), []).extend(branches(sub, root))
    below = {name: _member(f"{path}/{name}" if path else name, subs, root, sharing, followed, depth + 1)
             for name, subs in declared_members.items()}
    problems.extend(f"{m.path}: a member with a class of its own is named without / or a lone {ITEMS} (an "
                    "agreement names it by its path)"
                    for name, m in below.items() if m.declared and ("/" in name or name == ITEMS))
    item_schemas = [b for s in schemas if isinstance(s.get("items"), Mapping) for b in branches(s["items"], root)]
    items = _member(f"{path}/{ITEMS}", item_schemas, root, sharing, followed, depth + 1) if item_schemas else None
    classed_below = any(m.declared or m.classed_below for m in [*below.values(), *([items] if items else [])])
    return Member(path, sharing, declared, legal_basis, mask, description, types, below, items, classed_below,
                  tuple(problems))


# --- what a consumer receives ------------------------------------------------------------------------------

_GONE = object()


def cut_alone(top: Mapping[str, Member], granted: frozenset[str]) -> frozenset[str] | None:
    """The top-level members a consumer granted these paths does not receive, when leaving them out is all that
    ``projected`` does for it (no member masked, none it sees with a class below it); else None."""
    cut: set[str] = set()
    for name, member in top.items():
        if not member.visible(granted):
            if member.mask is not None:
                return None
            cut.add(name)
        elif member.classed_below:
            return None
    return frozenset(cut)


def projected(payload: dict[str, Any], top: Mapping[str, Member], granted: frozenset[str],
              key: bytes | None, masked: set[str] | None = None) -> dict[str, Any] | None:
    """The payload as a consumer granted these paths receives it: members it may not see removed, or masked where
    the contract declares a mask (with the gateway's ``key`` for keyed hashes). None when nothing changes. The
    paths of the members masked are added to ``masked``, when given."""
    value, changed = _object(payload, top, granted, key, masked)
    return value if changed else None


def _object(value: dict[str, Any], declared: Mapping[str, Member], granted: frozenset[str], key: bytes | None,
            masked: set[str] | None) -> tuple[dict[str, Any], bool]:
    shown: dict[str, Any] = {}
    changed = False
    for name, member_value in value.items():
        member = declared.get(name)
        if member is None:  # a member of a free-form object: it goes where the object goes
            shown[name] = member_value
            continue
        result, cut = _project(member_value, member, granted, key, masked)
        changed |= cut
        if result is not _GONE:
            shown[name] = result
    return (shown if changed else value), changed


def _project(value: Any, member: Member, granted: frozenset[str], key: bytes | None, masked: set[str] | None
             ) -> tuple[Any, bool]:
    if not member.visible(granted):
        if member.mask is not None:
            if masked is not None:
                masked.add(member.path)
            return member.mask.apply(value, key), True
        return _GONE, True
    if not member.classed_below:
        return value, False
    if isinstance(value, dict):
        return _object(value, member.members, granted, key, masked)
    if isinstance(value, list) and member.items is not None:
        shown, changed = [], False
        for item in value:
            result, cut = _project(item, member.items, granted, key, masked)
            changed |= cut
            if result is not _GONE:
                shown.append(result)
        return (shown if changed else value), changed
    return value, False


def view_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of what a consumer receives: a member that is not unconditional may be withheld (it is not
    required) and a masked one may be a masked string instead of its value."""
    view = copy.deepcopy(dict(schema))
    for node in _nodes(view):
        properties = node.get("properties")
        if isinstance(properties, dict):
            withheld = {name for name, sub in properties.items()
                        if isinstance(sub, dict) and sub.get("x-sharing") in (Sharing.CONDITIONAL, Sharing.NOT_SHARED)}
            if isinstance(node.get("required"), list):
                node["required"] = [name for name in node["required"] if name not in withheld]
            for name, sub in properties.items():
                if isinstance(sub, dict) and "x-mask" in sub:
                    properties[name] = {"anyOf": [sub, MASKED_VALUE_SCHEMA]}
        items = node.get("items")
        if isinstance(items, dict) and "x-mask" in items:
            node["items"] = {"anyOf": [items, MASKED_VALUE_SCHEMA]}
    return view


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every object of a JSON document (a snapshot: the caller may change them)."""
    if isinstance(value, dict):
        yield value
        for child in list(value.values()):
            yield from _nodes(child)
    elif isinstance(value, list):
        for child in list(value):
            yield from _nodes(child)


# --- what the gateway cannot apply ------------------------------------------------------------------------

def problems(schema: Mapping[str, Any]) -> list[str]:
    """Why the gateway could not apply the classes and masks a contract's schema declares; empty when it can."""
    found = list(_unfollowed(schema, schema, "#", None, frozenset()))
    top = members(schema)
    for member in (m for t in top.values() for m in t.walk()):
        found.extend(member.problems)
    found.extend(_broken_constraints(schema, top))
    return list(dict.fromkeys(found))


def _nullable(alternatives: Any) -> bool:
    """A choice between one schema and null (what ``X | None`` becomes): a value's place is still known."""
    return isinstance(alternatives, list) and len(alternatives) == 2 \
        and sum(isinstance(a, Mapping) and a.get("type") == "null" and len(a) == 1 for a in alternatives) == 1


def _unfollowed(schema: Any, root: Mapping[str, Any], where: str, through: str | None, refs: frozenset[str]
                ) -> Iterator[str]:
    """The classes and masks under keywords a value's place cannot be told through."""
    if not isinstance(schema, Mapping):
        return
    if through is not None and ("x-sharing" in schema or "x-mask" in schema):
        yield (f"{where}: a class or mask inside {through} is one the gateway cannot apply (which values it "
               "concerns depends on the payload); declare it on a property")
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference not in refs:
        yield from _unfollowed(resolve(root, reference), root, reference, through, refs | {reference})
    for keyword, value in schema.items():
        if keyword == "properties" and isinstance(value, Mapping):
            for name, sub in value.items():
                yield from _unfollowed(sub, root, f"{where}/properties/{name}", through, refs)
        elif keyword == "items":
            yield from _unfollowed(value, root, f"{where}/items", through, refs)
        elif keyword == "allOf" or (keyword in ("anyOf", "oneOf") and _nullable(value)):
            for i, sub in enumerate(value if isinstance(value, list) else []):
                yield from _unfollowed(sub, root, f"{where}/{keyword}/{i}", through, refs)
        elif keyword in UNFOLLOWED:
            subs = value.values() if keyword in ("patternProperties", "dependentSchemas") and \
                isinstance(value, Mapping) else value if isinstance(value, list) else [value]
            for i, sub in enumerate(subs):
                yield from _unfollowed(sub, root, f"{where}/{keyword}/{i}", through or keyword, refs)


def _broken_constraints(schema: Mapping[str, Any], top: Mapping[str, Member]) -> Iterator[str]:
    """Constraints a consumer's view could not keep once withheld members are cut or masked."""
    def walk(schemas: list[Mapping[str, Any]], holder: Member) -> Iterator[str]:
        withheld = {name for name, m in holder.members.items() if m.declared and m.sharing is not Sharing.UNCONDITIONAL}
        for s in schemas:
            if withheld and ("minProperties" in s or "dependentRequired" in s):
                yield (f"{holder.path or '(root)'}: minProperties or dependentRequired on an object whose members "
                       f"{sorted(withheld)} may be withheld")
            properties = s.get("properties")
            required = s.get("required")
            declared_here = set(properties) if isinstance(properties, Mapping) else set()
            for name in withheld & set(required if isinstance(required, list) else []) - declared_here:
                yield (f"{holder.path or '(root)'}: {name!r} may be withheld but is required where it is not "
                       "declared (declare required beside the property)")
        items = holder.items
        if items is not None and (items.declared and items.sharing is not Sharing.UNCONDITIONAL):
            for s in schemas:
                if any(k in s for k in ("minItems", "contains", "minContains", "uniqueItems")):
                    yield (f"{holder.path}: minItems, contains or uniqueItems on an array whose items may be "
                           "withheld or masked")
        for name, member in holder.members.items():
            sub_schemas = [b for s in schemas if isinstance(s.get("properties"), Mapping) and name in s["properties"]
                           for b in branches(s["properties"][name], schema)]
            yield from walk(sub_schemas, member)
        if items is not None:
            yield from walk([b for s in schemas if isinstance(s.get("items"), Mapping)
                             for b in branches(s["items"], schema)], items)

    root = Member("", Sharing.UNCONDITIONAL, False, members=top)
    yield from walk(list(branches(schema, schema)), root)
