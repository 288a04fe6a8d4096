"""Checking the chain: which rows were changed, deleted, inserted or reordered, found from the rows alone
(``classify``); whether its tail was cut off or the whole of it rewritten, or an anchor forged, found against the
signed anchors on the broker (``against_anchors``); both together, as the command line and the console run them
(``check``); and its head (the count and the last hash)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import asyncpg

from gateway.audit.anchor import Anchor, Anchored, AnchorLog, Forged, Reading
from gateway.audit.chain import GENESIS, TABLE, ChainRow, Indexed, Origin, Scheme, table_name

Kind = Literal["changed", "deleted", "inserted", "reordered", "truncated", "rewritten", "forged"]


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

    A row's hash is taken by its scheme (``Scheme``); a row of an unknown scheme, or hashed the old way
    (``ENTRY``) after a row hashed with its record (``RECORD``), is changed too.

    Deleting the last rows, or rewriting the chain with every hash recomputed, leaves a valid chain: those
    show only against the anchors (``against_anchors``).
    """
    ordered = sorted(rows, key=lambda r: r.seq)
    findings: list[Finding] = []

    recomputed = [r.content_hash() for r in ordered]
    first_record = min((r.seq for r in ordered if r.scheme == Scheme.RECORD), default=None)
    changed: list[bool] = []
    for row, content_hash in zip(ordered, recomputed, strict=True):
        problems = []
        if content_hash is None:
            problems.append(f"its hash scheme {row.scheme} does not exist")
        elif content_hash != row.hash:
            problems.append("its hash is not the hash of its prev_hash and content")
        if row.scheme == Scheme.ENTRY and first_record is not None and row.seq > first_record:
            problems.append(f"it is hashed without its record, after seq {first_record} was hashed with it")
        derived = Indexed.of(row.entry)
        if derived != row.indexed:
            columns = [f.name for f in fields(Indexed) if getattr(row.indexed, f.name) != getattr(derived, f.name)]
            problems.append(f"column {', '.join(columns)} differs from its entry")
        changed.append(bool(problems))
        if problems:
            findings.append(Finding("changed", row.seq, "; ".join(problems)))

    owners: dict[str, list[int]] = {}
    for i, row in enumerate(ordered):
        for known in dict.fromkeys([row.hash, recomputed[i] or row.hash]):
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


def against_anchors(rows: Sequence[ChainRow], readings: Sequence[Reading]) -> list[Finding]:
    """What the anchors of the chain show that its rows cannot. The rules:

    1. forged (at the seq it claims, else 0): each record under the chain's key that is not an anchor of this
       chain signed by its key.
    2. truncated (at the seq after the last row): the highest anchored seq is above the chain's last seq.
    3. rewritten (at the lowest anchored seq whose row's hash is not the anchored hash): an anchor that no
       longer agrees with the row at its seq; the rows after the highest agreeing anchor below it, up to it, were
       changed. Every later anchor disagrees too (each hash covers the rows before it): they are counted in the
       detail, not reported again. An anchored seq with no row, below the last, is the deletion ``classify``
       reports.
    """
    findings = [Finding("forged", f.seq or 0, f"the record at offset {f.offset} of the anchor topic: {f.why}")
                for f in readings if isinstance(f, Forged)]
    anchors = sorted((r for r in readings if isinstance(r, Anchored)), key=lambda r: (r.anchor.seq, r.offset))
    hashes = {row.seq: row.hash for row in rows}
    last = max(hashes, default=0)
    if anchors and anchors[-1].anchor.seq > last:
        top = anchors[-1]
        findings.append(Finding("truncated", last + 1, (
            f"the chain ends at seq {last}, but {_said(top)} {top.anchor.count} entries up to seq {top.anchor.seq}"
            f" (hash {top.anchor.hash[:16]}…): the rows after seq {last} were removed")))
    held = [a for a in anchors if a.anchor.seq in hashes]
    disagreeing = [a for a in held if hashes[a.anchor.seq] != a.anchor.hash]
    if disagreeing:
        first = disagreeing[0]
        seq = first.anchor.seq
        since = max((a.anchor.seq for a in held if a.anchor.seq < seq and hashes[a.anchor.seq] == a.anchor.hash),
                    default=0)
        later = len({a.anchor.seq for a in disagreeing} - {seq})
        findings.append(Finding("rewritten", seq, (
            f"the row at seq {seq} has hash {hashes[seq][:16]}…, but {_said(first)} {first.anchor.hash[:16]}…: "
            f"rows after seq {since} up to seq {seq} were rewritten"
            + (f"; {later} later anchored seq disagree too" if later else ""))))
    return sorted(findings, key=lambda f: (f.seq, f.kind))


def _said(found: Anchored) -> str:
    return f"the anchor of {found.anchor.at.isoformat()} (offset {found.offset}) says"


def _stored_entry(text: str) -> Mapping[str, Any]:
    """A stored entry read back. One that is no longer a JSON object it can hash (tampered) stands as
    ``{"": text}``, whose hash fits no row."""
    try:
        entry = json.loads(text)
    except ValueError:
        return {"": text}
    return entry if isinstance(entry, dict) else {"": text}


async def _fetch_rows(connection: asyncpg.Connection, table: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await connection.fetch(
        "SELECT seq, prev_hash, hash, entry::text AS entry, action, at, event_id, case_id, sender, contract,"
        f" version, topic, kafka_partition, kafka_offset, kafka_timestamp, scheme FROM {table_name(table)}"
        " ORDER BY seq"
    )
    return rows


def _chain_rows(records: Sequence[asyncpg.Record]) -> list[ChainRow]:
    return [
        ChainRow(r["seq"], r["prev_hash"], r["hash"], _stored_entry(r["entry"]),
                 Indexed(r["action"], r["at"], r["event_id"], r["case_id"], r["sender"], r["contract"], r["version"]),
                 Origin(r["topic"], r["kafka_partition"], r["kafka_offset"], r["kafka_timestamp"]), r["scheme"])
        for r in records
    ]


async def chain_rows(connection: asyncpg.Connection, table: str = TABLE) -> list[ChainRow]:
    return _chain_rows(await _fetch_rows(connection, table))


async def verify(connection: asyncpg.Connection, table: str = TABLE) -> list[Finding]:
    """Every row of the chain table that was changed, deleted, inserted or reordered, from the rows alone (rules:
    ``classify``); ``check`` also holds the chain against its anchors."""
    return classify(await chain_rows(connection, table))


@dataclass(frozen=True)
class Verification:
    """A chain checked against its anchors: the findings, its size and head, and its anchors."""

    findings: list[Finding]
    count: int
    head: str
    anchors: int  # genuine anchors read
    latest: Anchor | None  # the genuine anchor of the highest seq


async def check(connection: asyncpg.Connection, anchors: AnchorLog, table: str = TABLE) -> Verification:
    """The chain in ``table`` checked link by link (``classify``) and against every anchor of it on the broker
    (``against_anchors``): what ``concord audit verify`` and the console's verification report. The anchors are
    read first: the keeper anchors only what it committed, so the rows read after them hold every anchored seq."""
    readings = await anchors.read(table_name(table))  # first: every anchored seq is then in the rows read below
    records = await _fetch_rows(connection, table)
    # Parsing and hashing a long chain takes seconds of CPU: in a thread, so that the process (a gateway routing
    # events, say) goes on meanwhile.
    return await asyncio.to_thread(_checked, records, readings)


def _checked(records: Sequence[asyncpg.Record], readings: Sequence[Reading]) -> Verification:
    rows = _chain_rows(records)
    genuine = sorted((r.anchor for r in readings if isinstance(r, Anchored)), key=lambda a: a.seq)
    last = max(rows, key=lambda r: r.seq, default=None)
    findings = sorted(classify(rows) + against_anchors(rows, readings), key=lambda f: (f.seq, f.kind))
    return Verification(findings, len(rows), last.hash if last else GENESIS, len(genuine),
                        genuine[-1] if genuine else None)


async def head(connection: asyncpg.Connection, table: str = TABLE) -> tuple[int, str]:
    """The number of rows and the hash of the last one (GENESIS when empty)."""
    name = table_name(table)
    row = await connection.fetchrow(
        f"SELECT count(*) AS rows, (SELECT hash FROM {name} ORDER BY seq DESC LIMIT 1) AS last FROM {name}"
    )
    return row["rows"], row["last"] or GENESIS
