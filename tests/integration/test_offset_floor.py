"""The router never goes back over what it committed. Should the group coordinator answer committed offsets older
than the router's transactions left (seen once after broker restarts on Kafka 4.1), the router goes on from what
the audit log shows decided: the records in between are not routed a second time. Here the group's offsets are set
back by hand while the gateway is stopped, then it starts again."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from base.settings import ADMIN, Settings
from contracts.bureau import CaseCompleted, CaseOutcome
from contracts.envelope import encode
from deploy.processes import AppProcesses
from gateway.verdicts import verdicts_of
from tests.factories import T0
from tests.tools import Inspector, eventually, http_client, produce

EVENTS = 12


async def _positions(stack: Settings, event_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Where each event entered (partition, offset), once the router decided it."""
    connection = await asyncpg.connect(stack.admin_dsn)
    try:
        found = {event_id: await verdicts_of(connection, "bureau", event_id) for event_id in event_ids}
    finally:
        await connection.close()
    return {event_id: (v[0].partition, v[0].offset) for event_id, v in found.items() if v}


async def _decisions(stack: Settings, partition: int, offset: int) -> int:
    connection = await asyncpg.connect(stack.admin_dsn)
    try:
        return int(await connection.fetchval(
            "SELECT count(*) FROM gateway.audit_log WHERE action IN ('routed', 'rejected')"
            " AND entry -> 'ingress' ->> 'topic' = 'ingress.bureau'"
            " AND (entry -> 'ingress' ->> 'partition')::int = $1 AND (entry -> 'ingress' ->> 'offset')::bigint = $2",
            partition, offset))
    finally:
        await connection.close()


async def test_a_router_whose_group_offsets_went_back_routes_nothing_twice(
        stack: Settings, exchange: AppProcesses) -> None:
    run = uuid.uuid4().hex[:8]
    records = [encode(CaseCompleted(case_id=f"G-FLOOR-{run}-{i}", outcome=CaseOutcome.CLOSED, completed_at=T0),
                      source="/concord/bureau") for i in range(EVENTS)]
    event_ids = [dict(r.headers)["ce_id"].decode() for r in records]
    await produce(stack.kafka("bureau"), "ingress.bureau", *records)

    async def decided() -> bool:
        return len(await _positions(stack, event_ids)) == EVENTS

    await eventually(decided, timeout=60)
    positions = await _positions(stack, event_ids)
    back_to = {("ingress.bureau", p): min(o for q, o in positions.values() if q == p) for p, _ in positions.values()}

    inspector = Inspector(stack.kafka(ADMIN))
    gateway = exchange.processes["gateway"]
    log = gateway.log_path.read_text(errors="replace") if gateway.log_path.exists() else ""
    gateway.stop()
    try:
        async def set_back() -> bool:  # accepted once the stopped router has left the group
            try:
                await inspector.set_committed(stack.router_group, back_to)
            except Exception:
                return False
            return True

        await eventually(set_back, timeout=60)
        assert await inspector.committed(stack.router_group, list(back_to)) == back_to
    finally:
        gateway.restart()

    async def ready() -> bool:  # (not exchange.wait_ready: it fails on processes other tests left dead in it)
        try:
            async with http_client() as http:
                return (await http.get(exchange.health_url(stack.gateway_port, "readyz"))).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(ready, timeout=90)

    marker = encode(CaseCompleted(case_id=f"G-FLOOR-{run}-marker", outcome=CaseOutcome.CLOSED, completed_at=T0),
                    source="/concord/bureau")
    marker_id = dict(marker.headers)["ce_id"].decode()
    await produce(stack.kafka("bureau"), "ingress.bureau", marker)

    async def marker_decided() -> bool:
        return bool(await _positions(stack, [marker_id]))

    await eventually(marker_decided, timeout=90)
    partitions = {*back_to, ("ingress.bureau", (await _positions(stack, [marker_id]))[marker_id][0])}

    async def caught_up() -> bool:  # the router has taken every record of these partitions
        return await inspector.caught_up(stack.router_group, partitions)

    await eventually(caught_up, timeout=60)
    for partition, offset in positions.values():
        assert await _decisions(stack, partition, offset) == 1, f"ingress.bureau/{partition}@{offset} decided twice"
    said = gateway.log_path.read_text(errors="replace")[len(log):]
    assert all(f"ingress.bureau/{p} was answered as {o}" in said for (_, p), o in back_to.items()), said[-3000:]
