"""What the exchange measures and logs, without I/O: the router's count of a committed batch, the Grafana
dashboard against the metrics in code, and the JSON log lines."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY

from base.logs import JsonLines
from contracts.base import Event
from contracts.envelope import encode
from contracts.topics import TOPICS
from gateway import metrics, routing
from gateway.registry import Registry
from gateway.rejections import Reason
from gateway.routing import IngressRecord, NoAgreements
from services.kit import metrics as service_metrics
from tests.factories import T0, case_submitted, opinion_issued

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "concord.json"
LAG = "concord_consumer_lag"  # the lag gauge of gateway/monitor.py (the operator console's part of issue 11)
CATALOGUE = Registry.from_catalogue()


def ingress(event: Event, sender: str, offset: int) -> IngressRecord:
    record = encode(event, source=f"/concord/{sender}")
    return IngressRecord(f"ingress.{sender}", 0, offset, record.key, record.value, record.headers, sender)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_committed_batch_is_counted_by_sender_contract_consumer_and_reason() -> None:
    records = [ingress(case_submitted(), "bureau", 1), ingress(opinion_issued(), "planning", 2),
               ingress(case_submitted(), "bureau", 3), ingress(case_submitted(), "planning", 4)]
    results = [(record, routing.route(record, CATALOGUE, NoAgreements(), T0, 1024 * 1024, TOPICS))
               for record in records]
    case, opinion, _, refused = (routed for _, routed in results)
    assert case.contract == "bureau.case-submitted" and case.consumers and opinion.consumers == ("bureau",)
    assert refused.rejection is not None and refused.rejection.reason is Reason.PRODUCER_NOT_AUTHORISED
    delivered = {consumer: sample("concord_delivered_total", consumer=consumer, contract="bureau.case-submitted")
                 for consumer in case.consumers}
    before = [sample("concord_routed_total", sender="bureau", contract="bureau.case-submitted"),
              sample("concord_routed_total", sender="planning", contract="bureau.opinion-issued"),
              sample("concord_rejected_total", sender="planning", reason="producer_not_authorised"),
              sample("concord_router_batch_seconds_count"), sample("concord_router_batch_seconds_bucket", le="0.025")]

    metrics.count_committed(results, 0.02)

    after = [sample("concord_routed_total", sender="bureau", contract="bureau.case-submitted"),
             sample("concord_routed_total", sender="planning", contract="bureau.opinion-issued"),
             sample("concord_rejected_total", sender="planning", reason="producer_not_authorised"),
             sample("concord_router_batch_seconds_count"), sample("concord_router_batch_seconds_bucket", le="0.025")]
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 1, 1, 1]
    for consumer, count in delivered.items():  # one delivery per consumer per event routed
        assert sample("concord_delivered_total", consumer=consumer, contract="bureau.case-submitted") == count + 2


def known_metrics() -> set[str]:
    """Every series name the process's registry can expose (a counter's ``_total``, a histogram's ``_bucket``…)."""
    assert metrics.ROUTED and service_metrics.HANDLED  # both modules' metrics are registered
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    return {family.name + suffix for family in REGISTRY.collect() for suffix in suffixes.get(family.type, ("",))}


def test_the_grafana_dashboard_asks_only_for_metrics_the_exchange_has() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    [variable] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels) and all("gridPos" in p for p in panels)
    known = known_metrics()
    named: set[str] = set()
    for panel in panels:
        assert panel["datasource"]["uid"] == f"${{{variable['name']}}}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == f"${{{variable['name']}}}"
            names = set(re.findall(r"\bconcord_[a-z_]+\b", target["expr"]))
            assert names, target["expr"]
            assert names <= known | {LAG}, (panel["title"], names - known)
            named |= names
    assert {"concord_routed_total", "concord_delivered_total", "concord_rejected_total",
            "concord_router_batch_seconds_bucket", "concord_handled_total", LAG} <= named


def log_line(formatter: logging.Formatter, message: str, *args: object, error: bool = False) -> dict[str, object]:
    exc_info = None
    if error:
        try:
            raise ValueError("broken")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("concord.router", logging.WARNING, __file__, 1, message, args, exc_info)
    line = formatter.format(record)
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_json_logs_are_one_object_a_line_with_the_current_span() -> None:
    formatter = JsonLines()
    plain = log_line(formatter, "routed %d events for %s", 3, "规划局")
    assert plain.keys() == {"time", "level", "logger", "message"}
    assert plain["message"] == "routed 3 events for 规划局" and plain["level"] == "WARNING"
    assert plain["logger"] == "concord.router" and str(plain["time"]).endswith("+00:00")
    failed = log_line(formatter, "could not route", error=True)
    assert "ValueError: broken" in str(failed["exc_info"])
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("route") as span:
        traced = log_line(formatter, "inside a span")
    context = span.get_span_context()
    assert traced["trace_id"] == f"{context.trace_id:032x}" and traced["span_id"] == f"{context.span_id:016x}"
