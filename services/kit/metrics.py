"""What a department's service measures, in Prometheus terms: the events it handled and those it parked, by
department and event type (the contract id), counted once the transaction that handled or parked them has
committed. A process of several departments' services exposes them all at its API's ``/metrics``."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import Counter

HANDLED = Counter("concord_handled_total", "Events a department's service handled, by department and event type",
                  ["department", "type"])
PARKED = Counter("concord_parked_total", "Events a department's service parked after its handler kept failing, by "
                 "department and event type", ["department", "type"])


def count_committed(department: str, handled: Tally[str], parked: Tally[str]) -> None:
    """Count what one transaction of a department's service handled and parked, by event type."""
    for kind, n in handled.items():
        HANDLED.labels(department, kind).inc(n)
    for kind, n in parked.items():
        PARKED.labels(department, kind).inc(n)
