"""The efficacy report's figures, from typed rows (no I/O)."""

from datetime import datetime, timedelta

from base.calendar import CHINA, WorkingDayCalendar
from contracts.bureau import DataOutcome, Decision
from contracts.coordination import Resolution
from contracts.exchange import AgreementOutcome, AgreementStatus
from contracts.refusal_grounds import SharingGround
from services.bureau.catalogue import load_catalogue
from services.bureau.efficacy import (
    AgreementRow,
    CaseRow,
    ConflictRow,
    Hop,
    RequestRow,
    WaitRow,
    barrier_figures,
    build_report,
    exchange_figures,
)
from services.bureau.model import CaseStatus, RequestStatus
from services.bureau.report_page import render

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA)


def request(department: str, decided_days: int | None, decision: Decision | None = Decision.APPROVED,
            status: RequestStatus = RequestStatus.DECIDED) -> RequestRow:
    decided = MONDAY + timedelta(days=decided_days) if decided_days is not None else None
    return RequestRow(department, 1, MONDAY, decided, MONDAY + timedelta(days=3), decision, status, 0, 0.0, [], False)


def test_the_report_counts_by_status_and_measures_in_working_days() -> None:
    cases = [CaseRow("G-1", CaseStatus.COMPLETED, MONDAY, MONDAY + timedelta(days=7), {}, {}),  # 5 working days
             CaseRow("G-2", CaseStatus.HELD, MONDAY, None, {}, {}),
             CaseRow("G-3", CaseStatus.REJECTED, MONDAY, MONDAY + timedelta(days=1), {}, {})]
    requests = [request("planning", 1), request("planning", 4, Decision.REJECTED),
                request("planning", None, None, RequestStatus.PENDING),
                request("planning", 2, status=RequestStatus.WITHDRAWN)]
    agreements = [AgreementRow("A-1", "market.business-registration", "market", "devreform", "pending", MONDAY, None,
                               None, False),
                  AgreementRow("A-2", "market.business-registration", "market", "housing", AgreementOutcome.REJECTED,
                               MONDAY, MONDAY + timedelta(days=1), "no legal basis", True, AgreementStatus.REJECTED,
                               SharingGround.NO_LEGAL_BASIS, refused=True)]
    conflicts = [ConflictRow(Resolution.UPHOLD_REFUSAL), ConflictRow(None)]
    report = build_report(cases, requests, agreements, conflicts, load_catalogue(), MONDAY + timedelta(days=14))

    assert report["cases"]["median_working_days_completed"] == 5.0
    assert {k: report["cases"][k] for k in ("total", "completed", "rejected", "in_progress", "held_for_conflict")} \
        == {"total": 3, "completed": 1, "rejected": 1, "in_progress": 1, "held_for_conflict": 1}
    [planning] = report["departments"]
    assert (planning["requests"], planning["decided"], planning["rejection_rate"], planning["on_time_rate"]) \
        == (3, 2, 0.5, 0.5)
    assert report["sharing"]["pending"] == 1 and report["sharing"]["refused"] == 1
    [refusal] = report["sharing"]["refusals"]
    assert (refusal["reasons"], refusal["ground"], refusal["status"]) \
        == ("no legal basis", "no_legal_basis", "rejected")
    assert report["conflicts"] == {"raised": 2, "resolved": 1, "proceeded_with_conditions": 0, "refusals_upheld": 1}


def test_a_departments_response_is_measured_by_its_own_desk_and_the_exchanges_transit_apart() -> None:
    # the bureau saw the request leave on Monday and the answer come on Thursday; the department had it from
    # Tuesday (the exchange was slow) and answered on Wednesday: one working day is the department's
    slow_exchange = RequestRow("planning", 1, MONDAY, MONDAY + timedelta(days=3), MONDAY + timedelta(days=5),
                               Decision.APPROVED, RequestStatus.DECIDED, 0, 0.0, [], False,
                               received_at=MONDAY + timedelta(days=1), answered_at=MONDAY + timedelta(days=2))
    no_desk = RequestRow("water", 1, MONDAY, MONDAY + timedelta(days=3), MONDAY + timedelta(days=5),
                         Decision.APPROVED, RequestStatus.DECIDED, 0, 0.0, [], False)
    hops = [Hop("bureau", "planning", 10, 12.0, 40.0), Hop("planning", "bureau", 30, 9.5, 35.25)]
    report = build_report([], [slow_exchange, no_desk], [], [], load_catalogue(), MONDAY,
                          exchange_figures(hops, (40, 10.04, 38.0)))
    by_code = {d["code"]: d for d in report["departments"]}
    assert by_code["planning"]["median_response_working_days"] == 1.0
    assert by_code["water"]["median_response_working_days"] == 3.0  # as the bureau saw it: no desk of its own
    assert (report["exchange"]["hops"], report["exchange"]["transit_p50_ms"]) == (40, 10.0)
    assert [h["sender"] for h in report["exchange"]["by_hop"]] == ["planning", "bureau"]


def test_a_departments_trend_follows_its_answers_in_the_order_they_were_given() -> None:
    late_then_on_time = [request("water", d) for d in (5, 6, 4, 5)] + [request("water", d) for d in (1, 2, 1, 2)]
    report = build_report([], late_then_on_time, [], [], load_catalogue(), MONDAY + timedelta(days=30))
    [water] = report["departments"]
    trend = water["trend"]
    assert [p["decided"] for p in trend] == [1] * 8
    assert [p["on_time_rate"] for p in trend] == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]  # by decision time
    assert [p["until"] for p in trend] == sorted(p["until"] for p in trend)
    few = build_report([], [request("water", 1), request("water", 5)], [], [], load_catalogue(), MONDAY)
    assert [p["on_time_rate"] for p in few["departments"][0]["trend"]] == [1.0, 0.0]


def test_the_barriers_count_per_provider_consumer_and_case_what_withheld_data_costs() -> None:
    def agreement(n: int, provider: str, status: str, decided_days: int | None = 1, escalated: bool = False,
                  lifecycle: AgreementStatus | None = None, ground: SharingGround | None = None, refused: bool = False,
                  countered: bool = False) -> AgreementRow:
        decided = MONDAY + timedelta(days=decided_days) if decided_days is not None else None
        return AgreementRow(f"A-{n}", "bureau.case-submitted", provider, "housing", status, MONDAY, decided,
                            "in words", escalated, lifecycle or AgreementStatus(status), ground, refused, countered)

    agreements = [
        agreement(1, "bureau", "approved", 1),  # Tuesday: 1 working day
        agreement(2, "bureau", "revoked", 3),  # approved, then revoked
        # refused on the provider's judgement, escalated by the consumer, upheld by an officer of the office
        agreement(3, "bureau", "rejected", 2, lifecycle=AgreementStatus.UPHELD, ground=SharingGround.NOT_NECESSARY,
                  refused=True),
        agreement(4, "bureau", "rejected", 4, escalated=True, refused=True),  # no ground named; late
        # refused, escalated, and the office proceeded: in force, still a refusal of the provider's
        agreement(8, "bureau", "approved", 2, ground=SharingGround.NOT_NECESSARY, refused=True),
        agreement(5, "market", "rejected", 7, ground=SharingGround.PERSONAL_INFORMATION, refused=True),
        agreement(6, "market", "pending", None),
        agreement(7, "market", "pending", 2, lifecycle=AgreementStatus.COUNTERED, countered=True),  # not answered yet
        agreement(9, "market", "approved", 2, ground=SharingGround.PERSONAL_INFORMATION, countered=True),  # accepted
    ]
    waits = [  # Monday 09:00 to Wednesday 09:00: two working days
        WaitRow("G-1", "housing", "bureau", "A-1", MONDAY, MONDAY + timedelta(days=2), DataOutcome.SHARED, False),
        WaitRow("G-1", "housing", "bureau", "A-3", MONDAY, MONDAY + timedelta(days=2), DataOutcome.WITHHELD, True),
        WaitRow("G-2", "environment", "market", "A-5", MONDAY, MONDAY + timedelta(days=7), DataOutcome.WITHHELD,
                False),  # Monday to the next Monday: five working days
        WaitRow("G-3", "environment", "market", "A-6", MONDAY, None, None, False),  # still waiting at Wednesday
    ]
    figures = barrier_figures(agreements, waits, WorkingDayCalendar(), MONDAY + timedelta(days=2))

    bureau, market = figures["providers"]
    assert (bureau["provider"], bureau["requests_received"], bureau["approved"], bureau["refused"]) \
        == ("bureau", 5, 2, 3)
    assert bureau["refused_by_reason"] == {"not_necessary": 2, "unstated": 1} and bureau["refused_binding"] == 0
    assert (bureau["refusals_escalated"], bureau["refusals_overruled"], bureau["refusals_upheld"]) == (2, 1, 1)
    assert bureau["median_working_days_to_decide"] == 2.0  # 1, 3 (Thursday), 2, 4 (Friday), 2
    assert bureau["escalations"] == 2  # one late (the gateway's), one refusal the consumer escalated
    assert (market["refused_by_reason"], market["refused_binding"], market["pending"]) \
        == ({"personal_information": 1}, 1, 1)
    assert (market["counter_offered"], market["counter_offers_accepted"], market["approved"]) == (2, 1, 0)
    assert figures["office"] == {"escalated_refusals": 2, "proceeded_with_conditions": 1, "upheld": 1,
                                 "upheld_binding": 0, "awaiting": 0}
    environment, housing = figures["consumers"]
    assert (housing["waits"], housing["shared"], housing["withheld"], housing["waited_working_days"]) \
        == (2, 1, 1, 4.0)
    assert (environment["still_waiting"], environment["waited_working_days"]) == (1, 7.0)  # 5 + 2 so far
    by_case = {c["case_id"]: c for c in figures["cases"]}
    assert by_case["G-2"]["lost_working_days"] == 5.0 and by_case["G-1"]["lost_working_days"] == 2.0
    assert by_case["G-3"]["lost_working_days"] == 0.0 and by_case["G-3"]["waited_working_days"] == 2.0
    assert [c["case_id"] for c in figures["cases"]] == ["G-2", "G-1", "G-3"]
    assert (figures["cases_that_waited"], figures["working_days_lost"]) == (3, 7.0)


def test_the_report_page_shows_the_barriers() -> None:
    report = build_report([], [], [AgreementRow("A-9", "market.business-registration", "market", "environment",
                                                "rejected", MONDAY, MONDAY + timedelta(days=1),
                                                "the ministry", False, AgreementStatus.REJECTED,
                                                SharingGround.VERTICAL_SYSTEM, refused=True)],
                          [], load_catalogue(), MONDAY + timedelta(days=3))
    page = render(report)
    assert "Barriers to sharing" in page and "vertical_system 1" in page and "counter_offered" in page
