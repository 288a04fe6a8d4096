"""What each view of the console shows, gathered from the gateway's stores, the live watches and (through the
read-only ``reporter`` role) the bureau's and departments' records. Every function takes the department the
viewer may see (None: the operator, everything) and returns plain data for the templates; nothing here renders."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from base.calendar import WorkingDayCalendar
from base.clock import Clock
from base.pages import next_offset
from contracts.bureau import Decision
from contracts.departments import DEPARTMENTS, SERVICE_DEPARTMENTS
from gateway.agreements import Agreement, AgreementStore, Standing, Status
from gateway.audit import AnchorLog, check, head
from gateway.audit.anchor import described
from gateway.audit.chain import TABLE
from gateway.audit.entry import AuditAction
from gateway.enforcement import Enforcement
from gateway.inspection import RecordView
from gateway.monitor import FlowWatch, LagWatch
from gateway.registry import Registry
from services.bureau.catalogue import ServiceCatalogue
from services.bureau.efficacy import RequestRow, report_from
from services.bureau.model import RequestStatus

log = logging.getLogger(__name__)

RADIUS, CENTRE = 230, 300  # the exchange map's circle of departments (an SVG of 600 × 600)


@dataclass(frozen=True)
class Thresholds:
    lag_records: int = 1000  # a consumer this far behind is an alert
    batch_p99_ms: float = 1000.0  # so is the router's batch latency above this


@dataclass
class Sources:
    """Everything the console reads, made by the gateway process that serves it."""

    pool: asyncpg.Pool  # the gateway's role
    reporter: asyncpg.Pool  # read-only: the bureau's cases and requests, the departments' transit and answers
    enforcement: Enforcement
    agreements: AgreementStore
    flows: FlowWatch
    lags: LagWatch
    clock: Clock
    catalogue: ServiceCatalogue
    read_record: Callable[[str, int, int, Registry], Awaitable[RecordView | None]]  # on the broker, as the gateway
    batch_latency: Callable[[], tuple[float, float, int] | None]  # the router's last minute: p50 ms, p99 ms, batches
    anchors: AnchorLog  # the audit chain's signed heads on the broker (followed: the latest of each chain)
    thresholds: Thresholds = field(default_factory=Thresholds)
    calendar: WorkingDayCalendar = field(default_factory=WorkingDayCalendar)
    last_verification: dict[str, Any] | None = None  # the last verification of the whole chain that ended
    verifying: dict[str, Any] | None = None  # the one under way: when it began, and by whom
    _verification: asyncio.Task[None] | None = None
    _report: tuple[float, dict[str, Any]] | None = None
    _report_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _rebuild: asyncio.Task[None] | None = None


def departments_of(viewer: str | None) -> list[dict[str, str]]:
    return [{"code": d.code, "zh": d.name_zh, "en": d.name_en} for d in DEPARTMENTS.values()
            if viewer in (None, d.code)]


# --- the exchange map ---------------------------------------------------------------------------------------
async def exchange_map(src: Sources, viewer: str | None) -> dict[str, Any]:
    """Departments as nodes on a circle, contracts as edges from provider to consumer (declared consumers and
    those with an agreement in force), with events per minute, events in all, and refusals."""
    await src.enforcement.refresh()
    now = src.clock.now()
    declared: set[tuple[str, str, str]] = set()
    latest = {c.id: c for c in src.enforcement.registry}
    for contract in latest.values():
        extra = src.enforcement.sharing.consumers(contract, now)
        for provider in contract.publishers:
            for consumer in contract.consumers | extra:
                if provider != consumer:
                    declared.add((provider, consumer, contract.id))
    snapshot = src.flows.snapshot()
    edges = declared | set(snapshot.edges_total)
    shown = sorted(e for e in edges if viewer in (None, e[0], e[1]))
    rows: list[dict[str, Any]] = [
        {"provider": p, "consumer": c, "contract": k, "minute": snapshot.edges_minute.get((p, c, k), 0),
             "total": snapshot.edges_total.get((p, c, k), 0),
             "refused": snapshot.refusals_total.get((p, k), 0),
             "refused_minute": snapshot.refusals_minute.get((p, k), 0)} for p, c, k in shown]
    codes = list(DEPARTMENTS)
    position = {code: (CENTRE + RADIUS * math.cos(2 * math.pi * i / len(codes) - math.pi / 2),
                       CENTRE + RADIUS * math.sin(2 * math.pi * i / len(codes) - math.pi / 2))
                for i, code in enumerate(codes)}
    pairs: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        pair = pairs.setdefault((row["provider"], row["consumer"]), {"minute": 0, "total": 0, "contracts": 0})
        pair["minute"] += row["minute"]
        pair["total"] += row["total"]
        pair["contracts"] += 1
    lines = [{"provider": p, "consumer": c, "x1": position[p][0], "y1": position[p][1], "x2": position[c][0],
              "y2": position[c][1], "width": 1 + min(6.0, math.log1p(v["minute"])), **v}
             for (p, c), v in sorted(pairs.items()) if p in position and c in position]
    nodes = [{"code": code, "zh": DEPARTMENTS[code].name_zh, "en": DEPARTMENTS[code].name_en, "x": x, "y": y,
              "in_minute": snapshot.ingress_minute.get(code, 0), "out_minute": snapshot.delivered_minute.get(code, 0),
              "mine": viewer in (None, code)}
             for code, (x, y) in position.items()]
    unknown = sum(n for (sender, contract), n in snapshot.refusals_total.items()
                  if contract not in latest and viewer in (None, sender))
    return {"nodes": nodes, "lines": lines, "edges": rows, "unknown_refused": unknown,
            "events_minute": sum(r["minute"] for r in rows), "as_of": snapshot.at}


# --- flows --------------------------------------------------------------------------------------------------
def sparkline(values: Sequence[float], width: int = 240, height: int = 36) -> str:
    """An SVG polyline's points for a series (oldest first), scaled to its own maximum."""
    if not values:
        return ""
    top = max(max(values), 1)
    step = width / max(len(values) - 1, 1)
    return " ".join(f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values))


async def flows(src: Sources, viewer: str | None) -> dict[str, Any]:
    snapshot = src.flows.snapshot()
    sample = src.lags.latest()
    history = src.lags.series(viewer)
    latency = src.batch_latency()
    rows: list[dict[str, Any]] = []
    for code in SERVICE_DEPARTMENTS:
        if viewer not in (None, code):
            continue
        lags = [lag for lag in (sample.lags if sample else ()) if lag.department == code]
        rows.append({
            "code": code, "zh": DEPARTMENTS[code].name_zh, "en": DEPARTMENTS[code].name_en,
            "ingress_minute": snapshot.ingress_minute.get(code, 0),
            "delivered_minute": snapshot.delivered_minute.get(code, 0),
            "ingress_line": sparkline(snapshot.ingress_history.get(code, [0] * 60)),
            "delivered_line": sparkline(snapshot.delivered_history.get(code, [0] * 60)),
            "lags": [{"group": lag.group, "topic": lag.topic, "lag": lag.lag, "end": lag.end,
                      "line": sparkline([v for _, v in history.get((lag.group, lag.topic), [])]),
                      "alert": lag.lag >= src.thresholds.lag_records} for lag in lags],
        })
    router = [lag for lag in (sample.lags if sample else ()) if lag.department == "gateway"]
    alerts = [f"{lag['group']} is {lag['lag']} records behind on {lag['topic']}"
              for row in rows for lag in row["lags"] if lag["alert"]]
    if viewer is None:
        alerts += [f"the router is {lag.lag} records behind on {lag.topic}" for lag in router
                   if lag.lag >= src.thresholds.lag_records]
    if latency is not None and latency[1] >= src.thresholds.batch_p99_ms:
        alerts.append(f"the router's batch latency p99 is {latency[1]:.0f} ms (alert at "
                      f"{src.thresholds.batch_p99_ms:.0f} ms)")
    history_minutes = max((len(v) for v in history.values()), default=0) * src.lags.every_seconds / 60
    return {"rows": rows, "router_lag": sum(lag.lag for lag in router) if viewer is None else None,
            "latency": latency, "alerts": alerts, "sampled_at": sample.at if sample else None,
            "history_minutes": round(history_minutes, 1), "thresholds": src.thresholds}


# --- dead letters -------------------------------------------------------------------------------------------
async def dead_letters(src: Sources, viewer: str | None, limit: int = 200) -> list[dict[str, Any]]:
    """The latest refusals, newest first: reason, sender, contract, time (the entry's and the real one)."""
    async with src.pool.acquire() as connection:
        rows = await connection.fetch(
            f"SELECT seq, recorded_at, entry::text AS entry FROM {TABLE} WHERE action = $1"
            " AND ($2::text IS NULL OR sender = $2) ORDER BY seq DESC LIMIT $3",
            AuditAction.REJECTED.value, viewer, limit)
    return [{"seq": r["seq"], "recorded_at": r["recorded_at"], **orjson.loads(r["entry"])} for r in rows]


async def dead_letter(src: Sources, seq: int) -> tuple[dict[str, Any], RecordView | None] | None:
    """One refusal and its record, read from the ingress topic it entered by (masked), or None."""
    async with src.pool.acquire() as connection:
        row = await connection.fetchrow(f"SELECT seq, recorded_at, entry::text AS entry FROM {TABLE}"
                                        " WHERE seq = $1 AND action = $2", seq, AuditAction.REJECTED.value)
    if row is None:
        return None
    entry = {"seq": row["seq"], "recorded_at": row["recorded_at"], **orjson.loads(row["entry"])}
    ingress = entry.get("ingress") or {}
    await src.enforcement.refresh()
    record = await src.read_record(ingress["topic"], ingress["partition"], ingress["offset"],
                                   src.enforcement.registry) if ingress else None
    return entry, record


# --- agreements ---------------------------------------------------------------------------------------------
def _agreement_row(a: Agreement, now: datetime, calendar: WorkingDayCalendar) -> dict[str, Any]:
    left = calendar.working_days_between(now, a.due_at) if now < a.due_at else -calendar.working_days_between(
        a.due_at, now)
    return {**a.view(now), "working_days_left": round(left, 1)}


AGREEMENTS_PAGE = 50  # rows of each standing on the agreements view


async def agreements(src: Sources, viewer: str | None, standing: Standing | None = None,
                     offset: int = 0) -> list[dict[str, Any]]:
    """Pending (with working days left and whose move it is), overdue or escalated, in force, and the rest (refused,
    revoked, expired, suspended, ...): of each how many, and its first page of rows (or, of ``standing`` alone, the
    page from ``offset``), someone's move the earliest due first, the others newest first."""
    now = src.clock.now()
    start = offset if standing is not None else 0
    groups = []
    for kind, (shown, total) in (await src.agreements.by_standing(viewer, now, AGREEMENTS_PAGE, start,
                                                                  standing)).items():
        rows = []
        for a in shown:
            row = _agreement_row(a, now, src.calendar)
            if kind is Standing.ENDED:
                row["ended"] = a.status.value if a.status is not Status.APPROVED else (
                    "expired" if now >= a.valid_until else "not yet in force")
            rows.append(row)
        groups.append({"key": kind.value, "rows": rows, "total": total, "offset": start,
                       "next": next_offset(start, len(rows), total),
                       "previous": max(start - AGREEMENTS_PAGE, 0) if start else None})
    return groups


# --- departments' efficacy ----------------------------------------------------------------------------------
REPORT_SECONDS = 15.0  # the report is built at most this often (it reads every case)


async def report(src: Sources) -> dict[str, Any]:
    """The efficacy report of `concord report`. Built once on first use, then again in the background when older
    than ``REPORT_SECONDS`` (meanwhile the last one is shown), so a page never waits for it twice."""
    async def build() -> None:
        async with src.reporter.acquire() as connection:
            figures = await report_from(connection, src.catalogue, src.clock.now())
        src._report = (time.monotonic(), figures)

    async with src._report_lock:
        if src._report is None:
            await build()
        elif time.monotonic() - src._report[0] > REPORT_SECONDS and (src._rebuild is None or src._rebuild.done()):
            src._rebuild = asyncio.create_task(build())
    assert src._report is not None
    return src._report[1]


async def departments(src: Sources, viewer: str | None) -> dict[str, Any]:
    figures = await report(src)
    rows = [d for d in figures["departments"] if viewer in (None, d["code"])]
    for row in rows:
        row["trend_line"] = sparkline([100 * (p["on_time_rate"] or 0) for p in row["trend"]], 160, 30)
    return {"rows": rows, "generated_at": figures["generated_at"], "cases": figures["cases"] if viewer is None
            else None, "exchange": figures["exchange"] if viewer is None else None}


# --- a case's trace -----------------------------------------------------------------------------------------
async def case_trace(src: Sources, case_id: str, viewer: str | None) -> dict[str, Any] | None:
    """Every audit entry of a case on a timeline (the entry's own time), each routed event with the exchange's
    transit to each consumer, and each department's own response time to the case's requests."""
    async with src.pool.acquire() as connection:
        rows = await connection.fetch(
            f"SELECT seq, recorded_at, entry::text AS entry FROM {TABLE} WHERE case_id = $1 ORDER BY seq", case_id)
    entries = [{"seq": r["seq"], "recorded_at": r["recorded_at"], **orjson.loads(r["entry"])} for r in rows]
    if viewer is not None:
        entries = [e for e in entries if viewer == e.get("sender") or viewer in (e.get("delivered") or {})
                   or viewer in (e.get("parties") or [])]
    if not entries:
        return None
    ids = [e["event_id"] for e in entries if e.get("action") == AuditAction.ROUTED.value and e.get("event_id")]
    transits = " UNION ALL ".join(
        f"SELECT '{d}' AS consumer, event_id, extract(epoch FROM handled_at - coalesce(sent_at, ingress_at)) * 1000"
        f" AS ms FROM {d}.transits WHERE event_id = ANY($1)" for d in SERVICE_DEPARTMENTS)
    async with src.reporter.acquire() as connection:
        transit = {(r["event_id"], r["consumer"]): r["ms"] for r in await connection.fetch(transits, ids)}
        requests = await connection.fetch(
            "SELECT request_id, department, item_name, stage, requested_at, decided_at, due_at, decision, status,"
            " supplements, paused_days, reminded::text AS reminded, escalated_at FROM bureau.requests"
            " WHERE case_id = $1 ORDER BY stage, requested_at", case_id)
        answered = {r["request_id"]: (r["received_at"], r["decided_at"]) for r in await connection.fetch(
            " UNION ALL ".join(f"SELECT request_id, received_at, decided_at FROM {d}.answered"
                               " WHERE request_id = ANY($1)" for d in sorted({r["department"] for r in requests})),
            [r["request_id"] for r in requests])} if requests else {}
    for e in entries:
        e["transits"] = {c: transit.get((e.get("event_id"), c)) for c in (e.get("delivered") or {})}
    lanes = sorted({e.get("sender", "") for e in entries} | {c for e in entries for c in (e.get("delivered") or {})}
                   - {""})
    times = [datetime.fromisoformat(e["at"]) for e in entries]
    start, end = min(times), max(times)
    span = max((end - start).total_seconds(), 1.0)
    for e, at in zip(entries, times, strict=True):
        e["x"] = 160 + 600 * (at - start).total_seconds() / span
        e["lane"] = lanes.index(e["sender"]) if e.get("sender") in lanes else 0
        e["to_lanes"] = [lanes.index(c) for c in (e.get("delivered") or {}) if c in lanes]
    responses = []
    for r in requests:
        if viewer not in (None, r["department"], "bureau"):
            continue
        row = RequestRow(r["department"], r["stage"], r["requested_at"], r["decided_at"], r["due_at"],
                         None if r["decision"] is None else Decision(r["decision"]), RequestStatus(r["status"]),
                         r["supplements"], r["paused_days"], orjson.loads(r["reminded"]), r["escalated_at"] is not None,
                         *answered.get(r["request_id"], (None, None)))
        responses.append({"request_id": r["request_id"], "department": r["department"], "item": r["item_name"],
                          "stage": r["stage"], "status": r["status"], "decision": r["decision"],
                          "requested_at": r["requested_at"], "decided_at": r["decided_at"], "due_at": r["due_at"],
                          "working_days": row.response_days(src.calendar),
                          "own_desk": r["request_id"] in answered})
    return {"case_id": case_id, "entries": entries, "lanes": lanes, "responses": responses,
            "height": 40 + 36 * len(lanes), "start": start, "end": end}


# --- the audit chain ----------------------------------------------------------------------------------------
async def audit_state(src: Sources, viewer: str | None, limit: int = 50) -> dict[str, Any]:
    async with src.pool.acquire() as connection:
        count, last = await head(connection)
        rows = await connection.fetch(
            f"SELECT seq, recorded_at, action, sender, contract, case_id, hash FROM {TABLE}"
            " WHERE $1::text IS NULL OR sender = $1 OR entry -> 'delivered' ? $1 OR entry -> 'parties' ? $1"
            " ORDER BY seq DESC LIMIT $2", viewer, limit)
    return {"count": count, "head": last, "recent": [dict(r) for r in rows], "verification": src.last_verification,
            "verifying": src.verifying,
            "anchor": described(src.anchors.latest.get(TABLE)), "key": src.anchors.key_id}


def start_verification(src: Sources, by: str) -> bool:
    """Begin verifying the whole chain, against its anchors too (as ``concord audit verify`` does), unless a
    verification is under way (False). It runs apart from the request that asked: on a long chain it takes
    longer than a browser waits; the audit view shows it under way, then its outcome."""
    if src._verification is not None and not src._verification.done():
        return False
    src.verifying = {"at": src.clock.now(), "by": by}
    src._verification = asyncio.create_task(_verify_chain(src, by), name="console.verify-chain")
    return True


async def _verify_chain(src: Sources, by: str) -> None:
    started = time.monotonic()
    outcome: dict[str, Any] = {"at": src.clock.now(), "by": by}
    try:
        async with src.pool.acquire() as connection:
            result = await check(connection, src.anchors)
    except Exception as exc:  # a task nobody awaits: whatever stopped it is the outcome the view shows
        log.exception("verifying the audit chain failed")
        outcome |= {"ok": False, "failed": f"{type(exc).__name__}: {exc}", "findings": [], "more": 0}
    else:
        findings = result.findings
        outcome |= {"entries": result.count, "head": result.head, "ok": not findings, "failed": None,
                    "anchors": result.anchors,
                    "findings": [{"kind": str(f.kind), "seq": f.seq, "detail": f.detail} for f in findings[:50]],
                    "more": max(len(findings) - 50, 0)}
    finally:
        src.last_verification = outcome | {"seconds": round(time.monotonic() - started, 2)}
        src.verifying = None
