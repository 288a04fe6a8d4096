"""`make chaos`: the agency service's cases carried through an exchange that is being broken on purpose, then
reconciled. Two router instances, the gateway's API, the audit keeper, the bureau and the departments run under the
supervisor; random components are killed with SIGKILL every few seconds, one router is paused (SIGSTOP) past its
session timeout and resumed, the Kafka broker is restarted once and PostgreSQL once. Afterwards, once everything
has drained, every ingress record of the run must have exactly one verdict (routed, refused or recognised as a
resend) in the audit log, no event may reach a shared or deliver topic twice, no audit record may be appended
twice, no effect may be applied twice (one task per request, no more opinions than rounds, one final opinion per
task, one resolution per conflict), nothing may be missing, and the audit chain must verify."""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.table import Table

from base.runtime import terminal
from base.settings import ADMIN, Settings
from contracts.bureau import Decision, OpinionIssued
from contracts.coordination import ConflictResolved
from contracts.departments import BUREAU, COORDINATION, EXCHANGE, GATEWAY
from contracts.envelope import SENDER_HEADER
from deploy.demo import SPEED, CaseDriver, clock_start, drive
from deploy.processes import AppProcesses
from deploy.stack import PostgresCluster, StackError, kafka_nodes, port_open, ready
from gateway import audit as audit_log
from gateway.audit.anchor import verifying_key
from gateway.audit.chain import POSITIONS, TABLE
from gateway.audit.entry import AuditAction
from gateway.router import SESSION_TIMEOUT_MS
from services.departments import REVIEWERS
from services.departments.tasks import TaskKind, TaskStatus

console = terminal()
ROUTERS = ("router-1", "router-2")
KEEPER = "audit-keeper"
TARGETS = (*ROUTERS, KEEPER, "gateway", BUREAU, "departments")  # what the monkey kills
PAUSE_SECONDS = SESSION_TIMEOUT_MS / 1000 + 5  # past the router's session timeout: its partitions go to the other
FAMILIES = ("ingress.", "deliver.", "shared.")
VERDICTS = (AuditAction.ROUTED, AuditAction.REJECTED, AuditAction.RESENT)  # what decides an ingress record
SETTLE_SECONDS = 300.0
Offsets = dict[TopicPartition, int]


@dataclass
class Mischief:
    """What the monkey did."""

    kills: Counter[str] = field(default_factory=Counter)
    pauses: int = 0
    broker_restarts: int = 0
    postgres_restarts: int = 0

    def complete(self) -> bool:
        """Every planned kind of mischief happened."""
        return bool(self.kills) and self.pauses == self.broker_restarts == self.postgres_restarts == 1

    def said(self) -> str:
        return (f"{sum(self.kills.values())} kills ({', '.join(f'{n} {c}' for c, n in sorted(self.kills.items()))}), "
                f"{self.pauses} router paused, broker restarted {self.broker_restarts}, "
                f"PostgreSQL restarted {self.postgres_restarts}")


class Monkey(threading.Thread):
    """Breaks the exchange for ``seconds``: a SIGKILL to a random component every ``every`` seconds (drawn), and,
    once each, a router paused past its session timeout, the broker restarted and PostgreSQL restarted."""

    def __init__(self, settings: Settings, apps: AppProcesses, seconds: float, every: tuple[float, float],
                 seed: int) -> None:
        super().__init__(name="chaos-monkey", daemon=True)
        self.settings = settings
        self.apps = apps
        self.seconds = seconds
        self.every = every
        self.rng = random.Random(seed)
        self.done = Mischief()
        self.halt = threading.Event()
        self.error: str | None = None  # why the monkey stopped before its plan was done
        self.paused: str | None = None  # the router paused now
        self.resuming: threading.Timer | None = None
        self.events: list[tuple[float, Callable[[], None]]] = [
            (0.2 * seconds, self.pause_router), (0.45 * seconds, self.restart_broker),
            (0.7 * seconds, self.restart_postgres)]

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # run_chaos fails the run
            self.error = f"{type(exc).__name__}: {exc}"
            console.print(f"[red]chaos: the monkey stopped: {self.error}[/red]")

    def _run(self) -> None:
        begun = time.monotonic()
        next_kill = begun + self.rng.uniform(*self.every)
        while not self.halt.wait(0.2) and time.monotonic() - begun < self.seconds:
            if self.events and time.monotonic() - begun >= self.events[0][0]:
                self.events.pop(0)[1]()
            elif time.monotonic() >= next_kill:
                self.kill(self.rng.choice([t for t in TARGETS if t != self.paused]))
                next_kill = time.monotonic() + self.rng.uniform(*self.every)
        for _, event in self.events:  # the cases may finish first: what was planned still happens
            event()
        self.events.clear()
        if self.resuming is not None:
            self.resuming.join()

    def kill(self, name: str) -> None:
        process = self.apps.processes[name]
        if not process.alive():
            return  # still down from the last time: the supervisor starts it again
        self.apps.send_signal(name, signal.SIGKILL)
        self.done.kills[name] += 1
        console.print(f"chaos: killed {name} (SIGKILL)")

    def pause_router(self) -> None:
        """Pause a router; a timer resumes it ``PAUSE_SECONDS`` later, whatever the monkey does meanwhile."""
        deadline = time.monotonic() + 30.0
        while not (alive := [r for r in ROUTERS if self.apps.processes[r].alive()]) and time.monotonic() < deadline:
            time.sleep(0.5)  # both are down: the supervisor starts them again
        if not alive:
            raise RuntimeError("no router came back within 30 s to be paused")
        name = self.paused = self.rng.choice(alive)
        console.print(f"chaos: paused {name} (SIGSTOP) for {PAUSE_SECONDS:.0f} s, past its session timeout")
        self.apps.send_signal(name, signal.SIGSTOP)
        self.resuming = threading.Timer(PAUSE_SECONDS, self.resume)
        self.resuming.start()

    def resume(self) -> None:
        assert self.paused is not None
        self.apps.send_signal(self.paused, signal.SIGCONT)
        console.print(f"chaos: resumed {self.paused} (SIGCONT)")
        self.done.pauses += 1
        self.paused = None

    def restart_broker(self) -> None:
        broker = self.rng.choice(kafka_nodes(self.settings))  # the one broker, or one of a cluster's
        console.print(f"chaos: killing the Kafka broker on port {broker.port} (SIGKILL) and starting it again")
        broker.kill()
        broker.start()
        broker.wait_ready()
        self.done.broker_restarts += 1
        console.print("chaos: the Kafka broker is back")

    def restart_postgres(self) -> None:
        console.print("chaos: restarting PostgreSQL")
        postgres = PostgresCluster(self.settings)
        postgres.stop()
        postgres.start()
        self.done.postgres_restarts += 1
        console.print("chaos: PostgreSQL is back")

    def finish(self) -> Mischief:
        self.halt.set()
        self.join()
        return self.done


def start_exchange(apps: AppProcesses, settings: Settings) -> None:
    """The exchange with its gateway's parts in processes of their own: the API, two routers, the audit keeper."""
    ports = {name: settings.gateway_port + 50 + i for i, name in enumerate((*ROUTERS, KEEPER))}
    for port in (settings.gateway_port, settings.bureau_port, settings.departments_port, *ports.values()):
        if port_open(port):
            raise StackError(f"port {port} is taken by a process started elsewhere: stop it first")
    apps.start("gateway", "gateway", "run", "--instance", "api", "--no-route", "--no-keeper",
               health=apps.health_url(settings.gateway_port), supervised=True)
    for i, name in enumerate(ROUTERS, start=1):
        apps.start(name, "gateway", "run", "--no-serve", "--instance", f"chaos-{i}", "--health-port", str(ports[name]),
                   health=apps.health_url(ports[name]), supervised=True)
    apps.start(KEEPER, "gateway", "run", "--no-serve", "--no-route", "--keeper", "--health-port", str(ports[KEEPER]),
               health=apps.health_url(ports[KEEPER]), supervised=True)
    apps.start(BUREAU, "service", "run", "bureau", health=apps.health_url(settings.bureau_port), supervised=True)
    apps.start("departments", "service", "run", "departments", health=apps.health_url(settings.departments_port),
               supervised=True)
    every_one_ready(apps)


def every_one_ready(apps: AppProcesses) -> None:
    """Wait until every component answers its readiness probe (those killed last have been started again)."""
    for process in apps.processes.values():
        assert process.health is not None
        apps.wait_http(process.health.replace("/healthz", "/readyz"), timeout=180.0)


# --- what the broker and the database hold --------------------------------------------------------------------

async def _partitions(admin: AIOKafkaAdminClient) -> dict[str, list[TopicPartition]]:
    """Every topic's partitions."""
    return {t["topic"]: [TopicPartition(t["topic"], p["partition"]) for p in t["partitions"]]
            for t in await admin.describe_topics()}


async def snapshot(settings: Settings) -> tuple[Offsets, int]:
    """Where the run starts: the end of every exchange topic, and the audit chain's last seq."""
    access = settings.kafka(ADMIN).aiokafka()
    admin = AIOKafkaAdminClient(**access)
    await admin.start()
    try:
        partitions = [tp for t, tps in (await _partitions(admin)).items() if t.startswith(FAMILIES) for tp in tps]
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(**access, enable_auto_commit=False)
    await consumer.start()
    try:
        # the topics' metadata first: asked for partitions it knows nothing of, aiokafka looks them up in retries
        # that took 5 s for the stack's 160 partitions
        await consumer._client.set_topics({tp.topic for tp in partitions})
        ends: Offsets = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    connection = await asyncpg.connect(settings.admin_dsn)
    try:
        seq = await connection.fetchval(f"SELECT coalesce(max(seq), 0) FROM {TABLE}")
    finally:
        await connection.close()
    return ends, int(seq)


async def _records_after(access: dict[str, object], starts: Offsets, stop_at_first: bool = False
                         ) -> dict[TopicPartition, list[tuple[int, dict[str, bytes]]]]:
    """The committed records of each partition from its start offset to its stable end: (offset, headers)."""
    consumer = AIOKafkaConsumer(**access, enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    found: dict[TopicPartition, list[tuple[int, dict[str, bytes]]]] = {tp: [] for tp in starts}
    try:
        consumer.assign(list(starts))
        ends = await consumer.end_offsets(list(starts))
        for tp, start in starts.items():
            consumer.seek(tp, start)
        waiting = {tp for tp in starts if starts[tp] < ends[tp]}
        while waiting:
            batch = await consumer.getmany(*waiting, timeout_ms=500)
            for tp, records in batch.items():
                found[tp] += [(r.offset, dict(r.headers)) for r in records]
                if records and stop_at_first:
                    return found
            waiting = {tp for tp in waiting if await consumer.position(tp) < ends[tp]}
        return found
    finally:
        await consumer.stop()


async def _group_offsets(admin: AIOKafkaAdminClient, group: str, partitions: list[TopicPartition]) -> Offsets:
    committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
    return {tp: (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0) for tp in partitions}


async def drained(settings: Settings) -> list[str]:
    """What has not drained yet: a consumer with a committed record after its committed offset (the routers on the
    ingress topics, each department on its deliver topic, the keeper on the audit topic), or an outbox with unsent
    events. Empty when the exchange is quiet."""
    access = settings.kafka(ADMIN).aiokafka()
    topics = settings.topics
    admin = AIOKafkaAdminClient(**access)
    await admin.start()
    consumers: dict[TopicPartition, str] = {}  # a partition, and who consumes it
    starts: Offsets = {}
    try:
        described = await _partitions(admin)
        groups = {settings.router_group: [tp for t, tps in described.items() if t.startswith("ingress.") for tp in tps]}
        groups |= {code: described.get(topics.deliver(code), []) for code in (BUREAU, *REVIEWERS, COORDINATION)}
        for group, partitions in groups.items():
            starts |= await _group_offsets(admin, group, partitions)
            consumers |= {tp: f"consumer group {group}" for tp in partitions}
    finally:
        await admin.close()
    connection = await asyncpg.connect(settings.admin_dsn)
    try:
        stored = {TopicPartition(r["topic"], r["kafka_partition"]): r["next_offset"] for r in await connection.fetch(
            f"SELECT topic, kafka_partition, next_offset FROM {POSITIONS} WHERE topic = $1", topics.audit)}
        for tp in described.get(topics.audit, []):
            starts[tp] = stored.get(tp, 0)
            consumers[tp] = "the audit keeper"
        unsent = [f"the {schema} outbox" for schema in (GATEWAY, BUREAU, *REVIEWERS, COORDINATION)
                  if await connection.fetchval(f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL")]
    finally:
        await connection.close()
    found = await _records_after(access, starts, stop_at_first=True)
    return sorted({consumers[tp] for tp, records in found.items() if records}) + unsent


@dataclass
class Check:
    what: str
    counted: int
    lost: int
    duplicated: int


async def reconcile(settings: Settings, starts: Offsets, start_seq: int, case_ids: list[str]) -> tuple[
        list[Check], list[audit_log.Finding]]:
    """The run's records and effects, counted against each other."""
    access = settings.kafka(ADMIN).aiokafka()
    records = await _records_after(access, starts)
    connection = await asyncpg.connect(settings.admin_dsn)
    try:
        checks = [await _verdicts(connection, records, start_seq)]
        for family in ("deliver.", "shared."):
            ids = Counter((tp.topic, headers.get("ce_id")) for tp, rs in records.items() if tp.topic.startswith(family)
                          for _, headers in rs if headers.get(SENDER_HEADER) != EXCHANGE.encode())
            checks.append(Check(f"events on {family}* topics (each once)", sum(ids.values()), 0,
                                sum(n - 1 for n in ids.values() if n > 1)))
        # The exchange's own notices (agreement steps, rejections) go from the gateway's outbox straight to deliver
        # topics, at least once: a copy resent after a crash is dropped by the department's inbox. Counted apart.
        notices = Counter((tp.topic, headers.get("ce_id")) for tp, rs in records.items()
                          if tp.topic.startswith("deliver.") for _, headers in rs
                          if headers.get(SENDER_HEADER) == EXCHANGE.encode())
        resent = sum(n - 1 for n in notices.values() if n > 1)
        checks.append(Check(f"exchange notices on deliver.* (at least once: {resent} resent, dropped by the inbox)",
                            sum(notices.values()), 0, 0))
        appended = Counter(tuple(r) for r in await connection.fetch(
            f"SELECT topic, kafka_partition, kafka_offset FROM {TABLE} WHERE seq > $1", start_seq))
        checks.append(Check("audit records appended (each once)", sum(appended.values()), 0,
                            sum(n - 1 for n in appended.values() if n > 1)))
        checks += await _effects(connection, case_ids)
        anchors = audit_log.AnchorLog(settings.kafka(GATEWAY), settings.topics.audit_anchor,
                                      verifying_key(settings.secrets.anchor_public_file))
        verification = await audit_log.check(connection, anchors)  # as `concord audit verify`: rows and anchors
    finally:
        await connection.close()
    return checks, verification.findings


async def _verdicts(connection: asyncpg.Connection, records: dict[TopicPartition, list[tuple[int, dict[str, bytes]]]],
                    start_seq: int) -> Check:
    """Every ingress record of the run has exactly one verdict in the audit log."""
    positions = {(tp.topic, tp.partition, offset) for tp, rs in records.items() if tp.topic.startswith("ingress.")
                 for offset, _ in rs}
    rows = await connection.fetch(
        f"SELECT entry->'ingress'->>'topic' AS topic, (entry->'ingress'->>'partition')::int AS partition,"
        f" (entry->'ingress'->>'offset')::bigint AS kafka_offset, count(*) AS n FROM {TABLE}"
        " WHERE seq > $1 AND action = ANY($2::text[]) AND entry ? 'ingress' GROUP BY 1, 2, 3",
        start_seq, [v.value for v in VERDICTS])
    verdicts = {(r["topic"], r["partition"], r["kafka_offset"]): r["n"] for r in rows}
    return Check("ingress records with one verdict (routed, refused or resent)", len(positions),
                 len(positions - verdicts.keys()), sum(n - 1 for p, n in verdicts.items() if p in positions and n > 1))


async def _effects(connection: asyncpg.Connection, case_ids: list[str]) -> list[Check]:
    """Counted in the database: one task per request at its department, no more opinions than the task's rounds,
    one final opinion per decided task, one resolution per conflict."""
    requests = await connection.fetch(
        "SELECT request_id, department FROM bureau.requests WHERE case_id = ANY($1::text[])", case_ids)
    tasks: dict[str, tuple[int, str]] = {}  # an opinion's, or a verification's (an item approved on commitment)
    opinion_tasks: set[str] = set()
    duplicated_tasks = 0
    opinions: Counter[str] = Counter()
    finals: Counter[str] = Counter()
    for department in sorted({r["department"] for r in requests}):
        rows = await connection.fetch(f"SELECT task_id, kind, round, status FROM {department}.tasks WHERE"
                                      " case_id = ANY($1::text[]) AND kind = ANY($2::text[])", case_ids,
                                      [TaskKind.OPINION.value, TaskKind.VERIFICATION.value])
        for row in rows:
            duplicated_tasks += row["task_id"] in tasks
            tasks[row["task_id"]] = (row["round"], row["status"])
            if row["kind"] == TaskKind.OPINION.value:
                opinion_tasks.add(row["task_id"])
        for row in await connection.fetch(
                f"SELECT convert_from(value, 'UTF8')::jsonb->>'request_id' AS request_id,"
                f" convert_from(value, 'UTF8')::jsonb->>'decision' AS decision FROM {department}.outbox"
                " WHERE contract = $2 AND convert_from(value, 'UTF8')::jsonb->>'case_id' = ANY($1::text[])",
                case_ids, OpinionIssued.CONTRACT.id):
            opinions[row["request_id"]] += 1
            finals[row["request_id"]] += row["decision"] != Decision.SUPPLEMENT_REQUESTED.value
    asked = {r["request_id"] for r in requests}
    extra_opinions = sum(max(0, opinions[t] - tasks[t][0]) for t in opinion_tasks) \
        + sum(max(0, n - 1) for n in finals.values())
    missing_finals = sum(1 for t in opinion_tasks if tasks[t][1] == TaskStatus.DECIDED.value and finals[t] == 0)
    conflicts = await connection.fetch("SELECT conflict_id FROM bureau.conflicts WHERE case_id = ANY($1::text[])",
                                       case_ids)
    resolutions = Counter(r["conflict_id"] for r in await connection.fetch(
        f"SELECT convert_from(value, 'UTF8')::jsonb->>'conflict_id' AS conflict_id FROM {COORDINATION}.outbox"
        " WHERE contract = $1", ConflictResolved.CONTRACT.id))
    return [
        Check("tasks (one per request)", len(tasks), len(asked - tasks.keys()), duplicated_tasks),
        Check("opinions (one per round, one final per task)", sum(opinions.values()), missing_finals, extra_opinions),
        Check("conflict resolutions (one per conflict)", sum(resolutions[c["conflict_id"]] for c in conflicts), 0,
              sum(max(0, resolutions[c["conflict_id"]] - 1) for c in conflicts)),
    ]


def settle(settings: Settings, timeout: float = SETTLE_SECONDS) -> None:
    """Wait until the exchange has drained (every consumer and outbox caught up)."""
    deadline = time.monotonic() + timeout
    with console.status("waiting for the exchange to drain") as status:
        while True:
            behind = asyncio.run(drained(settings))
            if not behind:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"not drained after {timeout:.0f} s: {', '.join(behind)}")
            status.update(f"waiting for {', '.join(behind)} to drain")
            time.sleep(1.0)


def run_chaos(settings: Settings, cases: int, seconds: float, every: tuple[float, float], seed: int,
              timeout: float) -> int:
    """Returns the exit status: 0 when every case finished and nothing was lost or duplicated."""
    from base.clock import record

    with console.status("starting Kafka and PostgreSQL"):
        ready(settings)
    clock = record(settings, SPEED, asyncio.run(clock_start(settings))).clock()
    starts, start_seq = asyncio.run(snapshot(settings))
    base = f"http://{settings.bureau_host}:{settings.bureau_port}"
    front_desk = {"authorization": f"Bearer {settings.credentials(BUREAU).http_token}"}
    with AppProcesses(settings, {}, say=console.print) as apps, \
            httpx.Client(base_url=base, headers=front_desk, timeout=30.0) as bureau:
        start_exchange(apps, settings)
        console.print(f"chaos: {cases} cases on a clock {SPEED:,.0f}× real time; components killed every "
                      f"{every[0]:.0f}-{every[1]:.0f} s for {seconds:.0f} s (logs in {apps.log_dir})")
        driver = CaseDriver(clock, cases, seed, bureau)
        monkey = Monkey(settings, apps, seconds, every, seed)
        monkey.start()
        drive(driver, timeout, lambda share: None)
        mischief = monkey.finish()
        every_one_ready(apps)
        settle(settings)
        restarts = sum(apps.restarts().values())
    checks, findings = asyncio.run(reconcile(settings, starts, start_seq, list(driver.enterprises.plans)))
    table = Table("check", "counted", "lost", "duplicated", title="chaos: what the exchange kept")
    for check in checks:
        table.add_row(check.what, f"{check.counted:,}", str(check.lost), str(check.duplicated))
    console.print(table)
    console.print(f"chaos: {mischief.said()}; {restarts} restarts by the supervisor; "
                  f"{driver.missed_rounds} rounds of the front desk cut short, {driver.enterprises.stale} actions "
                  "on a case that had moved on (409, read again)")
    for finding in findings[:20]:
        console.print(f"[red]audit {finding.kind}[/red] at seq {finding.seq}: {finding.detail}")
    lost = sum(c.lost for c in checks)
    duplicated = sum(c.duplicated for c in checks)
    finished = len(driver.finished)
    audit = "audit verified" if not findings else f"audit FAILED ({len(findings)} findings)"
    console.print(f"chaos: cases {finished}/{cases} finished, kills {sum(mischief.kills.values())}, restarts "
                  f"{restarts}, lost {lost}, duplicated {duplicated}, {audit}", highlight=False)
    if monkey.error is not None or not mischief.complete():
        console.print(f"[red]chaos: the mischief planned did not all happen[/red] ({monkey.error or mischief.said()})")
        return 1
    return 0 if finished == cases and not lost and not duplicated and not findings else 1
