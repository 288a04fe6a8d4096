"""A department's sharing requests at the exchange, behind a small interface: ask a provider for data, decide a
request as the provider (approve, refuse on a typed ground, counter-offer), answer a counter-offer as the consumer,
escalate a refusal to the coordination office, and decide an escalated refusal as the office. ``HttpAgreements``
speaks the gateway's agreement API with the department's bearer token; the fast tests use an in-memory one
(``tests/fakes.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

from base.settings import Settings
from contracts.exchange import AgreementStatus
from contracts.refusal_grounds import SharingGround


@dataclass(frozen=True)
class SharingRequest:
    """What a department asks a provider for: fields of a contract, for a purpose, on a legal basis, for a time, and
    for one case (its records only; the agreement ends with the case) or for all."""

    contract: str
    fields: tuple[str, ...]
    purpose: str
    legal_basis: str
    valid_until: datetime | None = None  # None: the gateway's default
    case_id: str | None = None  # None: every case's records in its period


@dataclass(frozen=True)
class SharingAnswer:
    """A provider's answer to a sharing request: approved; refused on a ground, with an explanation; or, with
    ``offered``, a counter-offer of some of the fields asked for (its ground saying why not all)."""

    ground: SharingGround | None = None  # None: approved
    explanation: str = ""
    offered: tuple[str, ...] | None = None  # a counter-offer: the fields offered

    @property
    def approves(self) -> bool:
        return self.ground is None

    @property
    def counters(self) -> bool:
        return self.ground is not None and self.offered is not None


APPROVED = SharingAnswer()


class Agreements(Protocol):
    async def request(self, department: str, request: SharingRequest, key: str | None = None) -> str:
        """Ask the contract's provider; returns the agreement's id. Asked again with the same ``key`` (the
        department's unit of work failed after the exchange had accepted), nothing is asked twice: the id is the
        first request's."""

    async def approve(self, department: str, agreement_id: str) -> None: ...

    async def reject(self, department: str, agreement_id: str, reasons: str, ground: SharingGround) -> None: ...

    async def counter_offer(self, department: str, agreement_id: str, fields: tuple[str, ...], reasons: str,
                            ground: SharingGround) -> None: ...

    async def accept(self, department: str, agreement_id: str) -> None:
        """Accept a counter-offer (as the consumer): in force on its terms."""

    async def decline(self, department: str, agreement_id: str, reasons: str) -> None:
        """Decline a counter-offer (as the consumer): closed."""

    async def escalate_refusal(self, department: str, agreement_id: str, reasons: str) -> None:
        """Take a refusal to the coordination office; its decision comes back as the agreement's next change."""

    async def proceed(self, department: str, agreement_id: str, reasons: str, conditions: list[str]) -> None:
        """The coordination office puts an escalated agreement in force, on conditions."""

    async def uphold(self, department: str, agreement_id: str, reasons: str) -> None:
        """The coordination office upholds an escalated refusal."""


async def answer(agreements: Agreements, department: str, agreement_id: str, answer: SharingAnswer) -> None:
    """Give a provider's answer at the exchange: an approval, a counter-offer or a refusal."""
    if answer.ground is None:
        await agreements.approve(department, agreement_id)
    elif answer.offered is not None:
        await agreements.counter_offer(department, agreement_id, answer.offered, answer.explanation, answer.ground)
    else:
        await agreements.reject(department, agreement_id, answer.explanation, answer.ground)


class ExchangeUnavailable(Exception):
    """The gateway did not answer, or failed on its side (it may be restarting): try again later, nothing decided."""


class HttpAgreements:
    """The gateway's agreement API, each department with its own token."""

    def __init__(self, settings: Settings, timeout: float = 30.0) -> None:
        self.settings = settings
        self.client = httpx.AsyncClient(base_url=settings.gateway_address, timeout=timeout)

    def _as(self, department: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.settings.credentials(department).http_token}"}

    async def request(self, department: str, request: SharingRequest, key: str | None = None) -> str:
        body: dict[str, Any] = {"contract": request.contract, "fields": list(request.fields),
                                "purpose": request.purpose, "legal_basis": request.legal_basis}
        if request.valid_until is not None:
            body["valid_until"] = request.valid_until.isoformat()
        if request.case_id is not None:
            body["scope"] = {"case_id": request.case_id}
        response = await self._call("POST", "/v1/agreements", department, body,
                                    {} if key is None else {"idempotency-key": key})
        response.raise_for_status()
        return str(response.json()["id"])

    async def approve(self, department: str, agreement_id: str) -> None:
        await self._step(department, agreement_id, "approve", AgreementStatus.PENDING, None)

    async def reject(self, department: str, agreement_id: str, reasons: str, ground: SharingGround) -> None:
        await self._step(department, agreement_id, "reject", AgreementStatus.PENDING,
                         {"reasons": reasons, "ground": ground.value})

    async def counter_offer(self, department: str, agreement_id: str, fields: tuple[str, ...], reasons: str,
                            ground: SharingGround) -> None:
        await self._step(department, agreement_id, "counter-offer", AgreementStatus.PENDING,
                         {"fields": list(fields), "reasons": reasons, "ground": ground.value})

    async def accept(self, department: str, agreement_id: str) -> None:
        await self._step(department, agreement_id, "accept", AgreementStatus.COUNTERED, None)

    async def decline(self, department: str, agreement_id: str, reasons: str) -> None:
        await self._step(department, agreement_id, "decline", AgreementStatus.COUNTERED, {"reasons": reasons})

    async def escalate_refusal(self, department: str, agreement_id: str, reasons: str) -> None:
        await self._step(department, agreement_id, "escalate", AgreementStatus.REJECTED, {"reasons": reasons})

    async def proceed(self, department: str, agreement_id: str, reasons: str, conditions: list[str]) -> None:
        await self._step(department, agreement_id, "proceed", AgreementStatus.ESCALATED,
                         {"reasons": reasons, "conditions": conditions})

    async def uphold(self, department: str, agreement_id: str, reasons: str) -> None:
        await self._step(department, agreement_id, "uphold", AgreementStatus.ESCALATED, {"reasons": reasons})

    async def _step(self, department: str, agreement_id: str, action: str, source: AgreementStatus,
                    body: dict[str, Any] | None) -> None:
        response = await self._call("POST", f"/v1/agreements/{agreement_id}/{action}", department, body)
        if response.status_code == 409:  # taken already: a step whose unit of work was undone after it
            current = await self._call("GET", f"/v1/agreements/{agreement_id}", department, None)
            if current.is_success and current.json()["status"] != source.value:
                return
        response.raise_for_status()

    async def _call(self, method: str, path: str, department: str, body: dict[str, Any] | None,
                    headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = await self.client.request(method, path, json=body,
                                                 headers=self._as(department) | (headers or {}))
        except httpx.TransportError as exc:
            raise ExchangeUnavailable(f"the gateway did not answer {method} {path}: {exc!r}") from exc
        if response.status_code >= 500:
            raise ExchangeUnavailable(f"the gateway answered {method} {path} with {response.status_code}")
        return response
