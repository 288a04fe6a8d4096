"""What the gateway measures, in Prometheus terms: events routed, deliveries written, refusals and resends, and how long
the router takes over a batch. The router counts a batch once its transaction has committed, so that a batch
rewound and routed again is counted once.

The figures live in the process that routes: each router instance counts its own and exposes them at its API's
``/metrics`` (with the operator's token), and Prometheus adds them up across instances (``sum by (contract)``). An
instance run without its API (``concord gateway run --no-serve``) counts, but has nowhere to expose its figures."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from gateway.routing import IngressRecord, Routed

ROUTED = Counter("concord_routed_total", "Events routed, by sending department and contract", ["sender", "contract"])
DELIVERED = Counter("concord_delivered_total", "Deliveries written (one per consuming department of an event routed), "
                    "by consuming department and contract", ["consumer", "contract"])
REJECTED = Counter("concord_rejected_total", "Events refused, by sending department and reason "
                   "(gateway.rejections.Reason)", ["sender", "reason"])
RESENT = Counter("concord_resent_total", "Copies of events their sender had already sent with the same content (an "
                 "outbox sending again after a crash): audited, not routed again, not refused", ["sender"])
BATCH_SECONDS = Histogram("concord_router_batch_seconds", "How long the router takes over a batch: from taking it up "
                          "to its transaction committed",
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))


def count_committed(batch: Iterable[tuple[IngressRecord, Routed]], seconds: float) -> None:
    """Count a batch whose transaction committed, and how long it took. Tallied per batch first: a label lookup
    per record would cost more than the routing of a small event."""
    routed: Tally[tuple[str, str]] = Tally()
    delivered: Tally[tuple[str, str]] = Tally()
    rejected: Tally[tuple[str, str]] = Tally()
    resent: Tally[str] = Tally()
    for record, outcome in batch:
        if outcome.resend_of is not None:
            resent[record.sender] += 1
        elif outcome.rejection is not None:
            rejected[record.sender, outcome.rejection.reason.value] += 1
        elif outcome.contract is not None:
            routed[record.sender, outcome.contract] += 1
            for consumer in outcome.consumers:
                delivered[consumer, outcome.contract] += 1
    for (sender, contract), n in routed.items():
        ROUTED.labels(sender, contract).inc(n)
    for (consumer, contract), n in delivered.items():
        DELIVERED.labels(consumer, contract).inc(n)
    for (sender, reason), n in rejected.items():
        REJECTED.labels(sender, reason).inc(n)
    for sender, n in resent.items():
        RESENT.labels(sender).inc(n)
    BATCH_SECONDS.observe(seconds)
