"""The hash chain: every row holds one entry and ``hash = sha256(prev_hash + canonical JSON of the entry)``,
``prev_hash`` being the hash of the row before (``GENESIS`` for the first); and the columns a row keeps of its
entry for the indexes, derived from the entry alone."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64  # the prev_hash of the first row
TABLE = "gateway.audit_log"
POSITIONS = "gateway.audit_position"
AUDIT_CHANNEL = "gateway_audit"  # NOTIFY'd by the keeper with each batch it appends (gateway.verdicts listens)
INT4 = range(-(2**31), 2**31)


def canonical(entry: Mapping[str, Any]) -> str:
    """The text a hash covers: JSON with sorted keys, no spaces, non-ASCII characters as they are."""
    return json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def chain_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """The hash of a row: SHA-256 (hex) of the previous row's hash followed by the entry's canonical JSON."""
    return hashlib.sha256((prev_hash + canonical(entry)).encode()).hexdigest()


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
    """A row of the chain as stored: its place, its links, its entry and the entry's indexed columns."""

    seq: int
    prev_hash: str
    hash: str
    entry: Mapping[str, Any]
    indexed: Indexed


def link(seq: int, prev_hash: str, entry: Mapping[str, Any]) -> ChainRow:
    """The row that appends ``entry`` at ``seq`` after the row whose hash is ``prev_hash``."""
    return ChainRow(seq, prev_hash, chain_hash(prev_hash, entry), entry, Indexed.of(entry))
