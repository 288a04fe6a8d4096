"""Metrics, traces and logs on the real stack: the gateway's /metrics counts what its router routed, delivered and
refused; the bureau's and the desks' /metrics answer the operator only, and the desks count what their services
handled; with OTEL_EXPORTER_OTLP_ENDPOINT set, an event sent over HTTP with a traceparent leaves spans of its
ingest, its routing and its handling in that trace, and JSON logs carry the trace id."""

from __future__ import annotations

import gzip
import json
import os
import random
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

from base.settings import ADMIN, Settings
from contracts.departments import OPERATOR
from deploy.processes import AppProcesses
from services.bureau.samples import application
from tests.factories import case_submitted, opinion_issued
from tests.integration.test_ingest_and_rejections import structured
from tests.tools import Tail, bearer, eventually, header, http_client


def urls(stack: Settings) -> dict[str, str]:
    return {"gateway": stack.gateway_address, "bureau": f"http://{stack.bureau_host}:{stack.bureau_port}",
            "desks": f"http://{stack.departments_host}:{stack.departments_port}"}


async def scrape(url: str, token: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a process's /metrics: (name, labels) -> value."""
    async with http_client(base_url=url, timeout=30) as http:
        response = await http.get("/metrics", headers=bearer(token))
    assert response.status_code == 200, response.text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_the_gateway_counts_what_its_router_routed_delivered_and_refused(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    gateway, operator = stack.gateway_address, tokens[OPERATOR]
    contract = "bureau.opinion-issued"
    before = await scrape(gateway, operator)
    async with http_client(base_url=gateway, timeout=30) as http:
        for _ in range(3):
            body = structured(opinion_issued(f"G-METRICS-{uuid.uuid4().hex[:8]}"))
            routed = await http.post("/v1/events", json=body, headers=bearer(tokens["planning"]))
            assert routed.status_code == 200 and routed.json()["delivered_to"] == ["bureau"], routed.text
        refused = await http.post("/v1/events", json=structured(case_submitted(f"G-METRICS-{uuid.uuid4().hex[:8]}")),
                                  headers=bearer(tokens["planning"]))  # only the bureau submits cases
        assert refused.status_code == 422 and refused.json()["reason"] == "producer_not_authorised", refused.text
    after: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}

    async def counted() -> bool:
        after.update(await scrape(gateway, operator))
        return value(after, "concord_rejected_total", sender="planning", reason="producer_not_authorised") > \
            value(before, "concord_rejected_total", sender="planning", reason="producer_not_authorised")

    await eventually(counted)
    routed_by = {"sender": "planning", "contract": contract}
    delivered_to = {"consumer": "bureau", "contract": contract}
    assert value(after, "concord_routed_total", **routed_by) >= value(before, "concord_routed_total", **routed_by) + 3
    assert value(after, "concord_delivered_total", **delivered_to) >= \
        value(before, "concord_delivered_total", **delivered_to) + 3
    assert value(after, "concord_router_batch_seconds_count") > value(before, "concord_router_batch_seconds_count")
    async with http_client(base_url=gateway, timeout=30) as http:
        assert (await http.get("/metrics", headers=bearer(tokens["planning"]))).status_code == 403
        assert (await http.get("/metrics")).status_code == 401


async def test_the_bureau_and_the_desks_serve_their_metrics_to_the_operator_only(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    for name in ("bureau", "desks"):
        async with http_client(base_url=urls(stack)[name], timeout=30) as http:
            assert (await http.get("/metrics")).status_code == 401, name
            assert (await http.get("/metrics", headers=bearer(tokens["planning"]))).status_code == 403, name
            assert (await http.get("/metrics", headers=bearer(tokens["bureau"]))).status_code == 403, name
            answered = await http.get("/metrics", headers=bearer(tokens[OPERATOR]))
            assert answered.status_code == 200 and "concord_handled_total" in answered.text, name


async def test_the_desks_count_the_events_their_services_handled(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    desks, operator = urls(stack)["desks"], tokens[OPERATOR]

    async def handled() -> float:  # by every department that takes cases up (the market's registry, today)
        return sum(count for (name, labels), count in (await scrape(desks, operator)).items()
                   if name == "concord_handled_total" and ("type", "bureau.case-submitted") in labels)

    before = await handled()
    async with http_client(base_url=urls(stack)["bureau"], timeout=30) as http:
        submitted = await http.post("/v1/cases", content=application(random.Random(1101)).model_dump_json(),
                                    headers={**bearer(tokens["bureau"]), "content-type": "application/json"})
    assert submitted.status_code == 201, submitted.text

    async def counted() -> bool:
        return await handled() > before

    await eventually(counted)


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


class Collector(ThreadingHTTPServer):
    """A tiny OTLP/HTTP receiver: keeps the spans posted to /v1/traces."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.spans: list[Span] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def received(self) -> list[Span]:
        with self.lock:
            return list(self.spans)


class _Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        spans = []
        for resource in request.resource_spans:
            service = next((a.value.string_value for a in resource.resource.attributes if a.key == "service.name"), "")
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: a.value.string_value or [v.string_value for v in a.value.array_value.values]
                                  for a in span.attributes}
                    spans.append(Span(service, span.name, span.trace_id.hex(), span.span_id.hex(),
                                      span.parent_span_id.hex(), attributes))
        with self.server.lock:
            self.server.spans += spans
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def traced(apps: AppProcesses, env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The session's gateway and bureau, restarted with ``env`` for the test (as the same router instance and
    consumer groups, so nothing else routes or handles meanwhile), then again as they were. Yields each one's log.
    Both are waited for in an ``AppProcesses`` of their own: the session's holds processes other tests stopped."""
    for name in ("bureau", "gateway"):
        apps.processes.pop(name).stop()
    try:
        with AppProcesses(apps.settings, {**apps.env, **env}) as tracing:
            logs = {"gateway": str(tracing.start("gateway-traced", "gateway", "run", "--instance", "main").log_path),
                    "bureau": str(tracing.start("bureau-traced", "service", "run", "bureau").log_path)}
            tracing.wait_ready()
            yield logs
    finally:
        again = AppProcesses(apps.settings, apps.env)
        again.start("gateway", "gateway", "run", "--instance", "main")
        again.start("bureau", "service", "run", "bureau")
        apps.processes |= again.processes  # the session stops them at its end
        again.wait_ready()


async def test_an_event_leaves_spans_of_its_ingest_routing_and_handling_in_the_senders_trace(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    trace_id, sender_span = os.urandom(16).hex(), os.urandom(8).hex()
    refused_trace = os.urandom(16).hex()
    case_id = f"G-TRACE-{uuid.uuid4().hex[:8]}"  # no such case: the bureau handles the opinion and logs a warning
    body = structured(opinion_issued(case_id))
    with collector() as spans, traced(exchange, {"OTEL_EXPORTER_OTLP_ENDPOINT": spans.endpoint,
                                                 "OTEL_BSP_SCHEDULE_DELAY": "100",
                                                 "CONCORD_LOG_FORMAT": "json"}) as logs:
        async with http_client(base_url=stack.gateway_address, timeout=30) as http, \
                Tail(stack.kafka(ADMIN), "deliver.bureau") as bureau:
            sent = await http.post("/v1/events", json=body, headers={
                **bearer(tokens["planning"]), "traceparent": f"00-{trace_id}-{sender_span}-01"})
            assert sent.status_code == 200, sent.text
            [delivered] = await bureau.wait_for(lambda r: r.key == case_id.encode())
            refused = await http.post("/v1/events", json=structured(case_submitted(case_id)), headers={
                **bearer(tokens["planning"]), "traceparent": f"00-{refused_trace}-{os.urandom(8).hex()}-01"})
            assert refused.status_code == 422, refused.text

        def of(trace: str, name: str) -> list[Span]:
            return [s for s in spans.received() if s.trace_id == trace and s.name == name]

        await eventually(lambda: of(trace_id, "ingest") and of(trace_id, "route") and
                         of(trace_id, "handle bureau.opinion-issued") and of(refused_trace, "route"))
        [ingest], [route], [handle] = of(trace_id, "ingest"), of(trace_id, "route"), \
            of(trace_id, "handle bureau.opinion-issued")
        assert (ingest.service, ingest.parent_id) == ("concord-gateway", sender_span)
        assert (route.service, route.parent_id) == ("concord-gateway", ingest.span_id)  # the record's traceparent
        expected = {"messaging.message.id": body["id"], "concord.contract": "bureau.opinion-issued",
                    "concord.sender": "planning", "concord.outcome": "routed", "concord.consumers": ["bureau"]}
        assert {name: route.attributes.get(name) for name in expected} == expected
        assert header(delivered, "traceparent") == f"00-{trace_id}-{ingest.span_id}-01"
        assert (handle.service, handle.parent_id) == ("concord-bureau", ingest.span_id)  # the delivered traceparent
        assert handle.attributes["messaging.message.id"] == body["id"]
        [refusal] = of(refused_trace, "route")
        assert (refusal.attributes["concord.outcome"], refusal.attributes["concord.reason"]) == \
            ("refused", "producer_not_authorised")

        def logged() -> list[dict[str, Any]]:
            with open(logs["bureau"], encoding="utf-8") as log:
                lines = [json.loads(line) for line in log if line.startswith("{")]
            return [line for line in lines if f"unknown case {case_id}" in line["message"]]

        await eventually(logged)
        [warning] = logged()
        assert (warning["level"], warning["logger"]) == ("WARNING", "concord.bureau")
        assert (warning["trace_id"], warning["span_id"]) == (trace_id, handle.span_id)

