"""Checking the chain: which rows were changed, deleted, inserted or reordered, found from the rows alone; and
its head (the count and the last hash), to keep elsewhere."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import asyncpg

from gateway.audit.chain import GENESIS, TABLE, ChainRow, Indexed, chain_hash

Kind = Literal["changed", "deleted", "inserted", "reordered"]
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


@dataclass(frozen=True)
class Finding:
    """Something done to the chain: what (kind), at which row (seq) and the evidence (detail)."""

    kind: Kind
    seq: int
    detail: str


START = -1  # parent of a row that links to GENESIS
MISSING = -2  # parent of a row whose prev_hash is the hash of no row


def classify(rows: Sequence[ChainRow]) -> list[Finding]:
    """What was done to a chain, found from its rows alone; an untouched chain gives no finding. The rules:

    1. changed (at the row's seq): the stored hash is not ``chain_hash(prev_hash, entry)``, or an indexed
       column (action, at, event_id, case_id, sender, contract, version) differs from what the entry says.
    2. Links: a row follows the row whose hash, stored or recomputed from its content, equals its prev_hash
       (so a row whose content or hash alone was changed still holds its place); the lowest seq wins when
       several rows share that hash. A changed row whose prev_hash fits no row follows the row at seq - 1
       when there is one: its prev_hash may be what was changed. A row with prev_hash GENESIS starts the
       chain; any other row that follows no row starts a fragment after a break.
    3. The chain is walked from its start, then from each fragment start in seq order. Where several rows
       follow the same row (or start the chain), the walk goes on through the one with the longest run of
       rows after it (on a tie, the lowest seq).
    4. inserted (at the row's seq): a row the walk does not reach: one that claims a predecessor the chain
       goes on from through another row, one that follows such a row, or one whose links run in a loop.
    5. deleted: each run of seq numbers missing between 1 and the highest seq, reported at its first missing
       seq; and each fragment start at seq 1 or whose seq - 1 is present (the rows were renumbered to close
       the gap, or the row before was rewritten with a new hash), reported at its own seq. A row that links
       to a made-up hash cannot be told from one whose predecessor was deleted, and is reported the same way.
    6. reordered (at the row's seq): the walked rows in walk order, compared with their seq numbers sorted;
       each row whose seq differs from the seq its place in the walk calls for. Swapping two rows' seq
       reports both.

    Deleting the last rows, or adding rows that extend the last one correctly, leaves a valid chain: those
    show only against a ``head`` recorded elsewhere.
    """
    ordered = sorted(rows, key=lambda r: r.seq)
    findings: list[Finding] = []

    recomputed = [chain_hash(r.prev_hash, r.entry) for r in ordered]
    changed: list[bool] = []
    for row, content_hash in zip(ordered, recomputed, strict=True):
        problems = []
        if content_hash != row.hash:
            problems.append("its hash is not the hash of its prev_hash and entry")
        derived = Indexed.of(row.entry)
        columns = [f.name for f in fields(Indexed) if getattr(row.indexed, f.name) != getattr(derived, f.name)]
        if columns:
            problems.append(f"column {', '.join(columns)} differs from its entry")
        changed.append(bool(problems))
        if problems:
            findings.append(Finding("changed", row.seq, "; ".join(problems)))

    owners: dict[str, list[int]] = {}
    for i, row in enumerate(ordered):
        for known in dict.fromkeys([row.hash, recomputed[i]]):
            owners.setdefault(known, []).append(i)
    by_seq: dict[int, int] = {}
    for i, row in enumerate(ordered):
        by_seq.setdefault(row.seq, i)
    parent: list[int] = []
    for i, row in enumerate(ordered):
        candidates = [j for j in owners.get(row.prev_hash, []) if j != i]
        if row.prev_hash == GENESIS:
            parent.append(START)
        elif candidates:
            parent.append(min(candidates))
        elif changed[i] and row.seq - 1 in by_seq:
            parent.append(by_seq[row.seq - 1])
        else:
            parent.append(MISSING)

    children: list[list[int]] = [[] for _ in ordered]
    for i, p in enumerate(parent):
        if p >= 0:
            children[p].append(i)
    starts = [i for i, p in enumerate(parent) if p == START]
    breaks = [i for i, p in enumerate(parent) if p == MISSING]
    reached = starts + breaks
    for i in reached:  # grows while it is read: every row below a start, parents before children
        reached.extend(children[i])
    after = [0] * len(ordered)  # the longest run of rows from each row on
    for i in reversed(reached):
        after[i] = 1 + max((after[c] for c in children[i]), default=0)

    def best(candidates: list[int]) -> int:
        return min(candidates, key=lambda c: (-after[c], c))

    def walk(i: int) -> list[int]:
        path = [i]
        while children[path[-1]]:
            path.append(best(children[path[-1]]))
        return path

    walked = [i for head in ([best(starts)] if starts else []) + breaks for i in walk(head)]
    on_chain = set(walked)
    reachable = set(reached)

    for i, row in enumerate(ordered):
        if i in on_chain:
            continue
        p = parent[i]
        if i not in reachable:
            detail = "its links run in a loop that never reaches the start of the chain"
        elif p >= 0 and p not in on_chain:
            detail = f"it follows seq {ordered[p].seq}, itself inserted"
        else:
            claimed = "the start of the chain" if p == START else f"seq {ordered[p].seq}"
            winner = best(starts if p == START else children[p])
            detail = (f"it claims the same predecessor ({claimed}) as seq {ordered[winner].seq}, "
                      "through which the chain goes on")
        findings.append(Finding("inserted", row.seq, detail))

    present = {row.seq for row in ordered}
    broken = {ordered[i].seq for i in breaks}
    expected = 1
    for seq in sorted(s for s in present if s >= 1):
        if seq > expected:
            span = f"seq {expected}" if seq == expected + 1 else f"seq {expected} to {seq - 1}"
            cause = f"seq {seq} links to a hash no row has" if seq in broken else "the rows around link up"
            findings.append(Finding("deleted", expected, f"{span} missing ({cause})"))
        expected = seq + 1
    for seq in sorted(broken):
        if seq - 1 in present or seq <= 1:
            findings.append(Finding("deleted", seq, f"seq {seq} links to a hash no row has: the row before it "
                                                    "was deleted, or rewritten with a new hash"))

    places = sorted(ordered[i].seq for i in walked)
    for i, place in zip(walked, places, strict=True):
        if ordered[i].seq != place:
            findings.append(Finding("reordered", ordered[i].seq, f"its links put it where seq {place} is"))

    return sorted(findings, key=lambda f: (f.seq, f.kind))


def _table(name: str) -> str:
    """A table name (``schema.table`` or ``table``) safe to put into SQL."""
    if not _TABLE_NAME.fullmatch(name):
        raise ValueError(f"not a table name: {name!r}")
    return name


def _stored_entry(text: str) -> Mapping[str, Any]:
    """A stored entry read back. One that is no longer a JSON object it can hash (tampered) stands as
    ``{"": text}``, whose hash fits no row."""
    try:
        entry = json.loads(text)
    except ValueError:
        return {"": text}
    return entry if isinstance(entry, dict) else {"": text}


async def verify(connection: asyncpg.Connection, table: str = TABLE) -> list[Finding]:
    """Every row of the chain table that was changed, deleted, inserted or reordered (rules: ``classify``)."""
    rows = await connection.fetch(
        "SELECT seq, prev_hash, hash, entry::text AS entry, action, at, event_id, case_id, sender, contract,"
        f" version FROM {_table(table)} ORDER BY seq"
    )
    return classify([
        ChainRow(r["seq"], r["prev_hash"], r["hash"], _stored_entry(r["entry"]),
                 Indexed(r["action"], r["at"], r["event_id"], r["case_id"], r["sender"], r["contract"], r["version"]))
        for r in rows
    ])


async def head(connection: asyncpg.Connection, table: str = TABLE) -> tuple[int, str]:
    """The number of rows and the hash of the last one (GENESIS when empty): what to keep elsewhere to
    notice later that rows were removed from or added to the end."""
    name = _table(table)
    row = await connection.fetchrow(
        f"SELECT count(*) AS rows, (SELECT hash FROM {name} ORDER BY seq DESC LIMIT 1) AS last FROM {name}"
    )
    return row["rows"], row["last"] or GENESIS
