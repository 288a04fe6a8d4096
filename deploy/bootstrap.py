"""How each of the exchange's processes is put together: the composition root. Settings and a clock come in;
every pool, client, store and service is made here and handed to what uses it; nothing below reads the
environment or a global. Three processes: the gateway, the bureau, and departments' services."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import asyncpg
import uvicorn
from aiokafka import AIOKafkaProducer

from base.calendar import WorkingDayCalendar
from base.clock import Clock
from base.db import component_pool
from base.health import Health, serve_health
from base.http import GatewayIdentity
from base.outbox import Outbox
from base.settings import REPORTER, Settings
from base.stopping import waiting_in, within
from contracts.departments import BUREAU, COORDINATION, EXCHANGE, GATEWAY
from deploy.console.app import create_console
from deploy.console.views import Sources
from deploy.stack import port_open
from gateway.agreements import AgreementStore
from gateway.api import GatewayState, create_api
from gateway.audit import AnchorLog, AuditKeeper
from gateway.audit.anchor import verifying_key
from gateway.case_watch import watch_cases
from gateway.credentials import CredentialStore
from gateway.enforcement import Enforcement
from gateway.housekeeping import keep_house
from gateway.inspection import Inspector
from gateway.metrics import BATCH_SECONDS
from gateway.monitor import BatchLatency, FlowWatch, LagWatch
from gateway.notices import Notices
from gateway.registry import RegistryStore
from gateway.router import Router
from gateway.verdicts import Verdicts
from services.bureau.api import create_api as bureau_api
from services.bureau.catalogue import load_catalogue
from services.bureau.service import Bureau
from services.departments import REVIEWERS
from services.departments.api import create_api as desks_api
from services.departments.coordination import ARBITER
from services.departments.desk import CoordinationDesk, Desk, ReviewingDesk
from services.kit.service import DepartmentService

log = logging.getLogger("concord.process")
DEPARTMENT_SERVICES: tuple[str, ...] = (*REVIEWERS, COORDINATION)


class ComponentFailed(RuntimeError):
    """A part of the process stopped on an error: the process exits non-zero so that its supervisor restarts it."""


# A stopping process has this long for its parts to end and as long again to close its clients and pools: both
# together well inside the 20 s its supervisor waits before it kills it (deploy/processes.py: AppProcess.stop).
STOP_GRACE_SECONDS = 8.0
Closers = dict[str, Callable[[], Awaitable[object]]]  # what a process closes as it stops, by name, in order


async def run_parts(name: str, parts: dict[str, Coroutine[Any, Any, None]], stop: asyncio.Event,
                    grace: float = STOP_GRACE_SECONDS) -> None:
    """Run a process's parts until ``stop`` is set or one of them ends; a part that failed makes the process
    fail (after every part has stopped). A part still running ``grace`` seconds after the stop is cancelled, and
    the log names it."""
    tasks = [asyncio.create_task(coroutine, name=part) for part, coroutine in parts.items()]
    waiting = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, waiting], return_when=asyncio.FIRST_COMPLETED)
    failed = [t.get_name() for t in done if t in tasks and not t.cancelled() and t.exception() is not None]
    for task in done:
        if task.get_name() in failed:
            log.error("%s part %s failed", name, task.get_name(), exc_info=task.exception())
    stop.set()
    _, late = await asyncio.wait(tasks, timeout=grace)
    for task in late:
        log.warning("%s part %s had not stopped %g s after the stop: cancelled; it was waiting in %s", name,
                    task.get_name(), grace, waiting_in(task))
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    waiting.cancel()
    if failed:
        raise ComponentFailed(f"{name} parts failed: {', '.join(failed)}")


async def close_all(name: str, closers: Closers, budget: float = STOP_GRACE_SECONDS) -> None:
    """Close a stopping process's clients and pools in order, within ``budget`` seconds in all: one that takes
    longer (a pool waiting for a connection still in use, a client for a broker that does not answer) is left to
    the process's exit, which closes its sockets, and the log names it and where it waited; the others are still
    closed."""
    deadline = asyncio.get_running_loop().time() + budget
    for what, close in closers.items():
        try:
            await within(close(), max(deadline - asyncio.get_running_loop().time(), 0.5), f"{name}: closing its {what}",
                         log)
        except Exception:  # one failing close does not keep the others open
            log.exception("%s: closing its %s failed", name, what)


def leave_start_up_out_of_collections() -> None:
    """What a process allocated to start (modules, compiled validators, registries, pools, clients) lives as long
    as it does: collected once, then frozen out of every later collection, so that a full collection goes only
    through what the process has gathered since. Every lane of a process stands still while its collector runs:
    under a 200-case demo a full collection took the bureau's process 66 ms at the median (133 at the most), the
    departments' 87 (95), and that was the wait of each event it held then."""
    gc.collect()
    gc.freeze()


DEPENDENCY_POLL_SECONDS = 1.0


async def dependencies_answer(settings: Settings, principal: str, stop: asyncio.Event) -> bool:
    """Wait until the broker listens and PostgreSQL lets ``principal`` in (said once in the log while either does
    not); False if the process is stopped meanwhile. A process started while either is down (restarting, say) goes
    on as soon as it is back, instead of exiting at once and waiting out its supervisor's growing backoff. Only
    absence is waited for: a broker or database that is there but refuses the principal lets the start go on, to
    fail with the reason."""
    waiting: list[str] = []
    while not stop.is_set():
        missing = [what for what, answered in (("Kafka", await broker_listens(settings.kafka(principal).bootstrap)),
                                               ("PostgreSQL", await database_answers(settings.dsn(principal))))
                   if not answered]
        if not missing:
            if waiting:
                log.info("%s: %s answers again; starting", principal, " and ".join(waiting))
            return True
        if missing != waiting:
            log.warning("%s: waiting for %s to answer", principal, " and ".join(missing))
            waiting = missing
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), DEPENDENCY_POLL_SECONDS)
    return False


async def broker_listens(bootstrap: str) -> bool:
    """Whether one of the broker's bootstrap addresses takes a connection (whom it lets in is the start's to find)."""
    addresses = [address.strip().rpartition(":") for address in bootstrap.split(",")]
    return await asyncio.to_thread(lambda: any(port.isdigit() and port_open(int(port), host.strip("[]"))
                                               for host, _, port in addresses))


async def database_answers(dsn: str) -> bool:
    """Whether PostgreSQL is there to be connected to: not when nothing listens or it is starting or stopping (a
    refusal of the role or its password is an answer)."""
    try:
        connection = await asyncpg.connect(dsn, timeout=3)
    except (OSError, TimeoutError, asyncpg.CannotConnectNowError):
        return False
    except asyncpg.PostgresError:
        return True
    await connection.close()
    return True


async def serve(app: object, host: str, port: int, stop: asyncio.Event) -> None:
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))  # type: ignore[arg-type]
    serving = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await serving


async def until(stop: asyncio.Event, work: Awaitable[None]) -> None:
    """A part that runs until it is cancelled (an outbox relay), stopped with the process."""
    task = asyncio.ensure_future(work)
    await stop.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def gateway(settings: Settings, clock: Clock, stop: asyncio.Event, instance: str | None = None,
                  serve_api: bool = True, route: bool = True, keep_audit: bool | None = None,
                  health_port: int | None = None) -> None:
    """The gateway's parts, as chosen: a router instance (``route``); the HTTP API with the console, the agreement
    watch and the relay of the exchange's own notices (``serve_api``); the audit keeper (``keep_audit``, by default
    where the API is). Several gateway processes share the routing as one consumer group; the other parts are safe
    to run in several at once. A process without the API answers its health probes on ``health_port``."""
    if not await dependencies_answer(settings, GATEWAY, stop):
        return
    closing: Closers = {}  # each client and pool as it is made: closed last made first, also after a failed start
    try:
        await _gateway(settings, clock, stop, closing, instance, serve_api, route,
                       serve_api if keep_audit is None else keep_audit, health_port)
    finally:
        await close_all("gateway", dict(reversed(closing.items())))


async def _gateway(settings: Settings, clock: Clock, stop: asyncio.Event, closing: Closers, instance: str | None,
                   serve_api: bool, route: bool, keep_audit: bool, health_port: int | None) -> None:
    dsn = settings.dsn(GATEWAY)
    kafka = settings.kafka(GATEWAY)
    pool = await component_pool(dsn, min_size=2, max_size=10)
    closing["pool"] = pool.close
    producer = AIOKafkaProducer(**kafka.aiokafka(), enable_idempotence=True, linger_ms=2,
                                max_request_size=8 * 1024 * 1024)
    closing["producer"] = producer.stop  # also when its start fails: it has connections to let go of
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
    closing["enforcement"] = enforcement.close
    leave_start_up_out_of_collections()
    gc.set_threshold(200_000, 50, 100)  # routing allocates many short-lived objects and no cycles worth chasing
    parts: dict[str, Coroutine[Any, Any, None]] = {}
    health = Health()
    verdicts = Verdicts(pool, dsn)
    closing["verdicts"] = verdicts.close
    if serve_api:
        await verdicts.start()
        agreements = AgreementStore(pool, notices, WorkingDayCalendar())
        flows, lags = FlowWatch(pool), LagWatch(kafka, topics, settings.router_group)
        inspector = Inspector(kafka)
        closing["inspector"] = inspector.close
        state = GatewayState(settings, kafka, pool, producer, registry, agreements, enforcement,
                             CredentialStore(pool), clock, verdicts, flows, lags, inspector)
        api = create_api(state)
        health = api.health
        reporter = await component_pool(settings.dsn(REPORTER), min_size=1, max_size=4)
        closing["reporter pool"] = reporter.close
        anchors = AnchorLog(kafka, topics.audit_anchor, verifying_key(settings.secrets.anchor_public_file))
        sources = Sources(pool, reporter, enforcement, agreements, flows, lags, clock, load_catalogue(),
                          inspector.read_at, BatchLatency(BATCH_SECONDS), anchors)
        api.mount("/console", create_console(sources, state.credentials.principal_of))
        parts |= {
            "api": serve(api, settings.gateway_host, settings.gateway_port, stop),
            "flow-watch": flows.run(stop),
            "lag-watch": lags.run(stop),
            "outbox": until(stop, notices.outbox.run()),
            "anchor-watch": anchors.run(stop),
            "agreement-watch": keep_house(agreements, enforcement, stop),
            "case-watch": watch_cases(kafka, topics, agreements, stop),
        }
    elif health_port is not None:
        parts["health"] = serve_health(health, settings.gateway_host, health_port, stop)
    health.ready("database", answers(pool))
    if route:
        router = Router(settings, enforcement, clock, instance)
        health.alive("router", router.stalled)
        health.ready("router", router.joined)
        parts["router"] = router.run(stop)
    if keep_audit:
        keeper = AuditKeeper(settings, clock=clock)
        health.alive("audit-keeper", keeper.stalled)
        parts["audit-keeper"] = keeper.run(stop)
    await run_parts("gateway", parts, stop)


def answers(pool: asyncpg.Pool) -> Callable[[], Awaitable[str | None]]:
    """A readiness check: the database answers on the process's pool."""

    async def check() -> str | None:
        await pool.fetchval("SELECT 1")
        return None

    return check


async def bureau(settings: Settings, clock: Clock, stop: asyncio.Event) -> None:
    """The bureau's service, its deadline watch and its case API."""
    if not await dependencies_answer(settings, BUREAU, stop):
        return
    service = Bureau(settings, clock)
    identity = GatewayIdentity(settings.gateway_address)
    closing: Closers = {"identity client": identity.close}
    try:
        await service.service.start()
        closing["service"] = service.service.stop
        api = bureau_api(service, identity, settings.http_max_body_bytes)
        api.health.ready("bureau", service.service.ready)
        leave_start_up_out_of_collections()
        await run_parts("bureau", {"api": serve(api, settings.bureau_host, settings.bureau_port, stop),
                                   "deadline-watch": service.watch(stop)}, stop)
    finally:
        await close_all("bureau", dict(reversed(closing.items())))


def desk_of(code: str, settings: Settings, clock: Clock) -> Desk:
    """A department's desk: the coordination office's, or a reviewing department's."""
    return CoordinationDesk(ARBITER, settings, clock) if code == COORDINATION \
        else ReviewingDesk(REVIEWERS[code], settings, clock)


def department_service(code: str, settings: Settings, clock: Clock) -> DepartmentService:
    """A department's service as its process composes it, every handler declared, not started: for a command that
    runs one of its handlers (``concord inbox replay``)."""
    if code == BUREAU:
        return Bureau(settings, clock).service
    if code not in DEPARTMENT_SERVICES:
        raise ValueError(f"no service for {code!r}; known: {[BUREAU, *DEPARTMENT_SERVICES]}")
    return desk_of(code, settings, clock).service


async def departments(settings: Settings, clock: Clock, codes: list[str], stop: asyncio.Event) -> None:
    """Several departments' services in one process (each its own consumer group, schema and principal), with
    one API for their desks."""
    if not await dependencies_answer(settings, codes[0], stop):
        return
    desks = {code: desk_of(code, settings, clock) for code in codes}
    identity = GatewayIdentity(settings.gateway_address)
    closing: Closers = {"identity client": identity.close}
    try:
        for code, desk in desks.items():
            await desk.service.start()
            closing[f"{code} service"] = desk.service.stop
        api = desks_api(desks, identity, settings.http_max_body_bytes)
        for code, desk in desks.items():
            api.health.ready(code, desk.service.ready)
        leave_start_up_out_of_collections()
        parts = {"api": serve(api, settings.departments_host, settings.departments_port, stop)}
        parts |= {f"{code}-desk": desk.work(stop) for code, desk in desks.items()}
        await run_parts("departments", parts, stop)
    finally:
        await close_all("departments", dict(reversed(closing.items())))
