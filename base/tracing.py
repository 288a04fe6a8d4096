"""Spans of the exchange's work, over OpenTelemetry, carried from process to process by each event's W3C
``traceparent``: the HTTP ingest of an event, the router's routing of it, and a service's handling of it.

Tracing is on in a process when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set
and ``OTEL_SDK_DISABLED`` is not: spans are then exported over OTLP/HTTP in batches, and the other standard
``OTEL_*`` variables apply (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``,
``OTEL_BSP_SCHEDULE_DELAY``, ``OTEL_EXPORTER_OTLP_HEADERS``, …). Otherwise there is no provider, ``tracer`` answers
None, and the components that would make spans skip every step of it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROPAGATOR = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None


def start_tracing(service: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Export this process's spans over OTLP when the environment asks for it; ``service`` is its name unless
    ``OTEL_SERVICE_NAME`` (or ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``) gives another. True if on."""
    global _provider
    if not any(environ.get(name) for name in ENDPOINTS) or environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service}))
    _provider = TracerProvider(resource=resource)
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(_provider)
    return True


def stop_tracing() -> None:
    """Export the spans still waiting, and stop (a process's last step)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def tracer(name: str) -> trace.Tracer | None:
    """A component's tracer, or None when tracing is off: a component asks once, when it is made."""
    return _provider.get_tracer(name) if _provider is not None else None


def parent(traceparent: str | bytes | None) -> Context:
    """The context a span continues: the trace a W3C ``traceparent`` names (a new trace when there is none, or
    when it is not one)."""
    if isinstance(traceparent, bytes):
        traceparent = traceparent.decode("ascii", "replace")
    return PROPAGATOR.extract({"traceparent": traceparent}) if traceparent else Context()


def traceparent_of(span: trace.Span) -> str:
    """The W3C ``traceparent`` that makes what an event causes a child of ``span``."""
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
