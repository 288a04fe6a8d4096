"""The efficacy report's figures, from typed rows (no I/O)."""

from datetime import datetime, timedelta

from base.calendar import CHINA
from contracts.bureau import Decision
from contracts.coordination import Resolution
from contracts.exchange import AgreementOutcome
from services.bureau.catalogue import load_catalogue
from services.bureau.efficacy import AgreementRow, CaseRow, ConflictRow, RequestRow, build_report
from services.bureau.model import CaseStatus, RequestStatus

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
    agreements = [AgreementRow("A-1", "market.business-registration", "market", "devreform", None, MONDAY, None,
                               None, False),
                  AgreementRow("A-2", "market.business-registration", "market", "housing", AgreementOutcome.REJECTED,
                               MONDAY, MONDAY + timedelta(days=1), "no legal basis", True)]
    conflicts = [ConflictRow(Resolution.UPHOLD_REFUSAL), ConflictRow(None)]
    report = build_report(cases, requests, agreements, conflicts, load_catalogue(), MONDAY + timedelta(days=14))

    assert report["cases"]["median_working_days_completed"] == 5.0
    assert {k: report["cases"][k] for k in ("total", "completed", "rejected", "in_progress", "held_for_conflict")} \
        == {"total": 3, "completed": 1, "rejected": 1, "in_progress": 1, "held_for_conflict": 1}
    [planning] = report["departments"]
    assert (planning["requests"], planning["decided"], planning["rejection_rate"], planning["on_time_rate"]) \
        == (3, 2, 0.5, 0.5)
    assert report["sharing"]["pending"] == 1 and report["sharing"]["refused"] == 1
    assert report["sharing"]["refusals"][0]["reasons"] == "no legal basis"
    assert report["conflicts"] == {"raised": 2, "resolved": 1, "proceeded_with_conditions": 0, "refusals_upheld": 1}
