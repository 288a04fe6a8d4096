"""The audit log: the entries of the audit topic, appended once each to PostgreSQL as a hash chain.

Every row holds one entry and ``hash = sha256(prev_hash + canonical JSON of the entry)``, where ``prev_hash``
is the hash of the row before it (``GENESIS`` for the first). Changing, removing, adding or reordering rows
breaks a link, and ``verify`` says which of the four happened where. What the chain cannot show is a change
at its very end (the last rows removed, or rows added that extend it correctly): for that, compare ``head``
with a copy kept elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from base.settings import Settings
from contracts.departments import GATEWAY

log = logging.getLogger("concord.audit")

GENESIS = "0" * 64  # the prev_hash of the first row
TABLE = "gateway.audit_log"
POSITIONS = "gateway.audit_position"
APPEND_LOCK = 7_310_002  # advisory lock key that serialises appends (deploy.migrate holds 7_310_001)
BATCH_RECORDS = 1000
RETRY_SECONDS = 1.0
INT4 = range(-(2**31), 2**31)
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")

Kind = Literal["changed", "deleted", "inserted", "reordered"]


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


# --- reading the audit topic -------------------------------------------------------------------------------

def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _parse(value: bytes | None) -> dict[str, Any]:
    """The entry in a record's value; ValueError says why it cannot be stored as one."""
    entry = json.loads((value or b"").decode(), parse_constant=_reject_constant)
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    indexed = Indexed.of(entry)
    if indexed.action is None:
        raise ValueError("no action")
    if indexed.at is None:
        raise ValueError("no ISO-8601 at")
    if _holds_nul(entry):
        raise ValueError("holds U+0000, which jsonb cannot store")
    canonical(entry).encode()  # an infinite number or a lone surrogate raises ValueError here
    return entry


def decode_entry(value: bytes | None, key: bytes | None, timestamp_ms: int) -> dict[str, Any]:
    """The audit entry in a record of the audit topic. A record that is not a storable entry (not UTF-8 JSON,
    not an object with a text ``action`` and an ISO-8601 ``at``, or holding what jsonb cannot keep) becomes an
    ``unreadable`` entry with its raw text, the reason, and its key as the case id, at the record's timestamp:
    the log neither skips a record nor stops at one."""
    try:
        return _parse(value)
    except (ValueError, RecursionError) as exc:
        problem = str(exc)

    def readable(data: bytes | None) -> str | None:
        return None if data is None else data.decode("utf-8", "replace").replace("\x00", "\ufffd")

    return {"action": "unreadable", "at": datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat(),
            "detail": problem, "raw": readable(value), "case_id": readable(key)}


# --- the keeper -------------------------------------------------------------------------------------------

class AuditKeeper:
    """Appends the audit topic to the chain, exactly once. The records of each fetched batch and the offsets
    after them are written in one PostgreSQL transaction that holds an advisory lock and first re-reads the
    stored offsets, so records a crashed or a concurrent keeper already appended are skipped, never doubled.
    Reads committed records only: entries of aborted Kafka transactions never reach the log."""

    def __init__(self, settings: Settings, topic: str | None = None, batch_records: int = BATCH_RECORDS) -> None:
        self.settings = settings
        self.topic = topic or settings.topics.audit
        self.batch_records = batch_records
        self.access = settings.kafka(GATEWAY)
        self.consumer = AIOKafkaConsumer(
            **self.access.aiokafka(),
            client_id="gateway.audit-keeper",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        self.connection: asyncpg.Connection | None = None

    async def start(self) -> None:
        """Take every partition of the topic and continue from the stored offsets (or the beginning)."""
        partitions = await self._partitions()
        await self.consumer.start()
        connection = await self._connected()
        stored = await _positions(connection, self.topic)
        self.consumer.assign(partitions)
        for tp in partitions:
            if tp.partition in stored:
                self.consumer.seek(tp, stored[tp.partition])
            else:
                await self.consumer.seek_to_beginning(tp)
        log.info("audit keeper reading %s from %s", self.topic, stored or "the beginning")

    async def stop(self) -> None:
        await self.consumer.stop()
        if self.connection is not None:
            await self.connection.close()
            self.connection = None

    async def run(self, stop: asyncio.Event) -> None:
        """Append until ``stop`` is set. A failed batch is logged and fetched again after a pause."""
        try:
            await self.start()
            while not stop.is_set():
                try:
                    await self.step()
                except Exception:
                    log.exception("audit keeper: batch failed; retrying in %ss", RETRY_SECONDS)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), RETRY_SECONDS)
        finally:
            await self.stop()

    async def step(self, timeout_ms: int = 200) -> int:
        """Fetch one batch and append what is new in it. Returns the number of rows appended. When the append
        fails, the consumer is moved back so that the next step fetches the same records again."""
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=self.batch_records)
        records = [(tp.partition, r) for tp, rs in sorted(batch.items(), key=lambda item: item[0].partition)
                   for r in rs]
        if not records:
            return 0
        try:
            return await self._append(records)
        except Exception:
            for tp, rs in batch.items():
                self.consumer.seek(tp, rs[0].offset)
            raise

    async def _partitions(self) -> list[TopicPartition]:
        admin = AIOKafkaAdminClient(**self.access.aiokafka())
        await admin.start()
        try:
            [described] = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        if not described["partitions"]:
            raise RuntimeError(f"topic {self.topic} does not exist")
        return [TopicPartition(self.topic, p["partition"]) for p in sorted(described["partitions"],
                                                                            key=lambda p: p["partition"])]

    async def _connected(self) -> asyncpg.Connection:
        if self.connection is None or self.connection.is_closed():
            self.connection = await asyncpg.connect(self.settings.dsn(GATEWAY))
        return self.connection

    async def _append(self, records: list[tuple[int, ConsumerRecord]]) -> int:
        connection = await self._connected()
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
            stored = await _positions(connection, self.topic)
            fresh = [(partition, r) for partition, r in records if r.offset >= stored.get(partition, 0)]
            if not fresh:
                return 0
            entries = await _as_stored(connection, [decode_entry(r.value, r.key, r.timestamp) for _, r in fresh])
            last = await connection.fetchrow(f"SELECT seq, hash FROM {TABLE} ORDER BY seq DESC LIMIT 1")
            seq, prev_hash = (last["seq"], last["hash"]) if last else (0, GENESIS)
            rows = self._rows(fresh, entries, seq, prev_hash)
            try:
                async with connection.transaction():  # a savepoint: a row PostgreSQL refuses is taken alone below
                    await connection.executemany(INSERT, rows)
            except UNSTORABLE:
                rows = await self._append_one_by_one(connection, fresh, entries, seq, prev_hash)
            following = {partition: record.offset + 1 for partition, record in fresh}
            await connection.executemany(
                f"INSERT INTO {POSITIONS} (topic, kafka_partition, next_offset) VALUES ($1, $2, $3)"
                " ON CONFLICT (topic, kafka_partition) DO UPDATE"
                " SET next_offset = EXCLUDED.next_offset, updated_at = now()",
                [(self.topic, partition, offset) for partition, offset in following.items()],
            )
        return len(rows)

    def _rows(self, fresh: list[tuple[int, ConsumerRecord]], entries: list[tuple[str, dict[str, Any]]], seq: int,
              prev_hash: str) -> list[tuple[Any, ...]]:
        rows = []
        for (partition, record), (text, entry) in zip(fresh, entries, strict=True):
            row = link(seq + 1, prev_hash, entry)
            seq, prev_hash = row.seq, row.hash
            rows.append(self._values(row, text, partition, record.offset))
        return rows

    def _values(self, row: ChainRow, text: str, partition: int, offset: int) -> tuple[Any, ...]:
        i = row.indexed
        return (row.seq, i.at, i.action, i.event_id, i.case_id, i.sender, i.contract, i.version, text, self.topic,
                partition, offset, row.prev_hash, row.hash)

    async def _append_one_by_one(self, connection: asyncpg.Connection, fresh: list[tuple[int, ConsumerRecord]],
                                 entries: list[tuple[str, dict[str, Any]]], seq: int,
                                 prev_hash: str) -> list[tuple[Any, ...]]:
        """Append row by row; an entry PostgreSQL will not index (a value over an index's size) becomes an
        ``unreadable`` entry with the reason and a digest of the record, so the keeper never stalls on it."""
        rows = []
        for (partition, record), (text, entry) in zip(fresh, entries, strict=True):
            row = link(seq + 1, prev_hash, entry)
            values = self._values(row, text, partition, record.offset)
            try:
                async with connection.transaction():
                    await connection.execute(INSERT, *values)
            except UNSTORABLE as exc:
                [(text, entry)] = await _as_stored(connection, [unstorable(record.value, record.timestamp, exc)])
                row = link(seq + 1, prev_hash, entry)
                values = self._values(row, text, partition, record.offset)
                await connection.execute(INSERT, *values)
            seq, prev_hash = row.seq, row.hash
            rows.append(values)
        return rows


INSERT = (f"INSERT INTO {TABLE} (seq, at, action, event_id, case_id, sender, contract, version, entry, topic,"
          " kafka_partition, kafka_offset, prev_hash, hash)"
          " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14)")
UNSTORABLE = (asyncpg.DataError, asyncpg.ProgramLimitExceededError)


def unstorable(value: bytes | None, timestamp_ms: int, problem: Exception) -> dict[str, Any]:
    """The entry that stands for a record PostgreSQL would not store: why, and what it was (size and digest)."""
    raw = value or b""
    return {"action": "unreadable", "at": datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat(),
            "detail": f"cannot be stored: {type(problem).__name__}", "size": len(raw),
            "sha256": hashlib.sha256(raw).hexdigest()}


async def _positions(connection: asyncpg.Connection, topic: str) -> dict[int, int]:
    """The stored offset of the next record to append, by partition."""
    rows = await connection.fetch(f"SELECT kafka_partition, next_offset FROM {POSITIONS} WHERE topic = $1", topic)
    return {r["kafka_partition"]: r["next_offset"] for r in rows}


async def _as_stored(connection: asyncpg.Connection, entries: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Each entry as jsonb text and as read back from it. jsonb writes some numbers in its own notation
    (1e+16 as 10000000000000000), so the hash is taken over what the row will give back to ``verify``."""
    rows = await connection.fetch(
        "SELECT e::jsonb::text AS text FROM unnest($1::text[]) WITH ORDINALITY AS t(e, n) ORDER BY n",
        [canonical(entry) for entry in entries],
    )
    return [(r["text"], json.loads(r["text"])) for r in rows]


# --- checking the chain -----------------------------------------------------------------------------------

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


async def query(
    connection: asyncpg.Connection,
    *,
    case_id: str | None = None,
    department: str | None = None,
    contract: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """The latest ``limit`` entries that match every filter given, newest last. ``department`` matches the
    sender, any consumer the entry delivered to, or a party to the agreement it is about; ``since``
    (inclusive) and ``until`` (exclusive) bound the entry's own ``at``."""
    conditions: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if case_id is not None:
        conditions.append(f"case_id = {arg(case_id)}")
    if department is not None:
        named = arg(department)
        conditions.append(f"(sender = {named} OR entry -> 'delivered' ? {named} OR entry -> 'parties' ? {named})")
    if contract is not None:
        conditions.append(f"contract = {arg(contract)}")
    if since is not None:
        conditions.append(f"at >= {arg(since)}")
    if until is not None:
        conditions.append(f"at < {arg(until)}")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = await connection.fetch(
        f"SELECT entry::text AS entry FROM (SELECT seq, entry FROM {TABLE} {where} ORDER BY seq DESC"
        f" LIMIT {arg(limit)}) latest ORDER BY seq",
        *args,
    )
    return [json.loads(r["entry"]) for r in rows]
