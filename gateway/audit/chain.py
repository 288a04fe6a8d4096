"""The hash chain: every row holds one entry and a hash over ``prev_hash`` (the hash of the row before, ``GENESIS``
for the first) and its content, taken by the row's ``scheme``: rows appended since the anchoring (``RECORD``)
cover the entry and the audit record it was read from (topic, partition, offset and Kafka timestamp); rows
appended before it (``ENTRY``) the entry alone, and are still checked that way. And the columns a row keeps of its
entry for the indexes, derived from the entry alone."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

GENESIS = "0" * 64  # the prev_hash of the first row
TABLE = "gateway.audit_log"
POSITIONS = "gateway.audit_position"
AUDIT_CHANNEL = "gateway_audit"  # NOTIFY'd by the keeper with each batch it appends (gateway.verdicts listens)
INT4 = range(-(2**31), 2**31)
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


class Scheme(IntEnum):
    """What a row's hash covers besides ``prev_hash`` (its ``scheme`` column)."""

    ENTRY = 1  # the canonical JSON of the entry: rows appended before migration 008
    RECORD = 2  # the canonical JSON of the entry with the audit record's topic, partition, offset and timestamp


@dataclass(frozen=True)
class Origin:
    """The audit topic's record an entry was read from: where it is, and its Kafka timestamp (ms since the
    epoch; None only in rows appended before the anchoring, which did not keep it)."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None


def table_name(name: str) -> str:
    """A table name (``schema.table`` or ``table``) safe to put into SQL."""
    if not _TABLE_NAME.fullmatch(name):
        raise ValueError(f"not a table name: {name!r}")
    return name


def canonical(entry: Mapping[str, Any]) -> str:
    """The text a hash covers: JSON with sorted keys, no spaces, non-ASCII characters as they are."""
    return json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def chain_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """The hash of an ``ENTRY`` row: SHA-256 (hex) of the previous row's hash followed by the entry's canonical
    JSON."""
    return hashlib.sha256((prev_hash + canonical(entry)).encode()).hexdigest()


def record_hash(prev_hash: str, entry: Mapping[str, Any], origin: Origin) -> str:
    """The hash of a ``RECORD`` row: SHA-256 (hex) of the previous row's hash followed by the canonical JSON of
    ``{"entry", "topic", "partition", "offset", "timestamp"}``, so that a row moved to another record's place or
    time no longer fits its hash. A routed event's entry holds the digest of each payload delivered
    (``delivered_sha256``), which the hash covers with the rest of the entry."""
    content = {"entry": entry, "topic": origin.topic, "partition": origin.partition, "offset": origin.offset,
               "timestamp": origin.timestamp}
    return hashlib.sha256((prev_hash + canonical(content)).encode()).hexdigest()


MAX_INDEXED_TEXT = 256  # longer values stay in the entry but not in its indexed columns


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_INDEXED_TEXT else None


def _instant(value: Any) -> datetime | None:
    """An ISO-8601 time; one without an offset is taken as UTC."""
    if not isinstance(value, str):
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Indexed:
    """The fields of an entry that also have columns of their own, for the indexes. They are derived from
    the entry alone (empty or mistyped values as NULL), so a column that no longer says what the entry says
    shows as a change."""

    action: str | None
    at: datetime | None
    event_id: str | None
    case_id: str | None
    sender: str | None
    contract: str | None
    version: int | None

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> Indexed:
        version = entry.get("version")
        return cls(
            action=_text(entry.get("action")),
            at=_instant(entry.get("at")),
            event_id=_text(entry.get("event_id")),
            case_id=_text(entry.get("case_id")),
            sender=_text(entry.get("sender")),
            contract=_text(entry.get("contract")),
            version=version if isinstance(version, int) and not isinstance(version, bool) and version in INT4
            else None,
        )


@dataclass(frozen=True)
class ChainRow:
    """A row of the chain as stored: its place, its links, its entry and the entry's indexed columns, the
    record it was read from, and the scheme of its hash (as stored: any number)."""

    seq: int
    prev_hash: str
    hash: str
    entry: Mapping[str, Any]
    indexed: Indexed
    origin: Origin
    scheme: int

    def content_hash(self) -> str | None:
        """The hash its content calls for under its scheme (None for a scheme that does not exist)."""
        if self.scheme == Scheme.ENTRY:
            return chain_hash(self.prev_hash, self.entry)
        if self.scheme == Scheme.RECORD:
            return record_hash(self.prev_hash, self.entry, self.origin)
        return None


def link(seq: int, prev_hash: str, entry: Mapping[str, Any], origin: Origin) -> ChainRow:
    """The row that appends ``entry``, read from the record at ``origin``, at ``seq`` after the row whose hash
    is ``prev_hash``."""
    return ChainRow(seq, prev_hash, record_hash(prev_hash, entry, origin), entry, Indexed.of(entry), origin,
                    Scheme.RECORD)
