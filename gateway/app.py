"""A gateway process: a router instance, and (unless told otherwise) the HTTP API, the audit keeper, the
agreement deadline watch and the relay of the exchange's own notices. Several processes share the routing
as one consumer group; the other parts are safe to run in several at once."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable
from typing import Any

import asyncpg
import uvicorn
from aiokafka import AIOKafkaProducer

from base.settings import Settings
from contracts.departments import EXCHANGE, GATEWAY
from gateway.agreements import AgreementStore
from gateway.api import GatewayState, create_api
from gateway.audit import AuditKeeper
from gateway.credentials import CredentialStore
from gateway.enforcement import Enforcement
from gateway.notices import Notices
from gateway.registry import RegistryStore
from gateway.router import Router
from services.kit.calendar import WorkingDayCalendar
from services.kit.clock import Clock
from services.kit.outbox import Outbox

log = logging.getLogger("concord.gateway")
SWEEP_SECONDS = 0.5


async def run_gateway(settings: Settings, clock: Clock, stop: asyncio.Event, instance: str | None = None,
                      serve: bool = True) -> None:
    dsn = settings.dsn(GATEWAY)
    kafka = settings.kafka(GATEWAY)
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
    producer = AIOKafkaProducer(**kafka.aiokafka(), enable_idempotence=True, linger_ms=2,
                                max_request_size=8 * 1024 * 1024)
    await producer.start()

    async def send(topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]) -> Awaitable[Any]:
        future: Awaitable[Any] = await producer.send(topic, value, key=key, headers=headers)
        return future

    topics = settings.topics
    notices = Notices(Outbox("gateway", topics.audit, f"/concord/{EXCHANGE}", pool, send, clock), topics, clock)
    registry = RegistryStore(pool, notices)
    for problem in await registry.sync_catalogue():
        log.error("contract catalogue: %s", problem)
    enforcement = await Enforcement.connect(pool, dsn)
    router = Router(settings, enforcement, clock, instance)
    # Routing allocates many short-lived objects and no cycles worth chasing: collect rarely, and leave
    # everything allocated at start-up out of the collections.
    gc.freeze()
    gc.set_threshold(200_000, 50, 100)
    tasks = [asyncio.create_task(router.run(stop), name="router")]
    server: uvicorn.Server | None = None
    if serve:
        agreements = AgreementStore(pool, notices, WorkingDayCalendar())
        state = GatewayState(settings, kafka, pool, producer, registry, agreements, enforcement,
                             CredentialStore(pool), clock)
        server = uvicorn.Server(uvicorn.Config(create_api(state), host=settings.gateway_host,
                                               port=settings.gateway_port, log_level="warning", lifespan="off"))
        tasks += [
            asyncio.create_task(server.serve(), name="api"),
            asyncio.create_task(notices.outbox.run(), name="outbox"),
            asyncio.create_task(AuditKeeper(settings).run(stop), name="audit-keeper"),
            asyncio.create_task(_watch(agreements, enforcement, stop), name="agreement-watch"),
        ]
    failed: list[str] = []
    try:
        done, _ = await asyncio.wait([*tasks, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task in tasks and task.exception() is not None:
                log.error("gateway part %s failed", task.get_name(), exc_info=task.exception())
                failed.append(task.get_name())
    finally:
        stop.set()
        if server is not None:
            server.should_exit = True
        for task in tasks:
            if task.get_name() == "outbox":
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await producer.stop()
        await enforcement.close()
        await pool.close()
    if failed:
        raise ComponentFailed(f"gateway parts failed: {', '.join(failed)}")


class ComponentFailed(RuntimeError):
    """A part of the process stopped on an error: the process exits non-zero so that its supervisor restarts it."""


async def _watch(agreements: AgreementStore, enforcement: Enforcement, stop: asyncio.Event) -> None:
    """Reminders and escalations of sharing requests on the (possibly accelerated) clock; old event ids
    forgotten once an hour."""
    forgotten_at = 0.0
    while not stop.is_set():
        try:
            await agreements.sweep()
            if time.monotonic() - forgotten_at > 3600:
                await enforcement.forget_seen_before()
                forgotten_at = time.monotonic()
        except Exception:
            log.exception("agreement watch failed; retrying")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SWEEP_SECONDS)
