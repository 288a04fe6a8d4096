"""The exchange as one AsyncAPI 3.0 document: every department's channels, every contract version as a
message with its JSON Schema, and who sends and receives what. The consumer's view of the contracts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from contracts.base import Sharing, field_sharing
from contracts.departments import DEPARTMENTS, EXCHANGE, SERVICE_DEPARTMENTS
from contracts.envelope import SENDER_HEADER
from contracts.topics import Topics

CE_HEADERS = {
    "type": "object",
    "description": "CloudEvents 1.0, Kafka binary binding, plus W3C trace context",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "ce_dataschema",
                 "content-type"],
    "properties": {
        "ce_specversion": {"const": "1.0"},
        "ce_id": {"type": "string", "description": "unique per sender"},
        "ce_source": {"type": "string"},
        "ce_type": {"type": "string", "description": "the contract id"},
        "ce_subject": {"type": "string", "description": "the case id (also the record key)"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_dataschema": {"type": "string", "description": "urn:concord:contract:<id>:<version>"},
        "content-type": {"const": "application/json"},
        "traceparent": {"type": "string"},
        SENDER_HEADER: {"type": "string", "description": "set by the gateway on delivery: the sending department"},
    },
}


def message_name(contract_id: str, version: int) -> str:
    return f"{contract_id.replace('.', '_').replace('-', '_')}_v{version}"


def schema_file(contract_id: str, version: int) -> str:
    return f"schemas/{contract_id}/v{version}.json"


def _sharing_table(schema: Mapping[str, Any]) -> str:
    rows = [f"- `{name}`: {sharing.value}" + (
        f" ({schema['properties'][name].get('x-legal-basis')})" if sharing is Sharing.CONDITIONAL else "")
        for name, sharing in field_sharing(schema).items()]
    return "Fields and their sharing class:\n" + "\n".join(rows)


def asyncapi_document(schemas: Iterable[Mapping[str, Any]], topics: Topics | None = None) -> dict[str, Any]:
    """One document for the whole exchange, from the contract versions' JSON Schemas (with x-contract)."""
    topics = topics or Topics()
    versions = sorted(schemas, key=lambda s: (s["x-contract"]["id"], s["x-contract"]["version"]))
    messages: dict[str, Any] = {}
    for schema in versions:
        meta = schema["x-contract"]
        name = message_name(meta["id"], meta["version"])
        messages[name] = {
            "name": name,
            "title": f"{meta['id']} v{meta['version']}",
            "summary": schema.get("description", ""),
            "description": _sharing_table(schema),
            "contentType": "application/json",
            "headers": CE_HEADERS,
            "payload": {"$ref": schema_file(meta["id"], meta["version"])},
            "x-contract": meta,
        }

    def refs(names: Iterable[str]) -> dict[str, Any]:
        return {n: {"$ref": f"#/components/messages/{n}"} for n in names}

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for department in SERVICE_DEPARTMENTS:
        sends = [message_name(s["x-contract"]["id"], s["x-contract"]["version"]) for s in versions
                 if department in s["x-contract"]["publishers"] or department == s["x-contract"]["owner"]]
        receives = [message_name(s["x-contract"]["id"], s["x-contract"]["version"]) for s in versions
                    if department in s["x-contract"]["consumers"]]
        label = DEPARTMENTS[department].name_en
        channels[f"ingress_{department}"] = {
            "address": topics.ingress(department), "messages": refs(sends),
            "description": f"What {label} publishes; only the gateway reads it."}
        channels[f"deliver_{department}"] = {
            "address": topics.deliver(department), "messages": refs(receives),
            "description": f"What the gateway delivers to {label}, cut to the fields it may see."}
        if sends:
            operations[f"{department}_publishes"] = {
                "action": "send", "channel": {"$ref": f"#/channels/ingress_{department}"},
                "messages": [{"$ref": f"#/channels/ingress_{department}/messages/{n}"} for n in sends]}
        if receives:
            operations[f"{department}_receives"] = {
                "action": "receive", "channel": {"$ref": f"#/channels/deliver_{department}"},
                "messages": [{"$ref": f"#/channels/deliver_{department}/messages/{n}"} for n in receives]}
    for contract_id in sorted({s["x-contract"]["id"] for s in versions if s["x-contract"]["owner"] != EXCHANGE}):
        names = [message_name(s["x-contract"]["id"], s["x-contract"]["version"]) for s in versions
                 if s["x-contract"]["id"] == contract_id]
        channels[f"shared_{contract_id.replace('.', '_')}"] = {
            "address": topics.shared(contract_id), "messages": refs(names),
            "description": "The exchange's record of this contract (not-shared fields removed)."}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Concord exchange",
            "version": "1",
            "description": "Typed events between government departments. Every event enters on its sender's "
                           "ingress topic, is checked by the gateway against its contract, and is delivered to "
                           "each consumer cut to the fields it may see.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
