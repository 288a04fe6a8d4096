"""Health that says the truth: a router that has records to route and commits nothing (here, because every batch
fails to be routed) fails its liveness check, which its supervisor reads on /healthz."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from base.clock import AcceleratedClock
from base.health import Health
from base.settings import Settings
from contracts.departments import GATEWAY
from contracts.envelope import encode
from gateway.enforcement import Enforcement
from gateway.router import Router
from tests.factories import case_submitted
from tests.tools import eventually, namespaced_exchange, produce


async def test_a_router_that_commits_nothing_while_records_wait_fails_its_liveness_check(
        stack: Settings, clock: AcceleratedClock) -> None:
    run = uuid.uuid4().hex[:8]
    async with namespaced_exchange(stack, "stall") as topics:
        settings = stack.model_copy(update={"topic_namespace": topics.namespace, "router_stall_seconds": 2.0,
                                            "router_group": f"{stack.router_group}.stall-{run}"})
        pool = await asyncpg.create_pool(settings.dsn(GATEWAY), min_size=1, max_size=2)
        enforcement = await Enforcement.connect(pool, settings.dsn(GATEWAY))

        async def unreachable() -> bool:
            raise ConnectionError("the database does not answer")

        enforcement.refresh = unreachable  # type: ignore[method-assign]  # every batch fails before it is routed
        router = Router(settings, enforcement, clock, f"stall-{run}")
        health = Health()
        health.alive("router", router.stalled)
        stop = asyncio.Event()
        running = asyncio.create_task(router.run(stop))
        try:
            async def joined() -> bool:
                return await router.joined() is None

            await eventually(joined, timeout=60)
            assert await health.problems("alive") == {}
            record = encode(case_submitted("C-STALL-1"), source="/concord/bureau")
            await produce(settings.kafka(GATEWAY), topics.ingress("bureau"), record)

            async def failing() -> bool:
                return "router" in await health.problems("alive")

            await eventually(failing, timeout=60)
            problem = (await health.problems("alive"))["router"]
            assert f"stall-{run}" in problem and "committed nothing" in problem
        finally:
            stop.set()
            await running
            await enforcement.close()
            await pool.close()
