"""What an operator may see of a payload: the values of unconditional fields, and for every other value only
that it is there and its class. Conditional and not-shared values never leave this module, and a value whose
class cannot be determined (no contract, an unknown field, a schema the masker cannot follow) is masked: the
masker fails closed. The console and ``concord tail`` show payloads only through ``masked``. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.sharing import MAX_DEPTH, Sharing, branches, strictest

# What stands in place of a value the reader may not see: the class, never a part of the value.
MASKS: dict[Sharing | None, str] = {
    Sharing.CONDITIONAL: "‹masked: conditional›",
    Sharing.NOT_SHARED: "‹masked: not shared›",
    None: "‹masked: class unknown›",
}


def masked(payload: Any, schema: Mapping[str, Any] | None) -> Any:
    """The payload with every value the reader may not see replaced by its mask. ``schema`` is the contract
    version's JSON Schema (its top-level fields carry ``x-sharing``); None when the contract is not known, which
    masks every value (the member names of an object stay, so the reader sees the payload's shape)."""
    if schema is None:
        return _all_masked(payload, 0)
    return _object(payload, schema, schema, inherited=None, depth=0)


def _all_masked(value: Any, depth: int) -> Any:
    if isinstance(value, dict) and depth < MAX_DEPTH:
        return {str(k): _all_masked(v, depth + 1) for k, v in value.items()}
    return MASKS[None]


def _value(value: Any, schemas: list[Mapping[str, Any]], root: Mapping[str, Any], inherited: Sharing | None,
           depth: int) -> Any:
    sharing = strictest(schemas, inherited)
    if sharing is not Sharing.UNCONDITIONAL:
        return MASKS[sharing]
    if depth >= MAX_DEPTH:
        return MASKS[None]
    if isinstance(value, dict):
        return _members(value, schemas, root, sharing, depth)
    if isinstance(value, list):
        items = [b for s in schemas for b in branches(s.get("items"), root)] if any("items" in s for s in schemas) \
            else []
        return [_value(item, items, root, sharing, depth + 1) for item in value]
    return value


def _object(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any], inherited: Sharing | None,
            depth: int) -> Any:
    if not isinstance(value, dict):
        return MASKS[None] if inherited is not Sharing.UNCONDITIONAL else value
    return _members(value, list(branches(schema, root)), root, inherited, depth)


def _members(value: dict[str, Any], schemas: list[Mapping[str, Any]], root: Mapping[str, Any],
             inherited: Sharing | None, depth: int) -> dict[str, Any]:
    """An object's members: each by the schemas that declare it, with the class of what holds it unless it declares
    its own (the payload itself holds nothing: a top-level field without a class is undetermined). When the schemas
    declare members, a member none of them declares is undetermined; a free-form object's members take its class."""
    declares = any(isinstance(s.get("properties"), Mapping) for s in schemas)
    shown: dict[str, Any] = {}
    for key, member in value.items():
        found = [b for s in schemas if isinstance(s.get("properties"), Mapping) and key in s["properties"]
                 for b in branches(s["properties"][key], root)]
        if declares and not found:
            shown[str(key)] = MASKS[None]
        else:
            shown[str(key)] = _value(member, found, root, inherited, depth + 1)
    return shown
