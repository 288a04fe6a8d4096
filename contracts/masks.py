"""What a consumer without an agreement sees of a conditional field instead of nothing: a mask, declared per field
in the contract (``shared(..., mask=...)``, carried in the JSON Schema as ``x-mask``). Pure functions, no I/O: the
keyed hash takes its key from the caller (the gateway keeps it in its secrets folder, never in the database).

Every mask gives a string, so a masked field's view is its own type or a string. A mask never gives the clear
value: a value it cannot generalise (an ID number that is not one, a capital that is no number) becomes
``WITHHELD``."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

WITHHELD = "****"  # what stands for a value a mask cannot generalise, and before the characters a mask keeps
MASK_KEY_BYTES = 32
ID_NUMBER = re.compile(r"^\d{6}(\d{4})(\d{2})(\d{2})\d{3}[\dXx]$")  # GB 11643: 18 characters, birth date at 7-14


class MaskError(ValueError):
    """An ``x-mask`` the gateway cannot apply: unknown kind, or malformed."""


@dataclass(frozen=True)
class LastCharacters:
    """The last ``keep`` characters, after ``****``: ``****1234`` (a phone number's last four). A value with fewer
    than twice as many characters keeps half of them (rounded down), so the clear value never shows whole."""

    keep: int = 4
    kind: ClassVar[str] = "last-characters"
    takes: ClassVar[frozenset[str]] = frozenset({"string"})

    def apply(self, value: Any, key: bytes | None) -> str:
        if not isinstance(value, str):
            return WITHHELD
        shown = min(self.keep, len(value) // 2)
        return WITHHELD + (value[-shown:] if shown else "")

    def declared(self) -> dict[str, Any]:
        return {"kind": self.kind, "keep": self.keep}

    def describe(self) -> str:
        return f"the last {self.keep} characters after {WITHHELD}"


@dataclass(frozen=True)
class KeyedHash:
    """HMAC-SHA256 of the value under the gateway's key, in hex: the same value gives the same token, so consumers
    can join on it, and nobody without the key can tell a value from its token (nor try candidate values). Without
    a key (a process that holds none) the token is ``WITHHELD``."""

    kind: ClassVar[str] = "keyed-hash"
    takes: ClassVar[frozenset[str]] = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})

    def apply(self, value: Any, key: bytes | None) -> str:
        if not key:
            return WITHHELD
        canonical = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()

    def declared(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def describe(self) -> str:
        return "a keyed hash (HMAC-SHA256): the same value gives the same token"


@dataclass(frozen=True)
class BirthYear:
    """The birth year of an 18-character resident ID number (GB 11643), ``1985``; nothing else of it."""

    kind: ClassVar[str] = "birth-year"
    takes: ClassVar[frozenset[str]] = frozenset({"string"})

    def apply(self, value: Any, key: bytes | None) -> str:
        found = ID_NUMBER.fullmatch(value) if isinstance(value, str) else None
        if found is None:
            return WITHHELD
        year, month, day = (int(part) for part in found.groups())
        try:
            date(year, month, day)
        except ValueError:
            return WITHHELD
        return f"{year:04d}"

    def declared(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def describe(self) -> str:
        return "the birth year of the ID number"


@dataclass(frozen=True)
class Band:
    """The band a number falls in, between increasing ``bounds``: ``1000-5000万`` (registered capital in 10,000
    CNY), ``<100万`` below the first bound, ``≥10000万`` from the last."""

    bounds: tuple[float, ...]
    unit: str = ""
    kind: ClassVar[str] = "band"
    takes: ClassVar[frozenset[str]] = frozenset({"number", "integer"})

    def __post_init__(self) -> None:
        if not self.bounds or any(not math.isfinite(b) for b in self.bounds) \
                or list(self.bounds) != sorted(set(self.bounds)):
            raise MaskError("a band's bounds are finite numbers in increasing order")

    def apply(self, value: Any, key: bytes | None) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return WITHHELD
        if value < self.bounds[0]:
            return f"<{_number(self.bounds[0])}{self.unit}"
        for low, high in zip(self.bounds, self.bounds[1:], strict=False):
            if value < high:
                return f"{_number(low)}-{_number(high)}{self.unit}"
        return f"≥{_number(self.bounds[-1])}{self.unit}"

    def declared(self) -> dict[str, Any]:
        return {"kind": self.kind, "bounds": list(self.bounds), **({"unit": self.unit} if self.unit else {})}

    def describe(self) -> str:
        return f"the band it falls in (bounds {', '.join(_number(b) for b in self.bounds)}{self.unit})"


Mask = LastCharacters | KeyedHash | BirthYear | Band
KINDS = {m.kind: m for m in (LastCharacters, KeyedHash, BirthYear, Band)}
MASKED_VALUE_SCHEMA: dict[str, Any] = {"type": "string", "description": "masked: the consumer has no agreement for it"}


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def parse_mask(declared: Any) -> Mask:
    """The mask an ``x-mask`` declares: ``{"kind": "last-characters", "keep": 4}``, ``{"kind": "keyed-hash"}``,
    ``{"kind": "birth-year"}`` or ``{"kind": "band", "bounds": [...], "unit": "万"}``."""
    if not isinstance(declared, Mapping) or declared.get("kind") not in KINDS:
        raise MaskError(f"x-mask must be an object whose kind is one of: {', '.join(KINDS)}")
    kind = declared["kind"]
    others = set(declared) - {"kind"}
    if kind == LastCharacters.kind:
        keep = declared.get("keep")
        if others - {"keep"} or isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= 16:
            raise MaskError("x-mask last-characters takes keep, a whole number from 1 to 16")
        return LastCharacters(keep)
    if kind == Band.kind:
        bounds, unit = declared.get("bounds"), declared.get("unit", "")
        if others - {"bounds", "unit"} or not isinstance(bounds, list) or not 1 <= len(bounds) <= 32 \
                or any(isinstance(b, bool) or not isinstance(b, int | float) for b in bounds) \
                or not isinstance(unit, str) or len(unit) > 16:
            raise MaskError("x-mask band takes bounds (1 to 32 numbers, increasing) and an optional unit")
        return Band(tuple(float(b) for b in bounds), unit)
    if others:
        raise MaskError(f"x-mask {kind} takes no options")
    return KeyedHash() if kind == KeyedHash.kind else BirthYear()
