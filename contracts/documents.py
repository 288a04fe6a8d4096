"""A contract version as a JSON document, the way a publisher hands it in: a JSON Schema that says in its
``x-contract`` which contract and version it is (what ``concord contracts docs`` writes and
``GET /v1/contracts/{id}/versions/{v}/schema`` returns), or the registration body that wraps one
(``{"schema": {...}}``, what ``POST /v1/contracts/{id}/versions`` takes). Pure: the caller reads the file."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REGISTRATION_KEY = "schema"  # the registration body's one member: {"schema": <the JSON Schema>}


class DocumentError(ValueError):
    """The document cannot be read as a version of a contract. The message says of the document what is wrong and
    what to change (``names no contract: add x-contract.id, ...``): the caller puts the file's name before it."""


@dataclass(frozen=True)
class ContractDocument:
    """A version of a contract as handed in. ``version`` is None when the document leaves it to the registry
    (which gives it the next free number)."""

    contract_id: str
    version: int | None
    schema: dict[str, Any]

    @property
    def label(self) -> str:
        """How the commands name it: ``<id> v<version>``, or the id alone when it names no version."""
        return f"{self.contract_id} v{self.version}" if self.version is not None else self.contract_id


def is_version_number(value: Any) -> bool:
    return type(value) is int and value >= 1  # bool is an int to Python, not to a contract


def contract_document(content: Any, contract_id: str | None = None) -> ContractDocument:
    """The contract version a JSON value holds. ``contract_id`` (the command's ``--contract``) names the contract
    when the schema's ``x-contract`` does not; when both do, they must agree. The schema returned carries the id."""
    if not isinstance(content, dict):
        raise DocumentError("holds no JSON object: give a contract's JSON Schema or a registration body "
                            '{"schema": {...}}')
    schema = copy.deepcopy(schema_of(content))
    meta = schema.get("x-contract")
    if not isinstance(meta, dict):
        raise DocumentError("has no x-contract object: it says which contract the schema is a version of (id, "
                            "version, owner, publishers, consumers, subject)")
    named = meta.get("id")
    if named is None and contract_id is None:
        raise DocumentError("names no contract: add x-contract.id, or give --contract ID")
    if named is not None and not isinstance(named, str):
        raise DocumentError("has an x-contract.id that is no string: it is <owner>.<name>")
    if named is not None and contract_id is not None and named != contract_id:
        raise DocumentError(f"is a version of {named} (its x-contract.id), not of {contract_id} (--contract)")
    meta["id"] = named or contract_id
    version = meta.get("version")
    if version is not None and not is_version_number(version):
        raise DocumentError(f"has x-contract.version {str(version)[:40]!r}: a version is a positive integer (leave it "
                            "out and the registry gives the next free one)")
    return ContractDocument(meta["id"], version, schema)


def schema_of(content: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema a document holds: itself, or the one a registration body wraps."""
    if REGISTRATION_KEY not in content or "x-contract" in content:
        return content
    inner = content[REGISTRATION_KEY]
    if set(content) != {REGISTRATION_KEY} or not isinstance(inner, dict):
        raise DocumentError('is not a registration body, which is {"schema": <a JSON Schema object>} and nothing else')
    return inner


def declared_version(schema: Mapping[str, Any]) -> Any:
    """The version a schema names in ``x-contract.version``, whatever it is; None when it names none."""
    meta = schema.get("x-contract")
    return meta.get("version") if isinstance(meta, dict) else None
