"""The sharing catalogue (政务数据共享目录), generated from the contracts: for every field of every contract (the
members of nested objects and array items by their path) its class, legal basis, mask and owner, and which
departments receive it now: in clear (declared consumers, and departments under an agreement in force, with the
agreement), masked (the other recipients, where the contract declares a mask), or not at all.

``catalogue`` is a pure function of the registered versions and the agreements in force; ``agreements_in_force``
reads them with a query of its own (read only: the agreements module is another's)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from pydantic import BaseModel, Field

from contracts.catalogue import CATALOGUE
from contracts.departments import SERVICE_DEPARTMENTS
from contracts.odcs import ServiceLevels
from contracts.sharing import Member, Sharing
from contracts.topics import Topics
from gateway.lifecycle import ANSWER_WITHIN_WORKING_DAYS
from gateway.registry import ContractVersion
from gateway.topics import DAY_MS, planned_topics


@dataclass(frozen=True)
class InForce:
    """An agreement in force, as the catalogue reads it."""

    id: str
    contract_id: str
    consumer: str
    fields: frozenset[str]
    case_id: str | None = None  # for the records of this case alone


async def agreements_in_force(pool: asyncpg.Pool, at: datetime) -> list[InForce]:
    rows = await pool.fetch(
        "SELECT id, contract_id, consumer, fields, case_id FROM gateway.agreements"
        " WHERE status = 'approved' AND valid_from <= $1 AND $1 < valid_until ORDER BY id", at)
    return [InForce(r["id"], r["contract_id"], r["consumer"], frozenset(r["fields"]), r["case_id"]) for r in rows]


class Receiver(BaseModel):
    department: str
    agreements: list[str] = Field(description="the agreements in force it receives the field of every record under "
                                              "(none: a declared consumer of an unconditional field, or it receives "
                                              "the field of some cases' records alone: cases)")
    cases: int = Field(0, description="how many cases' records it receives the field of in clear under agreements "
                                      "for those cases alone (0: every record's)")


class CatalogueEntry(BaseModel):
    """One field of a contract in the sharing catalogue."""

    contract: str
    version: int
    owner: str
    path: str = Field(description="the field, or a nested member as field/member (field/*/member: an array's items)")
    sharing: Sharing
    declared: bool = Field(description="whether it declares its class (else it has the class of what holds it)")
    legal_basis: str | None
    mask: str | None = Field(description="what a consumer without an agreement sees instead (the mask's kind)")
    mask_description: str | None
    description: str
    receivers: list[Receiver] = Field(description="who receives it in clear now, and under which agreements")
    masked_for: list[str] = Field(description="who receives its mask instead")


def catalogue(versions: Iterable[ContractVersion], agreements: Iterable[InForce]) -> list[CatalogueEntry]:
    """Every field of the latest version of each contract, with who receives it now."""
    latest: dict[str, ContractVersion] = {}
    for version in versions:
        if version.id not in latest or version.version > latest[version.id].version:
            latest[version.id] = version
    by_contract: dict[str, list[InForce]] = {}
    for agreement in agreements:
        by_contract.setdefault(agreement.contract_id, []).append(agreement)
    entries: list[CatalogueEntry] = []
    for contract_id in sorted(latest):
        contract = latest[contract_id]
        for member in contract.members.values():
            entries.extend(_entries(contract, member, (), by_contract.get(contract_id, [])))
    return entries


def _entries(contract: ContractVersion, member: Member, holders: tuple[Member, ...], agreements: list[InForce]
             ) -> Iterable[CatalogueEntry]:
    chain = (*holders, member)
    receivers: list[Receiver] = []
    masked_for: list[str] = []
    for department in sorted(contract.consumers | {a.consumer for a in agreements}):
        general = [a for a in agreements if a.consumer == department and a.case_id is None]
        granted = frozenset().union(*(a.fields for a in general))
        hidden = _hidden(chain, granted)
        if hidden is None:
            conditional = {m.path for m in chain if m.declared and m.sharing is Sharing.CONDITIONAL}
            under = [a.id for a in general if a.fields & conditional] if conditional \
                else [] if department in contract.consumers else [a.id for a in general]
            receivers.append(Receiver(department=department, agreements=under))
            continue
        by_case: dict[str, frozenset[str]] = {}  # what each case's own agreements add
        for a in agreements:
            if a.consumer == department and a.case_id is not None:
                by_case[a.case_id] = by_case.get(a.case_id, frozenset()) | a.fields
        cases = sum(1 for fields in by_case.values() if _hidden(chain, granted | fields) is None)
        if cases:  # an agreement for a case is listed as a count: there are as many as cases open
            receivers.append(Receiver(department=department, agreements=[], cases=cases))
        if hidden is member and member.mask is not None:  # the other records' field, masked
            masked_for.append(department)
    yield CatalogueEntry(
        contract=contract.id, version=contract.version, owner=contract.owner, path=member.path, sharing=member.sharing,
        declared=member.declared, legal_basis=member.legal_basis, mask=member.mask.kind if member.mask else None,
        mask_description=member.mask.describe() if member.mask else None, description=member.description,
        receivers=receivers, masked_for=masked_for)
    below = [*member.members.values(), *([member.items] if member.items else [])]
    for child in below:
        yield from _entries(contract, child, chain, agreements)


def _hidden(chain: tuple[Member, ...], granted: frozenset[str]) -> Member | None:
    """The first member on the way to a field that the fields granted leave hidden (None: it is received)."""
    return next((m for m in chain if not m.visible(granted)), None)


def service_levels(topics: Topics | None = None) -> ServiceLevels:
    """What the exchange commits to for every contract: the deadline of a request for conditional fields, and how
    long deliveries and the exchange's record are kept (as the topics are planned)."""
    topics = topics or Topics()
    plan = {spec.name: spec.retention_ms for spec in planned_topics(topics)}
    deliveries = plan[topics.deliver(SERVICE_DEPARTMENTS[0])]  # the same for every department
    record = plan[topics.shared(min(CATALOGUE)[0])]  # the same for every contract
    return ServiceLevels(ANSWER_WITHIN_WORKING_DAYS, ANSWER_WITHIN_WORKING_DAYS // 2, deliveries / DAY_MS,
                         record / DAY_MS if record >= 0 else None)
