"""The efficacy report as one self-contained HTML page, its charts drawn as inline SVG (no scripts)."""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH = 760


def _box_plots(departments: list[dict[str, Any]]) -> str:
    """Response time per department: box from the 25th to the 75th percentile, whiskers to 5th and 95th."""
    rows = [d for d in departments if d["response_working_days"]]
    if not rows:
        return "<p>No decided requests yet.</p>"
    top = max(max(d["response_working_days"]) for d in rows)
    scale = (WIDTH - 220) / max(top, 1.0)
    height = 30 * len(rows) + 40
    parts = [f'<svg width="{WIDTH}" height="{height}" role="img" aria-label="response times">']
    for i, d in enumerate(rows):
        values = sorted(d["response_working_days"])

        def q(p: float, values: list[float] = values) -> float:
            return values[min(int(p * (len(values) - 1) + 0.5), len(values) - 1)]

        y = 20 + i * 30
        x = [200 + q(p) * scale for p in (0.05, 0.25, 0.5, 0.75, 0.95)]
        parts += [
            f'<text x="0" y="{y + 5}" font-size="12">{escape(d["name_zh"])} ({d["code"]})</text>',
            f'<line x1="{x[0]:.1f}" y1="{y}" x2="{x[4]:.1f}" y2="{y}" stroke="#555"/>',
            f'<rect x="{x[1]:.1f}" y="{y - 8}" width="{max(x[3] - x[1], 1):.1f}" height="16" fill="#9ecae1" '
            'stroke="#3182bd"/>',
            f'<line x1="{x[2]:.1f}" y1="{y - 8}" x2="{x[2]:.1f}" y2="{y + 8}" stroke="#08519c" stroke-width="2"/>',
        ]
    for tick in range(0, int(top) + 2, max(1, int(top) // 8 or 1)):
        tx = 200 + tick * scale
        parts.append(f'<text x="{tx:.1f}" y="{height - 5}" font-size="10" text-anchor="middle">{tick}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _histogram(cases: list[dict[str, Any]], target: float) -> str:
    """Working days per finished case, with the district's target."""
    days = [c["working_days"] for c in cases if c["finished"]]
    if not days:
        return "<p>No finished cases yet.</p>"
    top = max(max(days), target) + 5
    bins = 20
    width = top / bins
    counts = [0] * bins
    for d in days:
        counts[min(int(d / width), bins - 1)] += 1
    bar_w = (WIDTH - 60) / bins
    peak = max(counts)
    parts = [f'<svg width="{WIDTH}" height="240" role="img" aria-label="case durations">']
    for i, count in enumerate(counts):
        h = 180 * count / peak
        parts.append(f'<rect x="{40 + i * bar_w:.1f}" y="{200 - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                     f'fill="#a1d99b"><title>{i * width:.0f}–{(i + 1) * width:.0f} days: {count}</title></rect>')
        parts.append(f'<text x="{40 + i * bar_w:.1f}" y="215" font-size="9">{i * width:.0f}</text>')
    tx = 40 + target / width * bar_w
    parts += [f'<line x1="{tx:.1f}" y1="10" x2="{tx:.1f}" y2="200" stroke="#de2d26" stroke-dasharray="4"/>',
              f'<text x="{tx + 4:.1f}" y="20" font-size="11" fill="#de2d26">target {target:.0f}</text>',
              "</svg>"]
    return "".join(parts)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(r.get(c, '')))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


CASES_SHOWN = 20  # the cases that lost the most working days to withheld data


def _barriers(barriers: dict[str, Any]) -> str:
    providers = [{**p, "refused_by_reason": ", ".join(f"{k} {v}" for k, v in p["refused_by_reason"].items())}
                 for p in barriers["providers"]]
    return f"""<h2>Barriers to sharing: what withheld data costs</h2>
<p>{barriers["cases_that_waited"]} cases waited for data; {barriers["working_days_lost"]} working days were lost
waiting for data that was withheld in the end.</p>
<h3>Providers</h3>{_table(providers, ["provider", "requests_received", "approved", "counter_offered", "refused",
                                      "refused_binding", "refused_by_reason", "refusals_escalated",
                                      "refusals_overruled", "refusals_upheld", "pending",
                                      "median_working_days_to_decide", "escalations"])}
<p>Refusals escalated to the coordination office: {", ".join(f"{k} {v}" for k, v in barriers["office"].items())}.</p>
<h3>Consumers: working days their cases waited for data</h3>{_table(barriers["consumers"], [
    "consumer", "waits", "shared", "withheld", "still_waiting", "waited_working_days", "median_wait_working_days"])}
<h3>Cases: working days lost to withheld data (the {CASES_SHOWN} that lost most)</h3>{_table(
    barriers["cases"][:CASES_SHOWN], ["case_id", "waits", "waited_working_days", "lost_working_days"])}"""


def render(report: dict[str, Any]) -> str:
    cases = report["cases"]
    department_columns = ["code", "name", "requests", "median_response_working_days", "p90_response_working_days",
                          "on_time_rate", "supplement_rate", "rejection_rate", "reminders", "escalations"]
    note = report["calendar"]["note"]
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>Concord: collaboration efficacy</title>
<style>body{{font-family:sans-serif;max-width:{WIDTH + 40}px;margin:2em auto}}table{{border-collapse:collapse;
font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}th{{background:#eee}}</style></head>
<body><h1>代办服务协同效能 · Collaboration efficacy</h1>
<p>Generated {escape(report["generated_at"])} · catalogue {escape(report["catalogue"])}
{f" · <strong>{escape(note)}</strong>" if note else ""}</p>
<h2>Cases</h2>{_table([cases], list(cases))}
<h2>Departments: working days to respond</h2>{_box_plots(report["departments"])}
{_table(report["departments"], department_columns)}
<h2>Stages</h2>{_table(report["stages"], ["stage", "name", "target_days", "completed", "median_working_days",
                                            "p90_working_days", "on_target_rate"])}
<h2>Cases: working days against the target</h2>{_histogram(report["case_durations"], cases["target_days"])}
<h2>Conflicts between departments</h2>{_table([report["conflicts"]], list(report["conflicts"]))}
<h2>Data sharing</h2>{_table([{k: v for k, v in report["sharing"].items() if k != "refusals"}],
                              [k for k in report["sharing"] if k != "refusals"])}
{_barriers(report["barriers"])}
<h2>The exchange: transit from a sender's commit to the consumer's handler</h2>
<p>{escape(report["exchange"]["note"])}</p>
{_table([{k: v for k, v in report["exchange"].items() if k not in ("by_hop", "note")}],
        ["hops", "transit_p50_ms", "transit_p99_ms"])}
{_table(report["exchange"]["by_hop"], ["sender", "consumer", "events", "transit_p50_ms", "transit_p99_ms"])}
</body></html>
"""
