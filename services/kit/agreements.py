"""A department's sharing requests at the exchange, behind a small interface: ask a provider for data, decide a
request as the provider, escalate a refusal to the coordination office. ``HttpAgreements`` speaks the gateway's
agreement API with the department's bearer token; the fast tests use an in-memory one (``tests/fakes.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx

from base.settings import Settings
from contracts.refusal_grounds import SharingGround, refusal_reasons


@dataclass(frozen=True)
class SharingRequest:
    """What a department asks a provider for: fields of a contract, for a purpose, on a legal basis, for a time."""

    contract: str
    fields: tuple[str, ...]
    purpose: str
    legal_basis: str
    valid_until: datetime | None = None  # None: the gateway's default


class EscalationUnavailable(RuntimeError):
    """The exchange takes no escalation of a refusal (the gateway's endpoint for it is not there yet)."""


class Agreements(Protocol):
    async def request(self, department: str, request: SharingRequest) -> str:
        """Ask the contract's provider; returns the agreement's id."""

    async def approve(self, department: str, agreement_id: str) -> None: ...

    async def reject(self, department: str, agreement_id: str, reasons: str) -> None: ...

    async def escalate_refusal(self, department: str, agreement_id: str, reasons: str) -> None:
        """Take a refusal to the coordination office; its decision comes back as the agreement's next decision."""


class HttpAgreements:
    """The gateway's agreement API, each department with its own token."""

    def __init__(self, settings: Settings, timeout: float = 30.0) -> None:
        self.settings = settings
        self.client = httpx.AsyncClient(base_url=settings.gateway_address, timeout=timeout)

    def _as(self, department: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.settings.credentials(department).http_token}"}

    async def request(self, department: str, request: SharingRequest) -> str:
        body = {"contract": request.contract, "fields": list(request.fields), "purpose": request.purpose,
                "legal_basis": request.legal_basis}
        if request.valid_until is not None:
            body["valid_until"] = request.valid_until.isoformat()
        response = await self.client.post("/v1/agreements", json=body, headers=self._as(department))
        response.raise_for_status()
        return str(response.json()["id"])

    async def approve(self, department: str, agreement_id: str) -> None:
        await self._decide(department, agreement_id, "approve", None)

    async def reject(self, department: str, agreement_id: str, reasons: str) -> None:
        await self._decide(department, agreement_id, "reject", {"reasons": reasons})

    async def _decide(self, department: str, agreement_id: str, action: str, body: dict[str, str] | None) -> None:
        response = await self.client.post(f"/v1/agreements/{agreement_id}/{action}", json=body,
                                          headers=self._as(department))
        if response.status_code == 409:  # decided already: a decision whose unit of work was undone after it
            current = await self.client.get(f"/v1/agreements/{agreement_id}", headers=self._as(department))
            if current.is_success and current.json()["status"] != "pending":
                return
        response.raise_for_status()

    async def escalate_refusal(self, department: str, agreement_id: str, reasons: str) -> None:
        # The gateway's endpoint for a consumer's escalation of a refusal comes with the agreement lifecycle
        # (issue 13, point 2); until it is merged the exchange cannot take one.
        raise EscalationUnavailable(f"the exchange takes no escalation of {agreement_id} yet")


@dataclass(frozen=True)
class SharingAnswer:
    """A provider's answer to a sharing request: approved, or refused on a ground with an explanation."""

    ground: SharingGround | None = None  # None: approved
    explanation: str = ""

    @property
    def approves(self) -> bool:
        return self.ground is None

    @property
    def reasons(self) -> str:
        return "" if self.ground is None else refusal_reasons(self.ground, self.explanation)


APPROVED = SharingAnswer()
