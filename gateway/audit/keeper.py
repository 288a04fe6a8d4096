"""The audit keeper: appends the audit topic to the chain in PostgreSQL, exactly once, and never stalls on an
entry (one it cannot store stands in the chain as ``unreadable``, with why); and anchors the chain's head, signed,
on the broker (``anchor``)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from base.clock import Clock, SystemClock
from base.kafka import stop_client
from base.settings import Settings
from contracts.departments import GATEWAY
from gateway.audit.anchor import ANCHOR_SECONDS, Anchoring, signing_key
from gateway.audit.chain import (
    AUDIT_CHANNEL,
    GENESIS,
    POSITIONS,
    TABLE,
    ChainRow,
    Indexed,
    Origin,
    canonical,
    link,
    table_name,
)
from gateway.audit.entry import AuditAction, AuditEntry
from gateway.topics import partitions_of

log = logging.getLogger("concord.audit")
APPEND_LOCK = 7_310_002  # advisory lock key that serialises appends (deploy.migrate holds 7_310_001)
BATCH_RECORDS = 1000
# The keeper is on no event's way: the broker holds its fetch until this much is there or this long has passed, so
# that an append takes many entries (one fetch and one append a quarter second under load, not one a transaction).
FETCH_MIN_BYTES = 256 * 1024
FETCH_MAX_WAIT_MS = 250
RETRY_SECONDS = 1.0
STALL_SECONDS = 60.0  # failing every batch for this long: the keeper is stuck, its liveness probe fails


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

    return AuditEntry(action=AuditAction.UNREADABLE, at=datetime.fromtimestamp(timestamp_ms / 1000, UTC),
                      detail=problem, raw=readable(value), case_id=readable(key)).as_dict()


class AuditKeeper:
    """Appends the audit topic to the chain, exactly once. The records of each fetched batch and the offsets
    after them are written in one PostgreSQL transaction that holds an advisory lock and first re-reads the
    stored offsets, so records a crashed or a concurrent keeper already appended are skipped, never doubled.
    Reads committed records only: entries of aborted Kafka transactions never reach the log.

    The head the keeper committed is anchored every ``anchor_seconds`` while the chain grows, and on stop: signed
    with the deployment's anchor key and published, keyed by ``table``, to the anchor topic."""

    def __init__(self, settings: Settings, topic: str | None = None, batch_records: int = BATCH_RECORDS,
                 table: str = TABLE, clock: Clock | None = None, anchor_seconds: float = ANCHOR_SECONDS) -> None:
        self.settings = settings
        self.topic = topic or settings.topics.audit
        self.batch_records = batch_records
        self.table = table_name(table)
        self.insert = insert_into(self.table)
        self.prepare = prepare_from(self.table)
        self.access = settings.kafka(GATEWAY)
        self.anchoring = Anchoring(self.access, settings.topics.audit_anchor, self.table,
                                   signing_key(settings.secrets.anchor_key_file), clock or SystemClock(),
                                   anchor_seconds)
        self.consumer = AIOKafkaConsumer(
            **self.access.aiokafka(),
            client_id="gateway.audit-keeper",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_min_bytes=FETCH_MIN_BYTES,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        self.connection: asyncpg.Connection | None = None
        self.progressed_at = time.monotonic()  # the last batch appended, or the last fetch with nothing new

    async def stalled(self) -> str | None:
        """Liveness: None unless every batch has failed for ``STALL_SECONDS``."""
        idle = time.monotonic() - self.progressed_at
        return None if idle <= STALL_SECONDS else f"the audit keeper has appended nothing for {idle:.0f} s"

    async def start(self) -> None:
        """Take every partition of the topic and continue from the stored offsets (or the beginning)."""
        partitions = await self._partitions()
        await self.anchoring.start()
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
        """Anchor the head appended since the last anchor, then let go of the broker and the database."""
        try:
            await self.anchoring.stop()
        finally:
            await stop_client(self.consumer.stop, "the audit keeper's consumer")
            if self.connection is not None:
                await self.connection.close()
                self.connection = None

    async def run(self, stop: asyncio.Event) -> None:
        """Append until ``stop`` is set, anchoring the head when it is due. A failed batch is logged and fetched
        again after a pause."""
        try:
            await self.start()
            while not stop.is_set():
                try:
                    await self.step()
                    self.progressed_at = time.monotonic()
                    await self.anchoring.due()
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
        partitions = await partitions_of(self.access, self.topic)
        if not partitions:
            raise RuntimeError(f"topic {self.topic} does not exist")
        return partitions

    async def _connected(self) -> asyncpg.Connection:
        if self.connection is None or self.connection.is_closed():
            self.connection = await asyncpg.connect(self.settings.dsn(GATEWAY))
        return self.connection

    async def _append(self, records: list[tuple[int, ConsumerRecord]]) -> int:
        connection = await self._connected()
        async with connection.transaction():
            # The lock is a statement of its own: a statement reads what was committed when it began, and what
            # follows must see every append committed before the lock was granted.
            await connection.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
            decoded = [decode_entry(r.value, r.key, r.timestamp) for _, r in records]
            state = await connection.fetchrow(self.prepare, self.topic, [canonical(entry) for entry in decoded])
            stored = {int(p): o for p, o in json.loads(state["stored"] or "{}").items()}
            kept = [i for i, (partition, r) in enumerate(records) if r.offset >= stored.get(partition, 0)]
            if not kept:
                return 0
            fresh = [records[i] for i in kept]
            entries = [(text, json.loads(text)) for text in (state["texts"][i] for i in kept)]
            seq, prev_hash = (state["seq"], state["hash"]) if state["seq"] is not None else (0, GENESIS)
            rows = self._rows(fresh, entries, seq, prev_hash)
            try:
                async with connection.transaction():  # a savepoint: a row PostgreSQL refuses is taken alone below
                    await connection.executemany(self.insert, [self._values(row, text) for row, text in rows])
            except UNSTORABLE:
                rows = await self._append_one_by_one(connection, fresh, entries, seq, prev_hash)
            following = {partition: record.offset + 1 for partition, record in fresh}
            # the offsets after them, and a notification delivered when this commits
            await connection.execute(MOVE_ON, self.topic, list(following), list(following.values()), AUDIT_CHANNEL)
        head, _ = rows[-1]
        self.anchoring.grew(head.seq, head.hash)  # committed: the head is the keeper's to anchor
        return len(rows)

    def _origin(self, partition: int, record: ConsumerRecord) -> Origin:
        return Origin(self.topic, partition, record.offset, record.timestamp)

    def _rows(self, fresh: list[tuple[int, ConsumerRecord]], entries: list[tuple[str, dict[str, Any]]], seq: int,
              prev_hash: str) -> list[tuple[ChainRow, str]]:
        rows = []
        for (partition, record), (text, entry) in zip(fresh, entries, strict=True):
            row = link(seq + 1, prev_hash, entry, self._origin(partition, record))
            seq, prev_hash = row.seq, row.hash
            rows.append((row, text))
        return rows

    @staticmethod
    def _values(row: ChainRow, text: str) -> tuple[Any, ...]:
        i, o = row.indexed, row.origin
        return (row.seq, i.at, i.action, i.event_id, i.case_id, i.sender, i.contract, i.version, text, o.topic,
                o.partition, o.offset, o.timestamp, row.scheme, row.prev_hash, row.hash)

    async def _append_one_by_one(self, connection: asyncpg.Connection, fresh: list[tuple[int, ConsumerRecord]],
                                 entries: list[tuple[str, dict[str, Any]]], seq: int,
                                 prev_hash: str) -> list[tuple[ChainRow, str]]:
        """Append row by row; an entry PostgreSQL will not index (a value over an index's size) becomes an
        ``unreadable`` entry with the reason and a digest of the record, so the keeper never stalls on it."""
        rows = []
        for (partition, record), (text, entry) in zip(fresh, entries, strict=True):
            origin = self._origin(partition, record)
            row = link(seq + 1, prev_hash, entry, origin)
            try:
                async with connection.transaction():
                    await connection.execute(self.insert, *self._values(row, text))
            except UNSTORABLE as exc:
                [(text, entry)] = await _as_stored(connection, [unstorable(record.value, record.timestamp, exc)])
                row = link(seq + 1, prev_hash, entry, origin)
                await connection.execute(self.insert, *self._values(row, text))
            seq, prev_hash = row.seq, row.hash
            rows.append((row, text))
        return rows


def insert_into(table: str) -> str:
    return (f"INSERT INTO {table} (seq, at, action, event_id, case_id, sender, contract, version, entry, topic,"
            " kafka_partition, kafka_offset, kafka_timestamp, scheme, prev_hash, hash)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15, $16)")


def stored_texts(parameter: int) -> str:
    """A query of the entries given as text in parameter ``parameter``, each as jsonb stores it, in their order."""
    return f"SELECT e::jsonb::text AS text FROM unnest(${parameter}::text[]) WITH ORDINALITY AS t(e, n) ORDER BY n"


def prepare_from(table: str) -> str:
    """What an append reads once it holds the lock, in one statement: the stored offsets by partition (a JSON
    object), the chain's last row (seq and hash, null when empty) and each entry ($2) as jsonb stores it (jsonb
    writes some numbers in its own notation, 1e+16 as 10000000000000000, so the hash is taken over what the row
    will give back to ``verify``)."""
    return (f"SELECT (SELECT json_object_agg(kafka_partition, next_offset) FROM {POSITIONS} WHERE topic = $1)::text"
            " AS stored, last.seq, last.hash,"
            f" ARRAY({stored_texts(2)}) AS texts"
            f" FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1)"
            " AS last ON true")


MOVE_ON = (f"WITH moved AS (INSERT INTO {POSITIONS} (topic, kafka_partition, next_offset)"
           " SELECT $1, p, o FROM unnest($2::int[], $3::bigint[]) AS t(p, o)"
           " ON CONFLICT (topic, kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()"
           " RETURNING 1) SELECT pg_notify($4, '')")

UNSTORABLE = (asyncpg.DataError, asyncpg.ProgramLimitExceededError)


def unstorable(value: bytes | None, timestamp_ms: int, problem: Exception) -> dict[str, Any]:
    """The entry that stands for a record PostgreSQL would not store: why, and what it was (size and digest)."""
    raw = value or b""
    return AuditEntry(action=AuditAction.UNREADABLE, at=datetime.fromtimestamp(timestamp_ms / 1000, UTC),
                      detail=f"cannot be stored: {type(problem).__name__}", size=len(raw),
                      sha256=hashlib.sha256(raw).hexdigest()).as_dict()


async def _positions(connection: asyncpg.Connection, topic: str) -> dict[int, int]:
    """The stored offset of the next record to append, by partition."""
    rows = await connection.fetch(f"SELECT kafka_partition, next_offset FROM {POSITIONS} WHERE topic = $1", topic)
    return {r["kafka_partition"]: r["next_offset"] for r in rows}


async def _as_stored(connection: asyncpg.Connection, entries: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Each entry as jsonb text and as read back from it (as ``prepare_from`` reads them)."""
    rows = await connection.fetch(stored_texts(1), [canonical(entry) for entry in entries])
    return [(r["text"], json.loads(r["text"])) for r in rows]
