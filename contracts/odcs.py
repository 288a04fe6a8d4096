"""A contract version as an Open Data Contract Standard (ODCS v3) document, the form data contracts are exchanged in
between tools: its owner, purpose and limits, every field (nested members and array items as nested properties)
with its sharing class as the classification, its legal basis and mask, the departments that consume it, and the
service levels the exchange keeps for it. No I/O: the service levels are given by the caller."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts.departments import DEPARTMENTS
from contracts.sharing import Member, Sharing, members
from contracts.topics import Topics

API_VERSION = "v3.0.2"
LOGICAL_TYPES = {"string": "string", "number": "number", "integer": "integer", "boolean": "boolean",
                 "object": "object", "array": "array"}
MEANING = {
    Sharing.UNCONDITIONAL: "shared with every consumer of the contract",
    Sharing.CONDITIONAL: "shared only under a sharing agreement the owner approved, for its stated purpose",
    Sharing.NOT_SHARED: "never leaves the owner",
}


@dataclass(frozen=True)
class ServiceLevels:
    """What the exchange commits to for every contract."""

    answer_within_working_days: int  # a request for conditional fields is decided within this many working days
    remind_after_working_days: int
    delivery_retention_days: float  # how long a consumer's deliveries stay on its topic
    record_retention_days: float | None  # the exchange's record (shared topic); None: kept without limit


def odcs_document(schema: Mapping[str, Any], levels: ServiceLevels, topics: Topics | None = None) -> dict[str, Any]:
    """The ODCS v3 document of a contract version, from its JSON Schema (with ``x-contract``)."""
    topics = topics or Topics()
    meta = schema["x-contract"]
    owner = meta["owner"]
    owner_name = DEPARTMENTS[owner].name_en if owner in DEPARTMENTS else owner
    fields = members(schema)
    conditional = sorted(m.path for top in fields.values() for m in top.walk()
                         if m.declared and m.sharing is Sharing.CONDITIONAL)
    retention = [{"property": "retention", "value": levels.delivery_retention_days, "unit": "d",
                  "element": "deliveries", "description": "a consumer's deliveries stay on its deliver topic"}]
    retention.append({"property": "retention", "value": levels.record_retention_days, "unit": "d",
                      "element": "record", "description": "the exchange's record of the contract (not-shared "
                      "fields removed)"} if levels.record_retention_days is not None else
                     {"property": "retention", "value": "unlimited", "element": "record",
                      "description": "the exchange's record of the contract (not-shared fields removed) is kept "
                                     "without limit"})
    return {
        "apiVersion": API_VERSION,
        "kind": "DataContract",
        "id": schema.get("$id") or f"urn:concord:contract:{meta['id']}:{meta['version']}",
        "name": meta["id"],
        "version": f"{meta['version']}.0.0",
        "status": "active",
        "domain": owner,
        "tenant": "concord",
        "description": {
            "purpose": schema.get("description") or schema.get("title") or meta["id"],
            "usage": (f"Published by {', '.join(meta['publishers'])}; delivered by the gateway to "
                      f"{', '.join(meta['consumers']) or 'no declared consumer'} (each on deliver.<department>), "
                      "cut to the fields each may see."),
            "limitations": (f"Fields classed not_shared never leave {owner_name}. Conditional fields "
                            f"({', '.join(conditional) or 'none'}) reach a consumer only under a sharing agreement "
                            f"{owner_name} approved, for the purpose it states and within its validity; without one "
                            "a consumer receives the field's mask, or nothing."),
        },
        "schema": [{
            "name": schema.get("title") or meta["id"],
            "physicalName": topics.shared(meta["id"]),
            "physicalType": "topic",
            "logicalType": "object",
            "description": schema.get("description", ""),
            "properties": [_property(member, schema) for member in fields.values()],
        }],
        "team": [{"username": owner, "name": owner_name, "role": "owner"},
                 *({"username": p, "role": "publisher"} for p in meta["publishers"] if p != owner)],
        "roles": [{"role": consumer, "access": "read",
                   "description": "declared consumer: unconditional fields; conditional ones under an agreement"}
                  for consumer in meta["consumers"]],
        "slaProperties": [
            {"property": "answerWithin", "value": levels.answer_within_working_days, "unit": "d",
             **({"element": ", ".join(conditional)} if conditional else {}), "driver": "regulatory",
             "description": f"a request for conditional fields is decided by {owner_name} within "
                            f"{levels.answer_within_working_days} working days (2025 Regulation on Government Data "
                            f"Sharing); reminded after {levels.remind_after_working_days}, escalated to the "
                            "coordination office when overdue"},
            *retention,
        ],
        "customProperties": [
            {"property": "subject", "value": meta["subject"], "description": "the field holding the case id"},
            *([{"property": "recipient", "value": meta["recipient"],
                "description": "the field naming the one consumer an event is addressed to"}]
              if meta.get("recipient") else []),
        ],
    }


def _property(member: Member, root: Mapping[str, Any]) -> dict[str, Any]:
    name = member.path.rpartition("/")[2]
    types = sorted(member.types - {"null"})
    described: dict[str, Any] = {"name": name}
    if len(types) == 1 and types[0] in LOGICAL_TYPES:
        described["logicalType"] = LOGICAL_TYPES[types[0]]
    if types:
        described["physicalType"] = " | ".join(sorted(member.types))
    if member.description:
        described["description"] = member.description
    described["classification"] = member.sharing.value
    custom: list[dict[str, Any]] = [{"property": "sharing", "value": member.sharing.value,
               "description": MEANING[member.sharing]
               + ("" if member.declared else " (the class of what holds it)")},
              {"property": "path", "value": member.path}]
    if member.legal_basis:
        custom.append({"property": "legalBasis", "value": member.legal_basis})
    if member.mask is not None:
        custom.append({"property": "mask", "value": member.mask.declared(), "description": "without an agreement a "
                       f"consumer receives {member.mask.describe()}"})
    described["customProperties"] = custom
    if member.members:
        described["properties"] = [_property(m, root) for m in member.members.values()]
    if member.items is not None:
        described["items"] = _property(member.items, root)
    return described
