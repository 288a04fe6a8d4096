"""Collaboration efficacy, measured from what the exchange recorded: per department, how fast and how
reliably it answers; per stage and per case, working days against the targets; for data sharing, how
requests for data fare, and what withheld data costs (the barriers: per provider, per consumer, per case).
`concord report` prints it, as a table, as JSON, or as an HTML page with charts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from base.calendar import WorkingDayCalendar
from contracts.bureau import DataOutcome, Decision
from contracts.coordination import Resolution
from contracts.departments import DEPARTMENTS, REVIEWERS, SERVICE_DEPARTMENTS
from contracts.exchange import AgreementOutcome, AgreementStatus
from contracts.refusal_grounds import SharingGround
from services.bureau.catalogue import ServiceCatalogue
from services.bureau.model import CaseStatus, RequestStatus


@dataclass(frozen=True)
class RequestRow:
    department: str
    stage: int
    requested_at: datetime
    decided_at: datetime | None
    due_at: datetime
    decision: Decision | None
    status: RequestStatus
    supplements: int
    paused_days: float
    reminded: list[float]
    escalated: bool
    # The department's own times (its desk's), where it has a desk on the exchange: the exchange's transit is
    # then no part of its response time.
    received_at: datetime | None = None
    answered_at: datetime | None = None

    def response_days(self, calendar: WorkingDayCalendar) -> float | None:
        """Working days the department took, its clock's pauses (supplements, suspension) left out."""
        if self.received_at is not None and self.answered_at is not None:
            start, end = self.received_at, self.answered_at
        elif self.decided_at is not None:
            start, end = self.requested_at, self.decided_at  # no desk of its own: as the bureau saw it
        else:
            return None
        return max(calendar.working_days_between(start, end) - self.paused_days, 0.0)


@dataclass(frozen=True)
class CaseRow:
    case_id: str
    status: CaseStatus
    submitted_at: datetime
    completed_at: datetime | None
    stage_started: dict[int, datetime]
    stage_completed: dict[int, datetime]


@dataclass(frozen=True)
class AgreementRow:
    id: str
    contract_id: str
    provider: str
    consumer: str
    status: str  # in the first lifecycle's words: pending, approved, rejected, revoked
    requested_at: datetime
    decided_at: datetime | None
    reasons: str | None
    escalated: bool  # overdue: the gateway escalated it to the coordination office
    lifecycle: AgreementStatus = AgreementStatus.PENDING  # where it stands (gateway.lifecycle)
    ground: SharingGround | None = None  # of the provider's refusal or counter-offer
    refused: bool = False  # the provider refused it (whatever the coordination office decided after)
    countered: bool = False  # the provider offered other terms (accepted, declined or still open)

    @property
    def approved(self) -> bool:
        """Approved by the provider on the terms asked (later suspended, revoked or ended as may be)."""
        return self.status in (AgreementOutcome.APPROVED, AgreementOutcome.REVOKED) and not (self.refused or
                                                                                            self.countered)

    @property
    def escalated_refusal(self) -> bool:
        """Its refusal was taken to the coordination office by the consumer."""
        return self.refused and self.lifecycle is not AgreementStatus.REJECTED

    @property
    def proceeded(self) -> bool:
        """The coordination office overruled its refusal: in force on conditions (or since then ended)."""
        return self.escalated_refusal and self.lifecycle not in (AgreementStatus.ESCALATED, AgreementStatus.UPHELD)


@dataclass(frozen=True)
class WaitRow:
    """A department's review of a case waiting for another department's data (from the case's records)."""

    case_id: str
    consumer: str
    provider: str
    agreement_id: str
    since: datetime
    until: datetime | None  # None: still waiting
    outcome: DataOutcome | None
    escalated: bool  # the consumer took the refusal to the coordination office

    def working_days(self, calendar: WorkingDayCalendar, now: datetime) -> float:
        return calendar.working_days_between(self.since, self.until or now)


@dataclass(frozen=True)
class Hop:
    """The exchange's transit from one department to another, in real milliseconds."""

    sender: str
    consumer: str
    events: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class ConflictRow:
    resolution: Resolution | None  # None while the coordination office has not decided


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = q * (len(ordered) - 1)
    low, high = int(index), min(int(index) + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (index - low), 2)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def department_figures(requests: list[RequestRow], calendar: WorkingDayCalendar) -> list[dict[str, Any]]:
    figures = []
    for code in sorted({r.department for r in requests}):
        mine = [r for r in requests if r.department == code and r.status is not RequestStatus.WITHDRAWN]
        decided = [r for r in mine if r.decided_at is not None]
        response = [days for r in decided if (days := r.response_days(calendar)) is not None]
        figures.append({
            "code": code,
            "name": DEPARTMENTS[code].name_en,
            "name_zh": DEPARTMENTS[code].name_zh,
            "requests": len(mine),
            "decided": len(decided),
            "median_response_working_days": _quantile(response, 0.5),
            "p90_response_working_days": _quantile(response, 0.9),
            "on_time_rate": _rate(sum(1 for r in decided if r.decided_at and r.decided_at <= r.due_at), len(decided)),
            "supplement_rate": _rate(sum(1 for r in mine if r.supplements), len(mine)),
            "rejection_rate": _rate(sum(1 for r in decided if r.decision is Decision.REJECTED), len(decided)),
            "reminders": sum(len(r.reminded) for r in mine),
            "escalations": sum(1 for r in mine if r.escalated),
            "response_working_days": [round(x, 2) for x in response],
            "trend": trend(decided, calendar),
        })
    return figures


TREND_POINTS = 8


def trend(decided: list[RequestRow], calendar: WorkingDayCalendar) -> list[dict[str, Any]]:
    """How a department's answers went over time: its decided requests in order of decision, cut into up to
    ``TREND_POINTS`` equal runs, each with its on-time rate and median response (working days)."""
    ordered = sorted(decided, key=lambda r: r.decided_at or r.requested_at)
    runs = min(TREND_POINTS, len(ordered))
    points = []
    for i in range(runs):
        run = ordered[i * len(ordered) // runs:(i + 1) * len(ordered) // runs]
        response = [days for r in run if (days := r.response_days(calendar)) is not None]
        points.append({"until": (run[-1].decided_at or run[-1].requested_at).isoformat(), "decided": len(run),
                       "on_time_rate": _rate(sum(1 for r in run if r.decided_at and r.decided_at <= r.due_at),
                                             len(run)),
                       "median_response_working_days": _quantile(response, 0.5)})
    return points


def stage_figures(cases: list[CaseRow], catalogue: ServiceCatalogue,
                  calendar: WorkingDayCalendar) -> list[dict[str, Any]]:
    figures = []
    for stage in catalogue.stages:
        durations = [calendar.working_days_between(c.stage_started[stage.number], c.stage_completed[stage.number])
                     for c in cases if stage.number in c.stage_completed and stage.number in c.stage_started]
        figures.append({
            "stage": stage.number, "name": stage.name_en, "name_zh": stage.name_zh, "lead": stage.lead,
            "target_days": stage.target_days, "completed": len(durations),
            "median_working_days": _quantile(durations, 0.5), "p90_working_days": _quantile(durations, 0.9),
            "on_target_rate": _rate(sum(1 for d in durations if d <= stage.target_days), len(durations)),
        })
    return figures


def case_figures(cases: list[CaseRow], catalogue: ServiceCatalogue, calendar: WorkingDayCalendar,
                 now: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    def working_days(c: CaseRow) -> float:
        return round(calendar.working_days_between(c.submitted_at, c.completed_at or now), 2)

    def count(status: CaseStatus) -> int:
        return sum(1 for c in cases if c.status is status)

    per_case = [{
        "case_id": c.case_id, "status": c.status.value, "working_days": working_days(c),
        "target_days": catalogue.case_target_days, "finished": c.status.ended,
    } for c in cases]
    completed = [working_days(c) for c in cases if c.status is CaseStatus.COMPLETED]
    summary = {
        "total": len(cases),
        "completed": count(CaseStatus.COMPLETED),
        "rejected": count(CaseStatus.REJECTED),
        "closed": count(CaseStatus.CLOSED),
        "in_progress": sum(1 for c in cases if not c.status.ended),
        "suspended": count(CaseStatus.SUSPENDED),
        "held_for_conflict": count(CaseStatus.HELD),
        "target_days": catalogue.case_target_days,
        "median_working_days_completed": _quantile(completed, 0.5),
        "p90_working_days_completed": _quantile(completed, 0.9),
        "on_target_rate": _rate(sum(1 for d in completed if d <= catalogue.case_target_days), len(completed)),
    }
    return summary, per_case


PENDING = "pending"
UNSTATED = "unstated"  # a refusal that names no ground


def sharing_figures(agreements: list[AgreementRow], calendar: WorkingDayCalendar) -> dict[str, Any]:
    decided = [a for a in agreements if a.decided_at is not None]
    turnaround = [calendar.working_days_between(a.requested_at, a.decided_at) for a in decided if a.decided_at]

    def count(status: str) -> int:
        return sum(1 for a in agreements if a.status == status)

    return {
        "agreement_requests": len(agreements),
        "approved": count(AgreementOutcome.APPROVED),
        "refused": count(AgreementOutcome.REJECTED),
        "revoked": count(AgreementOutcome.REVOKED),
        "pending": count(PENDING),
        "escalated": sum(1 for a in agreements if a.escalated),
        "median_turnaround_working_days": _quantile(turnaround, 0.5),
        "counter_offered": sum(1 for a in agreements if a.countered),
        "refusals": [{"agreement": a.id, "contract": a.contract_id, "consumer": a.consumer, "provider": a.provider,
                      "ground": a.ground.value if a.ground else None, "reasons": a.reasons, "status": a.lifecycle.value}
                     for a in agreements if a.refused],
    }


def provider_barriers(agreements: list[AgreementRow], waits: list[WaitRow],
                      calendar: WorkingDayCalendar) -> list[dict[str, Any]]:
    """Per providing department: the requests it received and how it answered them. An approval later revoked
    was an approval; a counter-offer is counted once, whatever the consumer answered; refusals are counted by their
    typed ground, whatever the coordination office decided of them; escalations are the gateway's (the provider was
    late) and the consumers' (they took a refusal to the coordination office)."""
    figures = []
    for code in sorted({a.provider for a in agreements}):
        mine = [a for a in agreements if a.provider == code]
        refused = [a for a in mine if a.refused]
        to_decide = [calendar.working_days_between(a.requested_at, a.decided_at) for a in mine if a.decided_at]
        by_reason: dict[str, int] = {}
        for a in refused:
            reason = a.ground.value if a.ground else UNSTATED
            by_reason[reason] = by_reason.get(reason, 0) + 1
        figures.append({
            "provider": code,
            "name": DEPARTMENTS[code].name_en if code in DEPARTMENTS else code,
            "requests_received": len(mine),
            "approved": sum(1 for a in mine if a.approved),
            "counter_offered": sum(1 for a in mine if a.countered),
            "counter_offers_accepted": sum(1 for a in mine if a.countered and a.status in (
                AgreementOutcome.APPROVED, AgreementOutcome.REVOKED)),
            "refused": len(refused),
            "refused_binding": sum(1 for a in refused if a.ground and a.ground.binding),
            "refused_by_reason": dict(sorted(by_reason.items())),
            "refusals_escalated": sum(1 for a in refused if a.escalated_refusal),
            "refusals_overruled": sum(1 for a in refused if a.proceeded),
            "refusals_upheld": sum(1 for a in refused if a.lifecycle is AgreementStatus.UPHELD),
            "pending": sum(1 for a in mine if a.lifecycle is AgreementStatus.PENDING),
            "median_working_days_to_decide": _quantile(to_decide, 0.5),
            "escalations": sum(1 for a in mine if a.escalated)
                           + sum(1 for w in waits if w.provider == code and w.escalated),
        })
    return figures


def consumer_barriers(waits: list[WaitRow], calendar: WorkingDayCalendar, now: datetime) -> list[dict[str, Any]]:
    """Per consuming department: the working days its reviews of cases waited for data, and what came of it."""
    figures = []
    for code in sorted({w.consumer for w in waits}):
        mine = [w for w in waits if w.consumer == code]
        days = [w.working_days(calendar, now) for w in mine]
        figures.append({
            "consumer": code,
            "name": DEPARTMENTS[code].name_en if code in DEPARTMENTS else code,
            "waits": len(mine),
            "shared": sum(1 for w in mine if w.outcome is DataOutcome.SHARED),
            "withheld": sum(1 for w in mine if w.outcome is DataOutcome.WITHHELD),
            "still_waiting": sum(1 for w in mine if w.until is None),
            "waited_working_days": round(sum(days), 2),
            "median_wait_working_days": _quantile(days, 0.5),
        })
    return figures


def case_barriers(waits: list[WaitRow], calendar: WorkingDayCalendar, now: datetime) -> list[dict[str, Any]]:
    """Per case whose reviews waited for data: the working days they waited, and those lost (waited for data
    that was withheld in the end), the most lost first."""
    figures = []
    for case_id in {w.case_id for w in waits}:
        mine = [w for w in waits if w.case_id == case_id]
        figures.append({
            "case_id": case_id,
            "waits": len(mine),
            "waited_working_days": round(sum(w.working_days(calendar, now) for w in mine), 2),
            "lost_working_days": round(sum(w.working_days(calendar, now) for w in mine
                                           if w.outcome is DataOutcome.WITHHELD), 2),
        })
    return sorted(figures, key=lambda c: (-c["lost_working_days"], -c["waited_working_days"], c["case_id"]))


def barrier_figures(agreements: list[AgreementRow], waits: list[WaitRow], calendar: WorkingDayCalendar,
                    now: datetime) -> dict[str, Any]:
    cases = case_barriers(waits, calendar, now)
    escalated = [a for a in agreements if a.escalated_refusal]
    return {
        "providers": provider_barriers(agreements, waits, calendar),
        "office": {  # the refusals consumers took to the coordination office, and what it decided
            "escalated_refusals": len(escalated),
            "proceeded_with_conditions": sum(1 for a in escalated if a.proceeded),
            "upheld": sum(1 for a in escalated if a.lifecycle is AgreementStatus.UPHELD),
            "upheld_binding": sum(1 for a in escalated if a.lifecycle is AgreementStatus.UPHELD and a.ground
                                  and a.ground.binding),
            "awaiting": sum(1 for a in escalated if a.lifecycle is AgreementStatus.ESCALATED),
        },
        "consumers": consumer_barriers(waits, calendar, now),
        "cases": cases,
        "cases_that_waited": len(cases),
        "working_days_lost": round(sum(c["lost_working_days"] for c in cases), 2),
    }


def exchange_figures(hops: list[Hop], overall: tuple[int, float | None, float | None]) -> dict[str, Any]:
    """The exchange's own share of the time: from the commit of a sender's unit of work (its outbox) to the
    consumer's handler, per hop."""
    events, p50, p99 = overall
    return {
        "hops": events,
        "transit_p50_ms": None if p50 is None else round(p50, 1),
        "transit_p99_ms": None if p99 is None else round(p99, 1),
        "by_hop": [{"sender": h.sender, "consumer": h.consumer, "events": h.events,
                    "transit_p50_ms": round(h.p50_ms, 1), "transit_p99_ms": round(h.p99_ms, 1)}
                   for h in sorted(hops, key=lambda h: (-h.events, h.sender, h.consumer))],
        "note": "real time; not counted in any department's response time",
    }


def build_report(cases: list[CaseRow], requests: list[RequestRow], agreements: list[AgreementRow],
                 conflicts: list[ConflictRow], catalogue: ServiceCatalogue, now: datetime,
                 exchange: dict[str, Any] | None = None, waits: list[WaitRow] | None = None) -> dict[str, Any]:
    calendar = WorkingDayCalendar()
    summary, per_case = case_figures(cases, catalogue, calendar, now)
    def resolved(resolution: Resolution) -> int:
        return sum(1 for c in conflicts if c.resolution is resolution)

    report = {
        "generated_at": now.isoformat(),
        "catalogue": catalogue.version,
        "cases": summary,
        "departments": department_figures(requests, calendar),
        "stages": stage_figures(cases, catalogue, calendar),
        "case_durations": per_case,
        "conflicts": {
            "raised": len(conflicts),
            "resolved": sum(1 for c in conflicts if c.resolution is not None),
            "proceeded_with_conditions": resolved(Resolution.PROCEED_WITH_CONDITIONS),
            "refusals_upheld": resolved(Resolution.UPHOLD_REFUSAL),
        },
        "sharing": sharing_figures(agreements, calendar),
        "barriers": barrier_figures(agreements, waits or [], calendar, now),
        "exchange": exchange or exchange_figures([], (0, None, None)),
    }
    report["calendar"] = {
        "source": "chinese-calendar (official holidays and make-up working days)",
        "weekday_fallback_years": sorted(calendar.fallback_years),
        "note": (f"no official calendar for {', '.join(map(str, sorted(calendar.fallback_years)))}: Monday to "
                 "Friday counted as working days") if calendar.fallback_years else "",
    }
    return report


async def load_report(dsn: str, catalogue: ServiceCatalogue, now: datetime) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    try:
        return await report_from(connection, catalogue, now)
    finally:
        await connection.close()


async def report_from(connection: asyncpg.Connection, catalogue: ServiceCatalogue, now: datetime) -> dict[str, Any]:
    """The report from the records, read through a connection of the ``reporter`` role."""
    case_rows = await connection.fetch("SELECT * FROM bureau.cases ORDER BY submitted_at")
    request_rows = await connection.fetch("SELECT * FROM bureau.requests")
    conflict_rows = await connection.fetch("SELECT resolution FROM bureau.conflicts")
    agreement_rows = await connection.fetch("SELECT * FROM gateway.agreement_figures")
    answered = {r["request_id"]: (r["received_at"], r["decided_at"]) for r in await connection.fetch(
        " UNION ALL ".join(f"SELECT request_id, received_at, decided_at FROM {d}.answered"
                           for d in sorted(REVIEWERS)))}
    transits = " UNION ALL ".join(
        f"SELECT sender, '{d}' AS consumer, extract(epoch FROM handled_at - coalesce(sent_at, ingress_at)) * 1000"
        f" AS ms FROM {d}.transits" for d in SERVICE_DEPARTMENTS)
    percentiles = "count(*) AS events, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50," \
                  " percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99"
    hop_rows = await connection.fetch(
        f"SELECT sender, consumer, {percentiles} FROM ({transits}) t GROUP BY sender, consumer")
    overall = await connection.fetchrow(f"SELECT {percentiles} FROM ({transits}) t")

    def stamps(raw: str) -> dict[int, datetime]:
        return {int(k): datetime.fromisoformat(v) for k, v in json.loads(raw).items()}

    cases = [CaseRow(r["case_id"], CaseStatus(r["status"]), r["submitted_at"], r["completed_at"],
                     stamps(r["stage_started"]), stamps(r["stage_completed"])) for r in case_rows]
    requests = [RequestRow(r["department"], r["stage"], r["requested_at"], r["decided_at"], r["due_at"],
                           None if r["decision"] is None else Decision(r["decision"]), RequestStatus(r["status"]),
                           r["supplements"], r["paused_days"], json.loads(r["reminded"]),
                           r["escalated_at"] is not None, *answered.get(r["request_id"], (None, None)))
                for r in request_rows]
    agreements = [AgreementRow(r["id"], r["contract_id"], r["provider"], r["consumer"], r["status"],
                               r["requested_at"], r["decided_at"], r["reasons"], r["escalated"],
                               AgreementStatus(r["lifecycle"]), SharingGround(r["ground"]) if r["ground"] else None,
                               r["refused"], r["countered"])
                  for r in agreement_rows]
    waits = [WaitRow(r["case_id"], r["department"], w["provider"], w["agreement_id"],
                     datetime.fromisoformat(w["since"]), datetime.fromisoformat(w["until"]) if w["until"] else None,
                     DataOutcome(w["outcome"]) if w["outcome"] else None, w["escalated"])
             for r in request_rows for w in json.loads(r["data_waits"])]
    conflicts = [ConflictRow(None if r["resolution"] is None else Resolution(r["resolution"])) for r in conflict_rows]
    hops = [Hop(r["sender"], r["consumer"], r["events"], r["p50"], r["p99"]) for r in hop_rows]
    exchange = exchange_figures(hops, (overall["events"], overall["p50"], overall["p99"]))
    return build_report(cases, requests, agreements, conflicts, catalogue, now, exchange, waits)
