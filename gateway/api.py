"""The gateway's HTTP API: the contract registry, sharing agreements, HTTP ingest of events, the audit log.
OpenAPI docs at /docs.

Every endpoint but the health probes (``/healthz``, ``/readyz``) and the public catalogue (the contracts, their
versions, schemas and compatibility modes) takes a bearer token. A department's token acts for that department only (its
contracts, its events, its agreements, the audit entries and rejections that concern it); the operator's
reads everything and changes nothing. 401 without a valid token, 403 for what the holder may not do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry.trace import Span, SpanKind
from pydantic import BaseModel, ConfigDict, Field

from base import tracing
from base.clock import Clock
from base.http import (
    Authenticated,
    Caller,
    ExchangeApi,
    InvalidRequest,
    Problem,
    authenticate_with,
    department_of,
    forbidden,
    responses,
)
from base.kafka import KafkaAccess
from base.pages import next_offset
from base.settings import Settings
from contracts.base import CONTRACT_ID_PATTERN
from contracts.compatibility import Mode
from contracts.departments import COORDINATION
from gateway.acls import namespace_of
from gateway.agreements import (
    Agreement,
    AgreementRefused,
    AgreementRequest,
    AgreementStore,
    CounterOffer,
    KeyReused,
    Proceed,
    Rejection,
    Renewal,
    Status,
)
from gateway.audit import queries as audit
from gateway.audit.entry import AuditAction
from gateway.backfill import backfill
from gateway.credentials import CredentialStore
from gateway.enforcement import Enforcement
from gateway.ingest import from_structured
from gateway.inspection import Inspector, RecordView
from gateway.lifecycle import Refusal as StepRefusal
from gateway.lifecycle import TransitionRefused
from gateway.monitor import FlowWatch, LagWatch, of_department
from gateway.registry import Refusal, RegistrationRefused, RegistryStore
from gateway.rejections import Reason
from gateway.sharing_catalogue import CatalogueEntry, agreements_in_force, catalogue
from gateway.verdicts import Outcome, Verdict, Verdicts, verdict_at, verdicts_of

ContractId = Annotated[str, Path(max_length=128, pattern=CONTRACT_ID_PATTERN)]
AgreementId = Annotated[str, Path(max_length=64, pattern=r"^AGR-[A-Z0-9]+$")]
Version = Annotated[int, Path(ge=1, le=1_000_000)]
DepartmentCode = Annotated[str | None, Query(max_length=32, pattern=r"^[a-z]+$")]


@dataclass
class GatewayState:
    settings: Settings
    kafka: KafkaAccess
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    registry: RegistryStore
    agreements: AgreementStore
    enforcement: Enforcement
    credentials: CredentialStore
    clock: Clock
    verdicts: Verdicts
    flows: FlowWatch
    lags: LagWatch
    inspector: Inspector


class NewVersion(BaseModel):
    """The registration body: the version's JSON Schema and nothing else (an unknown member is refused)."""

    model_config = ConfigDict(extra="forbid")
    schema_: dict[str, Any] = Field(
        alias="schema", description="the JSON Schema: x-sharing on every field, and x-contract (id, owner, "
        "publishers, consumers, subject, optional recipient; version optional: left out, the next free one)")


class CompatibilityConfig(BaseModel):
    compatibility: Mode


class Reasons(BaseModel):
    reasons: str = Field(min_length=1, max_length=4000)


class Answer(BaseModel):
    reasons: str = Field("", max_length=4000)


class Principal(BaseModel):
    principal: str


class RegistrationRefusal(BaseModel):
    detail: str
    kind: Refusal = Field(description="which rule refused it (the status follows from it)")
    next_version: int | None = Field(None, description="the next free version (when the version named is taken "
                                                       "or would skip one)")
    compatibility: Mode | None = Field(None, description="the contract's compatibility mode (when it forbids it)")


class RegistrationProblems(RegistrationRefusal):
    """Why a schema is not registered: the caller's department does not own the contract (403), the schema cannot
    be a version of it (422), or the version it names is taken or would skip one (409)."""

    problems: list[str]


class Incompatibilities(RegistrationRefusal):
    """A 409: the contract's compatibility mode forbids the change."""

    incompatibilities: list[str] = Field(description="one `CHANGE_NAME json-pointer` per incompatible change")


class EventAt(BaseModel):
    """Where an event sent over HTTP landed, and where its verdict is kept."""

    event_id: str | None = Field(description="the event's id, when the body is a CloudEvent that has one")
    topic: str = Field(description="the caller's ingress topic")
    partition: int
    offset: int
    status_url: str | None = Field(None, description="where the verdict can be asked for again")


class EventRouted(EventAt):
    """The router routed the event."""

    outcome: Literal[Outcome.ROUTED]
    delivered_to: list[str] = Field(description="the departments it was delivered to")


class EventRefused(EventAt):
    """The router refused the event: it is kept in the caller's dead-letter topic with the reason."""

    outcome: Literal[Outcome.REFUSED]
    reason: Reason
    detail: str = Field(description="what is wrong with it")
    deadletter: str = Field(description="the dead-letter topic the original is kept in")


class EventPending(EventAt):
    """The router has not decided yet (it is behind, or down): ask again at the status URL."""

    outcome: Literal[Outcome.PENDING]


class ConsumerLag(BaseModel):
    """A consumer group's lag on one topic, as last sampled from the broker."""

    department: str = Field(description="whose consumer it is (`gateway` for the router on the ingress topics)")
    group: str
    topic: str
    lag: int = Field(description="records in the topic past the group's committed offsets")
    end: int = Field(description="records in the topic")
    sampled_at: datetime


class EventCopies(BaseModel):
    """The verdicts on every copy of an event its sender sent with one id, in the order they came."""

    event_id: str
    sender: str
    copies: list[EventRouted | EventRefused]


class AgreementPage(BaseModel):
    agreements: list[dict[str, Any]]
    total: int = Field(description="how many agreements match")
    next_offset: int | None = Field(description="the offset of the next page (None: this is the last)")


def create_api(state: GatewayState) -> ExchangeApi:
    api = ExchangeApi("Concord gateway",
                      "Contract registry, sharing agreements, HTTP ingest and audit of the Concord exchange.",
                      2 * state.settings.max_payload_bytes + 64 * 1024)

    async def authenticate(token: str) -> Caller | None:
        principal = await state.credentials.principal_of(token)
        return Caller(principal) if principal else None

    authenticate_with(api, authenticate)
    tracer = tracing.tracer("concord.gateway.api")

    def acting(caller: Caller) -> str:
        return department_of(caller)

    def reading_for(caller: Caller, department: str | None) -> str | None:
        """Whose entries a reader may see: the operator anyone's (or all); a department only its own."""
        if caller.operator:
            return department
        own = department_of(caller)
        if department not in (None, own):
            raise forbidden(f"{own} may read only what concerns itself, not {department}")
        return own

    def sender_for(caller: Caller, department: str | None) -> str:
        """Whose events a reader asks about: a department its own; the operator names one."""
        if caller.operator and department is None:
            raise HTTPException(422, "the operator names the sending department: ?department=<code>")
        sender = reading_for(caller, department)
        assert sender is not None
        return sender

    async def agreement_for(agreement_id: str, caller: Caller) -> Agreement:
        """An agreement its parties, the coordination office (refusals and late steps are escalated to it) and the
        operator may read."""
        agreement = await state.agreements.get(agreement_id)
        if agreement is None:
            raise HTTPException(404, f"no agreement {agreement_id}")
        if not caller.operator and caller.department not in (*agreement.parties, COORDINATION):
            raise forbidden(f"{agreement_id} is between {' and '.join(agreement.parties)}")
        return agreement

    @api.get("/v1/whoami", responses=responses(401))
    async def whoami(caller: Authenticated) -> Principal:
        """The principal a token belongs to (the other services check tokens here)."""
        return Principal(principal=caller.principal)

    # --- the registry: reading it is public ---------------------------------------------------------
    @api.get("/v1/contracts")
    async def contracts() -> list[dict[str, Any]]:
        return await state.registry.contracts()

    @api.get("/v1/contracts/{contract_id}/versions", responses=responses(404))
    async def versions(contract_id: ContractId) -> list[int]:
        found = await state.registry.versions(contract_id)
        if not found:
            raise HTTPException(404, f"no contract {contract_id}")
        return found

    @api.get("/v1/contracts/{contract_id}/versions/{version}/schema", responses=responses(404))
    async def schema(contract_id: ContractId, version: Version) -> dict[str, Any]:
        found = await state.registry.schema(contract_id, version)
        if found is None:
            raise HTTPException(404, f"no version {version} of {contract_id}")
        return found

    @api.get("/v1/contracts/{contract_id}/config", responses=responses(404))
    async def get_config(contract_id: ContractId) -> CompatibilityConfig:
        mode = await state.registry.mode(contract_id)
        if mode is None:
            raise HTTPException(404, f"no contract {contract_id}")
        return CompatibilityConfig(compatibility=mode)

    def refusal(refused: RegistrationRefused) -> JSONResponse:
        status = {Refusal.NOT_OWNER: 403, Refusal.INVALID: 422, Refusal.INCOMPATIBLE: 409,
                  Refusal.VERSION_TAKEN: 409, Refusal.VERSION_SKIPPED: 409}[refused.kind]
        told = {"detail": str(refused), "kind": refused.kind, "next_version": refused.next_version,
                "compatibility": refused.mode}
        body: RegistrationRefusal = (Incompatibilities(**told, incompatibilities=refused.problems)
                                     if refused.kind is Refusal.INCOMPATIBLE
                                     else RegistrationProblems(**told, problems=refused.problems))
        return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status)

    @api.post("/v1/contracts/{contract_id}/versions", status_code=201, responses=responses(
        401, 403, 409, 422, bodies={403: RegistrationProblems | Problem, 409: Incompatibilities | RegistrationProblems,
                                    422: RegistrationProblems | InvalidRequest}))
    async def register(contract_id: ContractId, body: NewVersion, caller: Authenticated) -> JSONResponse:
        """Register a version of a contract the caller's department owns: 201 with the version it became; 200 when
        the same content is a registered version already (that version, `created` false); 409 when the
        compatibility mode forbids it (`incompatibilities`) or the version it names is taken or would skip one
        (`next_version`); 422 when it cannot be a version of the contract (`problems`). `kind` says which. A new
        contract's shared topic is made by the operator (`concord topics ensure`); until then its events are
        refused as not provisioned."""
        try:
            registered = await state.registry.register(contract_id, body.schema_, by=acting(caller))
        except RegistrationRefused as refused:
            return refusal(refused)
        return JSONResponse({"id": contract_id, "version": registered.version, "created": registered.created,
                             "shared_topic": state.settings.topics.shared(contract_id)},
                            status_code=201 if registered.created else 200)

    @api.put("/v1/contracts/{contract_id}/config", responses=responses(401, 403, 404))
    async def set_config(contract_id: ContractId, body: CompatibilityConfig,
                         caller: Authenticated) -> CompatibilityConfig:
        try:
            await state.registry.set_mode(contract_id, body.compatibility, by=acting(caller))
        except RegistrationRefused as refused:
            raise forbidden(str(refused)) from refused
        except KeyError as missing:
            raise HTTPException(404, f"no contract {contract_id}") from missing
        return body

    @api.get("/v1/catalogue", responses=responses(401))
    async def sharing_catalogue(caller: Authenticated) -> list[CatalogueEntry]:
        """The sharing catalogue (政务数据共享目录): every field of the latest version of each contract (nested members
        by path) with its class, legal basis, mask and owner, and who receives it now: in clear (declared
        consumers, and departments under an agreement in force, with its id), masked, or not at all."""
        await state.enforcement.refresh()
        return catalogue(state.enforcement.registry, await agreements_in_force(state.pool, state.clock.now()))

    # --- events over HTTP ---------------------------------------------------------------------------
    @api.post("/v1/events", status_code=200, response_model=EventRouted,
              responses=responses(401, 403, 413, 422, bodies={422: EventRefused | InvalidRequest}) | {
                  202: {"description": "not decided within the wait: the verdict comes at the status URL",
                        "model": EventPending}})
    async def ingest(request: Request, caller: Authenticated,
                     traceparent: Annotated[str | None, Header(max_length=128)] = None) -> JSONResponse:
        """A structured CloudEvent (JSON). It lands on the caller's ingress topic, where the router checks it like
        any event; the answer is the router's verdict: 200 routed (to whom), 422 refused (why, and where the
        original is kept), or, if the router has not decided within a few seconds, 202 with a status URL."""
        department = acting(caller)
        if tracer is None:
            return await take_in(request, department, traceparent, None)
        with tracer.start_as_current_span("ingest", tracing.parent(traceparent), SpanKind.SERVER,
                                          {"concord.sender": department}) as span:
            answered = await take_in(request, department, tracing.traceparent_of(span), span)
            span.set_attribute("http.response.status_code", answered.status_code)
            return answered

    async def take_in(request: Request, department: str, traceparent: str | None, span: Span | None
                      ) -> JSONResponse:
        """The event on the department's ingress topic, in the trace ``traceparent`` names, and the verdict."""
        ingested = from_structured(await request.body(), traceparent)
        if span is not None and ingested.event_id:
            span.set_attribute("messaging.message.id", ingested.event_id)
        topic = state.settings.topics.ingress(department)
        try:
            sent = await state.producer.send_and_wait(topic, ingested.record.value, key=ingested.record.key,
                                                      headers=ingested.record.headers)
        except KafkaError as exc:
            raise HTTPException(503, f"the broker did not take the event ({type(exc).__name__}); send it again") \
                from exc
        verdict = await state.verdicts.wait(topic, sent.partition, sent.offset, state.settings.ingest_verdict_seconds)
        status_url = f"/v1/events/{quote(ingested.event_id, safe='')}" if ingested.event_id \
            else f"/v1/ingress/{sent.partition}/{sent.offset}"
        where = {"event_id": ingested.event_id, "topic": topic, "partition": sent.partition, "offset": sent.offset,
                 "status_url": status_url}
        if verdict is None:
            return answer(EventPending(outcome=Outcome.PENDING, **where), 202, headers={"location": status_url})
        return verdict_answer(verdict, department, where, ingested.problem)

    def answer(body: BaseModel, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)

    def told(verdict: Verdict, sender: str, where: dict[str, Any], problem: str | None = None
             ) -> EventRouted | EventRefused:
        if verdict.outcome is Outcome.ROUTED:
            return EventRouted(outcome=Outcome.ROUTED, delivered_to=list(verdict.delivered_to), **where)
        assert verdict.reason is not None  # the router gives every refusal its reason
        return EventRefused(outcome=Outcome.REFUSED, reason=verdict.reason,
                            detail=problem or verdict.detail or "",  # the body's own fault, in its terms
                            deadletter=state.settings.topics.deadletter(sender), **where)

    def verdict_answer(verdict: Verdict, sender: str, where: dict[str, Any], problem: str | None = None
                       ) -> JSONResponse:
        body = told(verdict, sender, where, problem)
        return answer(body, 200 if isinstance(body, EventRouted) else 422)

    @api.get("/v1/events/{event_id}", responses=responses(401, 403, 404))
    async def event_verdicts(event_id: Annotated[str, Path(max_length=300)], caller: Authenticated,
                             department: DepartmentCode = None) -> EventCopies:
        """The router's verdicts on every copy of an event the caller sent with this id (the operator: the
        ``department``'s), in the order they came: the first routed, a later copy refused as a duplicate."""
        sender = sender_for(caller, department)
        async with state.pool.acquire() as connection:
            found = await verdicts_of(connection, sender, event_id)
        if not found:
            raise HTTPException(404, f"no verdict on an event {event_id!r} from {sender} (yet): the router may be "
                                     "behind; ask again")
        topic = state.settings.topics.ingress(sender)
        return EventCopies(event_id=event_id, sender=sender, copies=[
            told(v, sender, {"event_id": event_id, "topic": topic, "partition": v.partition, "offset": v.offset})
            for v in found])

    @api.get("/v1/ingress/{partition}/{offset}", response_model=EventRouted | EventPending,
             responses=responses(401, 403, bodies={422: EventRefused | InvalidRequest}))
    async def ingress_verdict(partition: Annotated[int, Path(ge=0, le=10_000)],
                              offset: Annotated[int, Path(ge=0)], caller: Authenticated,
                              department: DepartmentCode = None) -> JSONResponse:
        """The router's verdict on the record at this position of the caller's ingress topic (an event sent
        without an id is found this way)."""
        sender = sender_for(caller, department)
        topic = state.settings.topics.ingress(sender)
        async with state.pool.acquire() as connection:
            verdict = await verdict_at(connection, topic, partition, offset)
        where = {"event_id": verdict.event_id if verdict else None, "topic": topic, "partition": partition,
                 "offset": offset}
        if verdict is None:
            return answer(EventPending(outcome=Outcome.PENDING, **where), 200)
        return verdict_answer(verdict, sender, where)

    @api.get("/v1/rejections", responses=responses(401, 403))
    async def rejections(caller: Authenticated, department: DepartmentCode = None,
                         since: datetime | None = None) -> list[dict[str, Any]]:
        """What the exchange refused from the caller (the operator: from anyone, or from ``department``)."""
        sender = reading_for(caller, department)
        async with state.pool.acquire() as connection:
            entries = await audit.query(connection, department=sender, since=since)
        return [e for e in entries if e.get("action") == "rejected" and sender in (None, e.get("sender"))]

    # --- what operators watch ---------------------------------------------------------------------
    @api.get("/v1/lag", responses=responses(401, 403))
    async def lag(caller: Authenticated, department: DepartmentCode = None) -> list[ConsumerLag]:
        """Consumer lag per department and topic, sampled from the broker every few seconds (a department: its
        own consumers; the operator: all, the router's too, or ``department``'s)."""
        sample = state.lags.latest()
        if sample is None:
            raise HTTPException(503, "consumer lag not sampled yet; ask again in a few seconds")
        at = datetime.fromtimestamp(sample.at).astimezone()
        return [ConsumerLag(**lag.__dict__, sampled_at=at)
                for lag in of_department(sample.lags, reading_for(caller, department))]

    @api.get("/v1/topics/{topic}/records", responses=responses(401, 403, 404))
    async def records(topic: Annotated[str, Path(max_length=249, pattern=r"^[A-Za-z0-9._-]+$")], caller: Authenticated,
                      last: Annotated[int, Query(ge=1, le=500)] = 20,
                      after: Annotated[str | None, Query(max_length=4000, pattern=r"^(\d+:\d+)(,\d+:\d+)*$",
                                                         description="partition:offset,... to read past")] = None,
                      ) -> list[RecordView]:
        """The latest records of one of the exchange's topics (or those after the offsets given), masked as the
        console masks them: only unconditional values are shown. The operator reads any topic of the exchange; a
        department its own deliver and dead-letter topics."""
        names = state.settings.topics
        own = None if caller.operator else department_of(caller)
        if own is not None and topic not in (names.deliver(own), names.deadletter(own)):
            raise forbidden(f"{own} may tail only {names.deliver(own)} and {names.deadletter(own)}")
        if namespace_of(topic) != names.namespace:
            raise HTTPException(404, f"{topic} is not one of the exchange's topics")
        offsets = {int(p): int(o) for p, o in (pair.split(":") for pair in after.split(","))} if after else None
        await state.enforcement.refresh()
        try:
            return await state.inspector.tail(topic, last, state.enforcement.registry, offsets)
        except LookupError as missing:
            raise HTTPException(404, str(missing)) from missing

    # --- sharing agreements -------------------------------------------------------------------------
    @api.post("/v1/agreements", status_code=201, responses={**responses(401, 403, 404, 409, 422), 200: {
        "description": "a request sent again with its Idempotency-Key: the agreement the first one made, as it "
                       "stands now"}})
    async def request_agreement(body: AgreementRequest, caller: Authenticated, response: Response,
                                idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
                                ) -> dict[str, Any]:
        """Ask the provider of a contract for fields, for a purpose, on a legal basis. In force for an absolute
        period (`valid_from`, `valid_until`), for `window.working_days` working days from its approval, or for the
        life of one case (`scope.case_id`: only that case's records get the fields; it ends when the case does, and
        the provider decides within 3 working days instead of 10). Unconditional fields only: approved at once.
        With an `Idempotency-Key`, sending the request again (its answer was lost) asks nothing twice: 200 with the
        agreement the first one made; the key given again for other contract or fields: 409."""
        department = acting(caller)
        await state.enforcement.refresh()
        contract = state.enforcement.registry.latest(body.contract)
        if contract is None:
            raise HTTPException(404, f"no contract {body.contract}")
        try:
            agreement, new = await state.agreements.request(department, body, contract, idempotency_key)
        except AgreementRefused as refused:
            raise HTTPException(422, str(refused)) from refused
        except KeyReused as reused:
            raise HTTPException(409, str(reused)) from reused
        if not new:
            response.status_code = 200
        return agreement.view(state.clock.now())

    @api.get("/v1/agreements", responses=responses(401, 403))
    async def list_agreements(
        caller: Authenticated,
        department: DepartmentCode = None,
        status: Annotated[list[Status], Query(max_length=20)] = [],  # noqa: B006
        case: Annotated[str | None, Query(max_length=64, description="only this case's agreements")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> AgreementPage:
        """Agreements the caller is a party to (the operator: all, or a department's), newest first, a page at a
        time: of the statuses and the case given."""
        found, total = await state.agreements.page(reading_for(caller, department), status, case, limit, offset)
        now = state.clock.now()
        return AgreementPage(agreements=[a.view(now) for a in found], total=total,
                             next_offset=next_offset(offset, len(found), total))

    @api.get("/v1/agreements/{agreement_id}", responses=responses(401, 403, 404))
    async def get_agreement(agreement_id: AgreementId, caller: Authenticated) -> dict[str, Any]:
        return (await agreement_for(agreement_id, caller)).view(state.clock.now())

    step_status = {StepRefusal.NOT_YOURS: 403, StepRefusal.NOT_NOW: 409, StepRefusal.NO_REASONS: 422}

    async def stepped(agreement_id: str, caller: Caller, step: Callable[[str], Awaitable[Agreement]]) -> dict[str, Any]:
        """A step of an agreement's lifecycle by the caller's department: 403 when its role may not take it, 409
        when the agreement's status does not allow it, 422 when the terms or reasons do not do."""
        await agreement_for(agreement_id, caller)
        try:
            agreement = await step(acting(caller))
        except TransitionRefused as refused:
            raise HTTPException(step_status[refused.kind], str(refused)) from refused
        except AgreementRefused as refused:
            raise HTTPException(422, str(refused)) from refused
        return agreement.view(state.clock.now())

    lifecycle = responses(401, 403, 404, 409, 422)

    @api.post("/v1/agreements/{agreement_id}/approve", responses=lifecycle)
    async def approve(agreement_id: AgreementId, caller: Authenticated) -> dict[str, Any]:
        """The provider approves a pending request on its terms: in force (a working-day window from now)."""
        return await stepped(agreement_id, caller, lambda by: state.agreements.approve(agreement_id, by))

    @api.post("/v1/agreements/{agreement_id}/reject", responses=lifecycle)
    async def reject(agreement_id: AgreementId, body: Rejection, caller: Authenticated) -> dict[str, Any]:
        """The provider refuses a pending request, with reasons and, optionally, their `ground` as a type (the
        consumer may escalate the refusal; the office upholds a ground binding in law)."""
        return await stepped(agreement_id, caller, lambda by: state.agreements.reject(agreement_id, by, body))

    @api.post("/v1/agreements/{agreement_id}/counter-offer", responses=lifecycle)
    async def counter_offer(agreement_id: AgreementId, body: CounterOffer, caller: Authenticated) -> dict[str, Any]:
        """The provider offers some of the fields asked for and/or a shorter period (an earlier `valid_until`, or
        fewer `working_days` for a working-day window), with reasons. The consumer accepts or declines within the
        statutory deadline (`due_at`)."""
        return await stepped(agreement_id, caller, lambda by: state.agreements.counter_offer(agreement_id, by, body))

    @api.post("/v1/agreements/{agreement_id}/accept", responses=lifecycle)
    async def accept(agreement_id: AgreementId, caller: Authenticated) -> dict[str, Any]:
        """The consumer accepts a counter-offer: in force on the offered terms."""
        return await stepped(agreement_id, caller, lambda by: state.agreements.accept(agreement_id, by))

    @api.post("/v1/agreements/{agreement_id}/decline", responses=lifecycle)
    async def decline(agreement_id: AgreementId, caller: Authenticated, body: Answer | None = None) -> dict[str, Any]:
        """The consumer declines a counter-offer (reasons optional): the agreement is closed."""
        reasons = body.reasons if body else ""
        return await stepped(agreement_id, caller, lambda by: state.agreements.decline(agreement_id, by, reasons))

    @api.post("/v1/agreements/{agreement_id}/suspend", responses=lifecycle)
    async def suspend(agreement_id: AgreementId, body: Reasons, caller: Authenticated) -> dict[str, Any]:
        """The provider suspends an agreement in force, with reasons: deliveries stop from the next routed batch."""
        return await stepped(agreement_id, caller, lambda by: state.agreements.suspend(agreement_id, by, body.reasons))

    @api.post("/v1/agreements/{agreement_id}/resume", responses=lifecycle)
    async def resume(agreement_id: AgreementId, body: Reasons, caller: Authenticated) -> dict[str, Any]:
        """The provider resumes a suspended agreement, with reasons: deliveries go on from the next routed batch."""
        return await stepped(agreement_id, caller, lambda by: state.agreements.resume(agreement_id, by, body.reasons))

    @api.post("/v1/agreements/{agreement_id}/revoke", responses=lifecycle)
    async def revoke(agreement_id: AgreementId, body: Reasons, caller: Authenticated) -> dict[str, Any]:
        """Either party ends an agreement in force or suspended, with reasons; delivery stops at once."""
        return await stepped(agreement_id, caller, lambda by: state.agreements.revoke(agreement_id, by, body.reasons))

    @api.post("/v1/agreements/{agreement_id}/renew", status_code=201, responses=lifecycle)
    async def renew(agreement_id: AgreementId, body: Renewal, caller: Authenticated) -> dict[str, Any]:
        """The consumer asks for the period after an agreement's end (`valid_until`, or `working_days` from its
        end), on its terms: a new agreement (its `renews` names this one), decided as a request is; this one stays
        in force until its end."""
        agreement = await agreement_for(agreement_id, caller)
        await state.enforcement.refresh()
        contract = state.enforcement.registry.latest(agreement.contract_id)
        if contract is None:
            raise HTTPException(404, f"no contract {agreement.contract_id}")
        return await stepped(agreement_id, caller,
                             lambda by: state.agreements.renew(agreement_id, by, body, contract))

    @api.post("/v1/agreements/{agreement_id}/escalate", responses=lifecycle)
    async def escalate(agreement_id: AgreementId, body: Reasons, caller: Authenticated) -> dict[str, Any]:
        """The consumer takes a refusal to the coordination office, with its reasons. The office is sent
        `exchange.refusal-escalated` and decides by `due_at`: `…/proceed` or `…/uphold`."""
        return await stepped(agreement_id, caller,
                             lambda by: state.agreements.escalate(agreement_id, by, body.reasons))

    @api.post("/v1/agreements/{agreement_id}/proceed", responses=lifecycle)
    async def proceed(agreement_id: AgreementId, body: Proceed, caller: Authenticated) -> dict[str, Any]:
        """The coordination office decides an escalated refusal for the consumer: the agreement comes into force on
        the terms asked for, with the `conditions` attached. Both parties are told."""
        return await stepped(agreement_id, caller, lambda by: state.agreements.proceed(agreement_id, by, body))

    @api.post("/v1/agreements/{agreement_id}/uphold", responses=lifecycle)
    async def uphold(agreement_id: AgreementId, body: Reasons, caller: Authenticated) -> dict[str, Any]:
        """The coordination office upholds an escalated refusal, with reasons. Both parties are told."""
        return await stepped(agreement_id, caller, lambda by: state.agreements.uphold(agreement_id, by, body.reasons))

    @api.post("/v1/agreements/{agreement_id}/backfill", responses=responses(401, 403, 404, 409))
    async def replay(agreement_id: AgreementId, caller: Authenticated) -> dict[str, Any]:
        """Replay the history the consumer may now see into its deliver topic."""
        agreement, department = await agreement_for(agreement_id, caller), acting(caller)
        if department != agreement.consumer:
            raise forbidden(f"only the consumer of {agreement_id} ({agreement.consumer}) may do this")
        now = state.clock.now()
        if not agreement.in_force(now):
            raise HTTPException(409, f"{agreement_id} is not in force")
        await state.enforcement.refresh()
        count = await backfill(state.kafka, state.settings.topics, state.enforcement.registry, agreement, now,
                               state.producer, state.settings.secrets.mask_key())
        async with state.pool.acquire() as connection, connection.transaction():
            await state.agreements.notices.audit(connection, AuditAction.AGREEMENT_BACKFILLED, agreement=agreement_id,
                                                 contract=agreement.contract_id, sender=department,
                                                 detail=f"{count} events replayed", parties=agreement.parties)
        state.agreements.notices.outbox.wake()
        return {"agreement": agreement_id, "events": count, "topic": state.settings.topics.deliver(department)}

    # --- the audit log ------------------------------------------------------------------------------
    @api.get("/v1/audit", responses=responses(401, 403))
    async def audit_log(
        caller: Authenticated,
        case_id: Annotated[str | None, Query(max_length=256)] = None, department: DepartmentCode = None,
        contract: Annotated[str | None, Query(max_length=128)] = None,
        since: datetime | None = None, until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[dict[str, Any]]:
        """Audit entries (a department: those that concern it, as sender, recipient or party)."""
        async with state.pool.acquire() as connection:
            return await audit.query(connection, case_id=case_id, department=reading_for(caller, department),
                                     contract=contract, since=since, until=until, limit=limit)

    return api

