"""The router's own Python work for one event, with no I/O at all: the benchmark's events (``bench.measure.opinion``,
sent as planning) taken as the router takes them (``gateway.router.Router._route_batch``: the ingress record, the
id's content digest, ``gateway.routing.route``: checks, projection, shared + deliver + audit records), in a loop on
one core. What one router process could route a second if reading and writing Kafka cost nothing: the most its
throughput could be against the raw pipe, whatever its Kafka client."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bench.measure import opinion
from contracts.envelope import attribute, encode
from contracts.topics import Topics
from gateway.enforcement import Seen, content_digest
from gateway.registry import Registry
from gateway.routing import IngressRecord, NoAgreements, route

SENDER = "planning"


def routing_us_per_event(events: int, topics: Topics, max_payload_bytes: int, mask_key: bytes | None) -> float:
    """Microseconds of one core for one event, over ``events`` routed one after another (agreements play no part
    here: the benchmark's contract goes to its declared consumer)."""
    registry, policy, now = Registry.from_catalogue(), NoAgreements(), datetime.now(UTC)
    topic = topics.ingress(SENDER)
    encoded = [encode(opinion(i, topics.namespace), source="/concord/planning") for i in range(events)]
    routed = 0
    started = time.perf_counter()
    for offset, event in enumerate(encoded):
        record = IngressRecord(topic, 0, offset, event.key, event.value, list(event.headers), SENDER, 0)
        # what the router makes of each record for the duplicate-id lookup, made and dropped: its cost counts
        Seen(record.sender, attribute(record.headers, "ce_id") or "", record.position,
             content_digest(record.key, record.value, record.headers))
        if route(record, registry, policy, now, max_payload_bytes, topics, mask_key).rejection is None:
            routed += 1
    elapsed = time.perf_counter() - started
    if routed != events:  # a refusal is cheaper than a route: the figure would flatter the router
        raise RuntimeError(f"only {routed} of {events} benchmark events were routed")
    return round(elapsed / events * 1e6, 1)
