"""How two JSON documents differ, path by path: what one has that the other lacks, and what changed. Used to say
how a contract version differs from the one registered under its number.

Paths are JSON pointers from the root, written as the compatibility check writes them (``#/properties/name``), in
the order of the members' names.
Arrays of plain values (``required``, ``enum``, ``type``) are compared as sets: an item added or removed is named
by its value, not by a shifting index; other arrays are compared item by item."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

SHOWN = 60  # characters of a value a line shows


class Edit(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True)
class JsonChange:
    edit: Edit
    path: str
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        if self.edit is Edit.ADDED:
            return f"added   {self.path}: {shown(self.new)}"
        if self.edit is Edit.REMOVED:
            return f"removed {self.path}: {shown(self.old)}"
        return f"changed {self.path}: {shown(self.old)} -> {shown(self.new)}"


def shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= SHOWN else text[:SHOWN - 1] + "…"


def json_changes(old: Any, new: Any, path: str = "#") -> list[JsonChange]:
    """Every difference from ``old`` to ``new``; empty when they are the same JSON value."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[JsonChange] = []
        for key in sorted(old.keys() | new.keys()):  # in name order: a stored document keeps no order of its own
            at = f"{path}/{_escape(key)}"
            if key not in new:
                changes.append(JsonChange(Edit.REMOVED, at, old[key]))
            elif key not in old:
                changes.append(JsonChange(Edit.ADDED, at, new=new[key]))
            else:
                changes += json_changes(old[key], new[key], at)
        return changes
    if isinstance(old, list) and isinstance(new, list):
        if all(_plain(v) for v in old + new):
            return _set_changes(old, new, path)
        changes = []
        for i, (before, after) in enumerate(zip(old, new, strict=False)):
            changes += json_changes(before, after, f"{path}/{i}")
        changes += [JsonChange(Edit.REMOVED, f"{path}/{i}", old[i]) for i in range(len(new), len(old))]
        changes += [JsonChange(Edit.ADDED, f"{path}/{i}", new=new[i]) for i in range(len(old), len(new))]
        return changes
    return [] if _same(old, new) else [JsonChange(Edit.CHANGED, path, old, new)]


def _set_changes(old: list[Any], new: list[Any], path: str) -> list[JsonChange]:
    before, after = Counter(map(_key, old)), Counter(map(_key, new))
    if before == after:
        return [] if [_key(v) for v in old] == [_key(v) for v in new] else [JsonChange(Edit.CHANGED, path, old, new)]
    removed = [v for v in old if _key(v) not in after]
    added = [v for v in new if _key(v) not in before]
    if not removed and not added:  # only how often a value appears changed
        return [JsonChange(Edit.CHANGED, path, old, new)]
    return [JsonChange(Edit.REMOVED, path, v) for v in removed] + [JsonChange(Edit.ADDED, path, new=v) for v in added]


def _plain(value: Any) -> bool:
    return not isinstance(value, dict | list)


def _key(value: Any) -> str:
    return json.dumps(value)  # as JSON text: true and 1, 1 and 1.0 are different values, as in a fingerprint


def _same(old: Any, new: Any) -> bool:
    return _key(old) == _key(new)


def _escape(key: str) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")
