"""The gateway's HTTP API: the contract registry, sharing agreements, HTTP ingest of events, the audit log.
OpenAPI docs at /docs. Departments authenticate with their bearer token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app
from pydantic import BaseModel, Field

from contracts.compatibility import Mode
from deploy.settings import Settings
from gateway import audit
from gateway.agreements import AgreementRefused, AgreementRequest, AgreementStore
from gateway.backfill import backfill
from gateway.enforcement import Enforcement
from gateway.identity import department_of
from gateway.ingest import from_structured
from gateway.registry import RegistrationRefused, RegistryStore
from gateway.routing import IngressRecord, route
from gateway.topics import KEEP, TopicSpec, ensure_topics
from services.kit.clock import Clock


@dataclass
class GatewayState:
    settings: Settings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    registry: RegistryStore
    agreements: AgreementStore
    enforcement: Enforcement
    clock: Clock


class NewVersion(BaseModel):
    schema_: dict[str, Any] = Field(alias="schema", description="the JSON Schema, with x-sharing and x-contract")


class CompatibilityConfig(BaseModel):
    compatibility: Mode


class Reasons(BaseModel):
    reasons: str = Field(min_length=1)


async def caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """The department calling: from its bearer token, never from the request body."""
    state: GatewayState = request.app.state.gateway
    scheme, _, token = (authorization or "").partition(" ")
    department = await department_of(state.pool, token) if scheme.lower() == "bearer" and token else None
    if department is None:
        raise HTTPException(401, "a valid department bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    return department


Caller = Annotated[str, Depends(caller)]


def create_api(state: GatewayState) -> FastAPI:
    api = FastAPI(
        title="Concord gateway", version="1",
        description="Contract registry, sharing agreements, HTTP ingest and audit of the Concord exchange.",
    )
    api.state.gateway = state
    api.mount("/metrics", make_asgi_app())

    @api.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    # --- the registry -------------------------------------------------------------------------------
    @api.get("/v1/contracts")
    async def contracts() -> list[dict[str, Any]]:
        return await state.registry.contracts()

    @api.get("/v1/contracts/{contract_id}/versions")
    async def versions(contract_id: str) -> list[int]:
        found = await state.registry.versions(contract_id)
        if not found:
            raise HTTPException(404, f"no contract {contract_id}")
        return found

    @api.get("/v1/contracts/{contract_id}/versions/{version}/schema")
    async def schema(contract_id: str, version: int) -> dict[str, Any]:
        found = await state.registry.schema(contract_id, version)
        if found is None:
            raise HTTPException(404, f"no version {version} of {contract_id}")
        return found

    @api.post("/v1/contracts/{contract_id}/versions", status_code=201)
    async def register(contract_id: str, body: NewVersion, department: Caller) -> JSONResponse:
        if contract_id.partition(".")[0] == department:  # the record of a new contract needs its topic first
            shared = TopicSpec(state.settings.topics.shared(contract_id), 3, KEEP)
            await ensure_topics(state.settings.bootstrap, [shared])
        try:
            registered = await state.registry.register(contract_id, body.schema_, by=department)
        except RegistrationRefused as refused:
            status = 409 if refused.incompatible else (403 if "only" in refused.problems[0] else 422)
            key = "incompatibilities" if refused.incompatible else "problems"
            return JSONResponse({"detail": str(refused), key: refused.problems}, status_code=status)
        return JSONResponse({"id": contract_id, "version": registered.version, "created": registered.created},
                            status_code=201 if registered.created else 200)

    @api.get("/v1/contracts/{contract_id}/config")
    async def get_config(contract_id: str) -> CompatibilityConfig:
        mode = await state.registry.mode(contract_id)
        if mode is None:
            raise HTTPException(404, f"no contract {contract_id}")
        return CompatibilityConfig(compatibility=mode)

    @api.put("/v1/contracts/{contract_id}/config")
    async def set_config(contract_id: str, body: CompatibilityConfig, department: Caller) -> CompatibilityConfig:
        try:
            await state.registry.set_mode(contract_id, body.compatibility, by=department)
        except RegistrationRefused as refused:
            raise HTTPException(403, str(refused)) from refused
        except KeyError as missing:
            raise HTTPException(404, f"no contract {contract_id}") from missing
        return body

    # --- events over HTTP ---------------------------------------------------------------------------
    @api.post("/v1/events", status_code=202)
    async def ingest(request: Request, department: Caller,
                     traceparent: Annotated[str | None, Header()] = None) -> JSONResponse:
        """A structured CloudEvent (JSON). It lands on the caller's ingress topic, where the router checks
        it like any event; the answer already says whether it passes those checks."""
        body = await request.body()
        if len(body) > state.settings.max_payload_bytes * 4:
            raise HTTPException(413, f"body of {len(body)} bytes is far over the limit; not forwarded")
        ingested = from_structured(body, traceparent)
        topic = state.settings.topics.ingress(department)
        sent = await state.producer.send_and_wait(topic, ingested.record.value, key=ingested.record.key,
                                                  headers=ingested.record.headers)
        await state.enforcement.refresh()
        preview = route(
            IngressRecord(topic, sent.partition, sent.offset, ingested.record.key, ingested.record.value,
                          ingested.record.headers, department),
            state.enforcement.registry, state.enforcement.sharing, state.clock.now(),
            state.settings.max_payload_bytes, state.settings.topics,
        )
        where = {"topic": topic, "partition": sent.partition, "offset": sent.offset}
        if preview.rejection is not None:
            return JSONResponse({"event_id": ingested.event_id, "accepted": False,
                                 "reason": preview.rejection.reason.value, "detail": preview.rejection.detail,
                                 "deadletter": state.settings.topics.deadletter(department), **where},
                                status_code=422)
        return JSONResponse({"event_id": ingested.event_id, "accepted": True, **where}, status_code=202)

    @api.get("/v1/rejections")
    async def rejections(department: Caller, since: datetime | None = None) -> list[dict[str, Any]]:
        """What the exchange refused from the caller, and why."""
        async with state.pool.acquire() as connection:
            entries = await audit.query(connection, department=department, since=since)
        return [e for e in entries if e.get("action") == "rejected" and e.get("sender") == department]

    # --- sharing agreements -------------------------------------------------------------------------
    @api.post("/v1/agreements", status_code=201)
    async def request_agreement(body: AgreementRequest, department: Caller) -> dict[str, Any]:
        await state.enforcement.refresh()
        contract = state.enforcement.registry.latest(body.contract)
        if contract is None:
            raise HTTPException(404, f"no contract {body.contract}")
        try:
            agreement = await state.agreements.request(department, body, contract)
        except AgreementRefused as refused:
            raise HTTPException(422, str(refused)) from refused
        return agreement.view(state.clock.now())

    @api.get("/v1/agreements")
    async def list_agreements(department: str | None = None) -> list[dict[str, Any]]:
        now = state.clock.now()
        return [a.view(now) for a in await state.agreements.list(department)]

    @api.get("/v1/agreements/{agreement_id}")
    async def get_agreement(agreement_id: str) -> dict[str, Any]:
        agreement = await state.agreements.get(agreement_id)
        if agreement is None:
            raise HTTPException(404, f"no agreement {agreement_id}")
        return agreement.view(state.clock.now())

    async def decided(action: Any) -> dict[str, Any]:
        try:
            agreement = await action
        except AgreementRefused as refused:
            raise HTTPException(409, str(refused)) from refused
        except KeyError as missing:
            raise HTTPException(404, f"no agreement {missing}") from missing
        return agreement.view(state.clock.now())  # type: ignore[no-any-return]

    @api.post("/v1/agreements/{agreement_id}/approve")
    async def approve(agreement_id: str, department: Caller) -> dict[str, Any]:
        return await decided(state.agreements.approve(agreement_id, department))

    @api.post("/v1/agreements/{agreement_id}/reject")
    async def reject(agreement_id: str, body: Reasons, department: Caller) -> dict[str, Any]:
        return await decided(state.agreements.reject(agreement_id, department, body.reasons))

    @api.post("/v1/agreements/{agreement_id}/revoke")
    async def revoke(agreement_id: str, body: Reasons, department: Caller) -> dict[str, Any]:
        return await decided(state.agreements.revoke(agreement_id, department, body.reasons))

    @api.post("/v1/agreements/{agreement_id}/backfill")
    async def replay(agreement_id: str, department: Caller) -> dict[str, Any]:
        """Replay the history the consumer may now see into its deliver topic."""
        agreement = await state.agreements.get(agreement_id)
        if agreement is None:
            raise HTTPException(404, f"no agreement {agreement_id}")
        if department != agreement.consumer:
            raise HTTPException(403, f"only {agreement.consumer} may ask for a backfill of {agreement_id}")
        now = state.clock.now()
        if not agreement.in_force(now):
            raise HTTPException(409, f"{agreement_id} is not in force")
        await state.enforcement.refresh()
        count = await backfill(state.settings.bootstrap, state.settings.topics, state.enforcement.registry,
                               agreement, now, state.producer)
        async with state.pool.acquire() as connection, connection.transaction():
            await state.agreements.notices.audit(connection, "agreement_backfilled", agreement=agreement_id,
                                                 contract=agreement.contract_id, sender=department,
                                                 detail=f"{count} events replayed")
        state.agreements.notices.outbox.wake()
        return {"agreement": agreement_id, "events": count, "topic": state.settings.topics.deliver(department)}

    # --- the audit log ------------------------------------------------------------------------------
    @api.get("/v1/audit")
    async def audit_log(
        case_id: str | None = None, department: str | None = None, contract: str | None = None,
        since: datetime | None = None, until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[dict[str, Any]]:
        async with state.pool.acquire() as connection:
            return await audit.query(connection, case_id=case_id, department=department, contract=contract,
                                     since=since, until=until, limit=limit)

    return api
