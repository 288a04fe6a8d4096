"""What operators watch live, kept up to date in the gateway process: the flows the audit log records (events
per edge of the exchange map, refusals, ingress and delivery rates per department, an hour of history) and the
consumer lag of every department and of the router, sampled from the broker with an hour of history. The
console's live views and ``GET /v1/lag`` read the snapshots; nothing here renders or decides."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import Gauge, Histogram

from base.kafka import KafkaAccess, stop_client
from contracts.departments import SERVICE_DEPARTMENTS
from contracts.topics import Topics
from gateway.audit.chain import TABLE
from gateway.audit.entry import AuditAction

log = logging.getLogger("concord.monitor")

HISTORY_SECONDS = 75 * 60  # an hour of history, and a quarter more
MINUTE = 60
FOLLOW_ROWS = 20_000  # entries taken up per query
LAG = Gauge("concord_consumer_lag", "records a consumer group has yet to take up, per topic (department: whose "
            "consumer; gateway for the router)", ["department", "group", "topic"])

Edge = tuple[str, str, str]  # provider (the sender), consumer, contract


@dataclass
class Buckets:
    """Counts per real second, for the last ``HISTORY_SECONDS``."""

    seconds: dict[int, Counter[tuple[str, ...]]] = field(default_factory=dict)

    def add(self, second: int, key: tuple[str, ...], n: int = 1) -> None:
        self.seconds.setdefault(second, Counter())[key] += n

    def prune(self, now: int) -> None:
        for second in [s for s in self.seconds if s <= now - HISTORY_SECONDS]:
            del self.seconds[second]

    def window(self, now: int, seconds: int) -> Counter[tuple[str, ...]]:
        total: Counter[tuple[str, ...]] = Counter()
        for second, counts in self.seconds.items():
            if now - seconds < second <= now:
                total.update(counts)
        return total

    def per_minute(self, now: int, minutes: int) -> dict[tuple[str, ...], list[int]]:
        """Each key's count in each of the last ``minutes`` minutes, oldest first."""
        series: dict[tuple[str, ...], list[int]] = {}
        for second, counts in self.seconds.items():
            age = (now - second) // MINUTE
            if 0 <= age < minutes:
                for key, n in counts.items():
                    series.setdefault(key, [0] * minutes)[minutes - 1 - age] += n
        return series


@dataclass(frozen=True)
class FlowSnapshot:
    """The exchange's flows as the audit log has them, at one moment (real time)."""

    at: float
    edges_total: dict[Edge, int]
    edges_minute: dict[Edge, int]
    refusals_total: dict[tuple[str, str], int]  # (sender, contract named) -> refused
    refusals_minute: dict[tuple[str, str], int]
    ingress_minute: dict[str, int]  # per sending department: events routed or refused in the last minute
    delivered_minute: dict[str, int]  # per consumer
    ingress_history: dict[str, list[int]]  # per department, per minute of the last hour, oldest first
    delivered_history: dict[str, list[int]]
    last_seq: int


class FlowWatch:
    """Follows the audit log: totals since the log began, and per-second counts of the last hour."""

    def __init__(self, pool: asyncpg.Pool, poll_seconds: float = 0.5) -> None:
        self.pool = pool
        self.poll_seconds = poll_seconds
        self.edges: Counter[Edge] = Counter()
        self.refusals: Counter[tuple[str, str]] = Counter()
        self.recent = Buckets()
        self.last_seq = 0

    async def start(self) -> None:
        """Totals of what is older than the history window, in one pass; the rest comes by following."""
        async with self.pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            self.last_seq = await connection.fetchval(
                f"SELECT coalesce(max(seq), 0) FROM {TABLE} WHERE recorded_at < now() - make_interval(secs => $1)",
                HISTORY_SECONDS)
            for row in await connection.fetch(
                    f"SELECT sender, contract, d AS consumer, count(*) AS n FROM {TABLE},"
                    " jsonb_object_keys(entry -> 'delivered') d WHERE action = $1 AND seq <= $2"
                    " GROUP BY sender, contract, d", AuditAction.ROUTED.value, self.last_seq):
                self.edges[(row["sender"], row["consumer"], row["contract"])] += row["n"]
            for row in await connection.fetch(
                    f"SELECT sender, coalesce(contract, '') AS contract, count(*) AS n FROM {TABLE}"
                    " WHERE action = $1 AND seq <= $2 GROUP BY 1, 2", AuditAction.REJECTED.value, self.last_seq):
                self.refusals[(row["sender"], row["contract"])] += row["n"]

    async def follow(self) -> int:
        """Take up the entries appended since the last call; the number taken."""
        taken = 0
        while True:
            async with self.pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
                top = await connection.fetchval(f"SELECT coalesce(max(seq), 0) FROM {TABLE}")
                rows = await connection.fetch(
                    f"SELECT seq, extract(epoch FROM recorded_at)::bigint AS second, action, sender,"
                    f" coalesce(contract, '') AS contract,"
                    f" CASE WHEN action = $3 THEN ARRAY(SELECT jsonb_object_keys(entry -> 'delivered')) END AS"
                    f" consumers FROM {TABLE} WHERE seq > $1 AND seq <= $2 AND action IN ($3, $4)"
                    f" ORDER BY seq LIMIT {FOLLOW_ROWS}",
                    self.last_seq, top, AuditAction.ROUTED.value, AuditAction.REJECTED.value)
            for row in rows:
                self._take(row)
            taken += len(rows)
            if len(rows) < FOLLOW_ROWS:
                self.last_seq = top  # entries of other kinds up to the top are passed over
                self.recent.prune(int(time.time()))
                return taken
            self.last_seq = rows[-1]["seq"]

    def _take(self, row: asyncpg.Record) -> None:
        second, sender, contract = row["second"], row["sender"], row["contract"]
        self.recent.add(second, ("in", sender))
        if row["action"] == AuditAction.ROUTED.value:
            for consumer in row["consumers"] or ():
                self.edges[(sender, consumer, contract)] += 1
                self.recent.add(second, ("edge", sender, consumer, contract))
                self.recent.add(second, ("out", consumer))
        else:
            self.refusals[(sender, contract)] += 1
            self.recent.add(second, ("refused", sender, contract))

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        while not stop.is_set():
            try:
                await self.follow()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("following the audit log: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_seconds)

    def snapshot(self) -> FlowSnapshot:
        now = int(time.time())
        minute = self.recent.window(now, MINUTE)
        history = self.recent.per_minute(now, HISTORY_SECONDS // MINUTE)

        def part(kind: str) -> dict[tuple[str, ...], int]:
            return {key[1:]: n for key, n in minute.items() if key[0] == kind}

        def series(kind: str) -> dict[str, list[int]]:
            return {key[1]: values for key, values in history.items() if key[0] == kind}

        return FlowSnapshot(
            at=time.time(), edges_total=dict(self.edges),
            edges_minute={(k[0], k[1], k[2]): n for k, n in part("edge").items()},
            refusals_total=dict(self.refusals),
            refusals_minute={(k[0], k[1]): n for k, n in part("refused").items()},
            ingress_minute={k[0]: n for k, n in part("in").items()},
            delivered_minute={k[0]: n for k, n in part("out").items()},
            ingress_history=series("in"), delivered_history=series("out"), last_seq=self.last_seq)


@dataclass(frozen=True)
class Lag:
    """A consumer group's lag on one topic: records in the topic past the group's committed offsets."""

    department: str  # whose consumer it is (the gateway's router for the ingress topics)
    group: str
    topic: str
    lag: int
    end: int


@dataclass(frozen=True)
class LagSample:
    at: float
    lags: tuple[Lag, ...]


def watched(topics: Topics, router_group: str) -> list[tuple[str, str, str]]:
    """(department, group, topic) of every consumer operators watch: each department's service on its deliver
    topic (its group is its code), and the router on every ingress topic."""
    return [*((d, d, topics.deliver(d)) for d in SERVICE_DEPARTMENTS),
            *(("gateway", router_group, topics.ingress(d)) for d in SERVICE_DEPARTMENTS)]


class LagWatch:
    """Samples every watched group's lag from the broker (as the gateway, which may describe every group)."""

    def __init__(self, access: KafkaAccess, topics: Topics, router_group: str, every_seconds: float = 5.0) -> None:
        self.access = access
        self.consumers = watched(topics, router_group)
        self.every_seconds = every_seconds
        self.history: deque[LagSample] = deque(maxlen=int(HISTORY_SECONDS / every_seconds) + 1)

    async def sample(self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> LagSample:
        topics = sorted({topic for _, _, topic in self.consumers})
        await consumer._client.set_topics(topics)
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = await consumer.end_offsets(partitions)
        committed: dict[str, dict[TopicPartition, int]] = {}
        for group in sorted({group for _, group, _ in self.consumers}):
            offsets = await admin.list_consumer_group_offsets(group)
            committed[group] = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
        lags = []
        for department, group, topic in self.consumers:
            mine = [tp for tp in partitions if tp.topic == topic]
            end = sum(ends.get(tp, 0) for tp in mine)
            behind = sum(max(ends.get(tp, 0) - committed[group].get(tp, 0), 0) for tp in mine)
            lags.append(Lag(department, group, topic, behind, end))
            LAG.labels(department, group, topic).set(behind)
        return LagSample(time.time(), tuple(lags))

    async def run(self, stop: asyncio.Event) -> None:
        admin = AIOKafkaAdminClient(**self.access.aiokafka())
        consumer = AIOKafkaConsumer(**self.access.aiokafka(), enable_auto_commit=False)
        await admin.start()
        await consumer.start()
        try:
            while not stop.is_set():
                try:
                    self.history.append(await self.sample(admin, consumer))
                except KafkaError as exc:
                    log.warning("sampling consumer lag: %r", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.every_seconds)
        finally:
            await stop_client(consumer.stop, "the lag watch's consumer")
            await admin.close()

    def latest(self) -> LagSample | None:
        return self.history[-1] if self.history else None

    def series(self, department: str | None = None) -> dict[tuple[str, str], list[tuple[float, int]]]:
        """(group, topic) -> (time, lag) over the history, for one department's consumers or all."""
        found: dict[tuple[str, str], list[tuple[float, int]]] = {}
        for sample in self.history:
            for lag in sample.lags:
                if department in (None, lag.department):
                    found.setdefault((lag.group, lag.topic), []).append((sample.at, lag.lag))
        return found


def of_department(lags: Iterable[Lag], department: str | None) -> list[Lag]:
    return [lag for lag in lags if department in (None, lag.department)]


class BatchLatency:
    """The router's batch latency over the last minute, from this process's ``concord_router_batch_seconds``
    histogram: quantiles estimated from its buckets as Prometheus's ``histogram_quantile`` does."""

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self.snapshots: deque[tuple[float, list[tuple[float, float]]]] = deque()

    def _buckets(self) -> list[tuple[float, float]]:
        """(upper bound, cumulative count) of every bucket, as the histogram holds them now."""
        return [(float(s.labels["le"]), s.value) for metric in self.histogram.collect() for s in metric.samples
                if s.name.endswith("_bucket")]

    def __call__(self) -> tuple[float, float, int] | None:
        """(p50 ms, p99 ms, batches) over the last minute, or None when no batch was routed in it."""
        now = time.time()
        if not self.snapshots or now - self.snapshots[-1][0] >= 1.0:
            self.snapshots.append((now, self._buckets()))
        while len(self.snapshots) > 1 and now - self.snapshots[0][0] > MINUTE:
            self.snapshots.popleft()
        (_, old), (_, new) = self.snapshots[0], (now, self._buckets())
        counts = [(bound, n - o) for (bound, n), (_, o) in zip(new, old, strict=True)]
        total = counts[-1][1] if counts else 0
        if total <= 0:
            return None
        return quantile(counts, 0.5) * 1000, quantile(counts, 0.99) * 1000, int(total)


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """The q-quantile of cumulative bucket counts, interpolated within its bucket (the last finite bound when it
    falls in the +Inf bucket)."""
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            span = count - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / span if span else 1.0)
        lower_bound, lower_count = bound, count
    return lower_bound
