"""The contract registry: every version of every contract, kept in PostgreSQL, and the in-memory view the
router enforces (each version with its compiled validator and the sharing class of each field).

A version is one JSON Schema document. Besides the payload's shape it carries what the gateway enforces:
``x-sharing`` on every field (``x-legal-basis`` on conditional ones) and ``x-contract`` (owner, publishers,
consumers, the subject field holding the case id, and the recipient field of addressed contracts)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Any

import asyncpg
import fastjsonschema
import re2
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator

from contracts.base import CONTRACT_ID, Sharing
from contracts.catalogue import CATALOGUE
from contracts.compatibility import Mode, incompatibilities
from contracts.departments import DEPARTMENTS, EXCHANGE
from contracts.documents import declared_version, is_version_number
from contracts.sharing import Member, cut_alone, resolve
from contracts.sharing import members as members_of
from contracts.sharing import problems as sharing_problems
from gateway.audit.entry import AuditAction
from gateway.notices import Notices

log = logging.getLogger("concord.registry")
FORMATS = FormatChecker(formats=["date-time", "date", "email"])
MAX_SCHEMA_BYTES = 256 * 1024
MAX_SCHEMA_DEPTH = 32
FIELD_NAME = re2.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
DEFAULT_MODE = Mode.BACKWARD  # a new contract's compatibility mode (the column's default in the migration)
_RE2 = re2.Options()
_RE2.log_errors = False


@lru_cache(maxsize=4096)
def linear(pattern: str) -> Any:
    """A contract's ``pattern``, compiled by RE2: matching takes time linear in the text, whatever the pattern
    (no backtracking), and a pattern RE2 cannot run (back-references, look-around) is refused at registration."""
    return re2.compile(pattern, options=_RE2)


def _pattern(validator: Validator, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not linear(pattern).search(instance):
        yield ValidationError("does not match the contract's pattern")


ContractValidator = validators.extend(Draft202012Validator, {"pattern": _pattern})

# Keywords that mean the same in draft 7 (what fastjsonschema compiles) as in 2020-12 (what contracts are).
# ``pattern`` is not among them: fastjsonschema would run it on Python's backtracking engine.
DRAFT7_SAFE = {
    "type", "properties", "required", "additionalProperties", "items", "enum", "const", "format", "minLength",
    "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "anyOf",
    "allOf", "oneOf", "not", "$ref", "$defs", "definitions", "minItems", "maxItems", "uniqueItems",
    "patternProperties", "propertyNames", "minProperties", "maxProperties", "contains", "if", "then", "else",
    "default", "title", "description", "examples", "$id", "$schema", "$comment", "readOnly", "writeOnly",
}
ANNOTATIONS = {"title", "description", "examples", "default", "$comment", "readOnly", "writeOnly"}
SUBSCHEMA_MAPS = {"properties", "patternProperties", "$defs", "definitions"}


def _compiles_the_same(schema: Any) -> bool:
    """Whether a compiled draft-7 validator decides exactly as a 2020-12 one would for this schema."""
    if isinstance(schema, list):
        return all(_compiles_the_same(s) for s in schema)
    if not isinstance(schema, dict):
        return True
    keywords = {k for k in schema if not k.startswith("x-")}
    if keywords - DRAFT7_SAFE:
        return False
    if "$ref" in keywords and keywords - ANNOTATIONS - {"$ref"}:
        return False  # draft 7 ignores the siblings of $ref; 2020-12 applies them
    if isinstance(schema.get("items"), list):
        return False  # a tuple in draft 7, an error in 2020-12
    for key, value in schema.items():
        if key in SUBSCHEMA_MAPS and isinstance(value, dict):
            if not all(_compiles_the_same(s) for s in value.values()):
                return False
        elif key not in ANNOTATIONS and not key.startswith("x-") and key not in {"enum", "const", "required"} \
                and not _compiles_the_same(value):
            return False
    return True


@dataclass(frozen=True)
class ContractVersion:
    id: str
    version: int
    owner: str
    publishers: frozenset[str]
    consumers: frozenset[str]
    subject_field: str
    recipient_field: str | None
    schema: dict[str, Any]
    members: dict[str, Member] = field(init=False, repr=False, compare=False)  # the top-level fields, and below
    sharing: dict[str, Sharing] = field(init=False)  # by path: every field and nested member that declares a class
    validator: Draft202012Validator = field(init=False, repr=False, compare=False)
    compiled: Callable[[Any], Any] | None = field(init=False, repr=False, compare=False)
    cuts: dict[frozenset[str], frozenset[str] | None] = field(init=False, repr=False, compare=False)  # cut_alone's

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", members_of(self.schema))
        object.__setattr__(self, "sharing", {m.path: m.sharing for top in self.members.values() for m in top.walk()
                                             if m.declared})
        object.__setattr__(self, "validator", ContractValidator(self.schema, format_checker=FORMATS))
        object.__setattr__(self, "compiled", _compiled(self.schema))
        object.__setattr__(self, "cuts", {})

    def cut_alone(self, visible: frozenset[str]) -> frozenset[str] | None:
        """The top-level fields a consumer that sees ``visible`` does not receive, when leaving them out is all its
        projection does (``contracts.sharing.cut_alone``); kept for each set of fields seen."""
        if visible not in self.cuts:
            self.cuts[visible] = cut_alone(self.members, visible)
        return self.cuts[visible]

    @classmethod
    def from_schema(cls, schema: Mapping[str, Any]) -> ContractVersion:
        meta = schema["x-contract"]
        return cls(
            id=meta["id"], version=meta["version"], owner=meta["owner"],
            publishers=frozenset(meta["publishers"]) | {meta["owner"]}, consumers=frozenset(meta["consumers"]),
            subject_field=meta["subject"], recipient_field=meta.get("recipient"), schema=dict(schema),
        )

    def fields_with(self, *classes: Sharing) -> frozenset[str]:
        return frozenset(name for name, sharing in self.sharing.items() if sharing in classes)

    @cached_property
    def unconditional(self) -> frozenset[str]:
        return self.fields_with(Sharing.UNCONDITIONAL)

    @cached_property
    def conditional(self) -> frozenset[str]:
        return self.fields_with(Sharing.CONDITIONAL)

    @cached_property
    def shareable(self) -> frozenset[str]:
        """Every field that may leave the owner at all: the exchange's record keeps these."""
        return self.fields_with(Sharing.UNCONDITIONAL, Sharing.CONDITIONAL)

    def violations(self, payload: Any) -> list[str]:
        """What is wrong with a payload, by field and rule (never with a value it holds); empty when it is
        valid. Valid payloads take the compiled validator (some microseconds); an invalid one is described by
        the reference validator."""
        if self.compiled is not None:
            try:
                self.compiled(payload)
                return []
            except fastjsonschema.JsonSchemaValueException:
                pass
        errors = sorted(self.validator.iter_errors(payload), key=lambda e: [str(p) for p in e.absolute_path])
        return [describe(e) for e in errors[:10]]


def _compiled(schema: dict[str, Any]) -> Callable[[Any], Any] | None:
    if not _compiles_the_same(schema):
        return None
    try:
        return fastjsonschema.compile(schema, handlers={})
    except Exception:  # the reference validator decides alone
        log.warning("contract %s: no compiled validator", schema.get("$id"))
        return None


def _names(values: Iterable[Any]) -> str:
    shown = ", ".join(str(v)[:64] for v in list(values)[:10])
    return shown[:300]


def describe(error: ValidationError) -> str:
    """A violation by where and which rule, in the schema's words only: the sender's values (which may be
    conditional or not shared) never appear, though the names of fields it sent may."""
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    rule, value, instance = error.validator, error.validator_value, error.instance
    if rule == "type":
        said = f"must be of type {_names(value) if isinstance(value, list) else value}"
    elif rule == "enum":
        said = f"must be one of: {_names(value)}"
    elif rule == "required":
        absent = [name for name in value if not isinstance(instance, dict) or name not in instance]
        said = f"lacks required {_names(absent)}"
    elif rule == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
        said = f"has fields the contract does not know: {_names(sorted(set(instance) - known))}"
    elif rule in ("minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum", "exclusiveMinimum",
                  "exclusiveMaximum", "multipleOf", "minProperties", "maxProperties", "format", "const"):
        said = f"breaks {rule} {str(value)[:64]}"
    elif rule == "pattern":
        said = "does not match the contract's pattern"
    else:
        said = f"breaks {rule}"
    return f"{where[:200]}: {said}"


class Registry:
    """The versions the router enforces, looked up on every routed event."""

    def __init__(self, versions: Iterable[ContractVersion] = ()) -> None:
        self._versions = {(v.id, v.version): v for v in versions}

    @classmethod
    def from_catalogue(cls) -> Registry:
        return cls(ContractVersion.from_schema(c.json_schema) for c in CATALOGUE.values())

    def get(self, contract_id: str, version: int) -> ContractVersion | None:
        return self._versions.get((contract_id, version))

    def latest(self, contract_id: str) -> ContractVersion | None:
        versions = [v for (cid, _), v in self._versions.items() if cid == contract_id]
        return max(versions, key=lambda v: v.version) if versions else None

    def __iter__(self) -> Iterator[ContractVersion]:
        return iter(self._versions.values())


async def load_registry(pool: asyncpg.Pool, known: Registry | None = None) -> Registry:
    """Every registered version the router can enforce. One it cannot (stored before today's checks) is left
    out and said in the log: its events are refused as an unknown contract, and the others flow.

    A version already in ``known`` with the same schema is taken over as it is: its validators were compiled
    once (the registry is loaded again on every change of it, and compiling every contract's validators each
    time had taken half the gateway's time under the demo)."""
    rows = await pool.fetch("SELECT contract_id, version, schema FROM gateway.contract_versions")
    versions = []
    for row in rows:
        try:
            schema = json.loads(row["schema"])
            same = known.get(row["contract_id"], row["version"]) if known is not None else None
            versions.append(same if same is not None and same.schema == schema else ContractVersion.from_schema(schema))
        except Exception:
            log.exception("contract %s v%s cannot be enforced; its events will be refused", row["contract_id"],
                          row["version"])
    return Registry(versions)


def fingerprint(schema: Mapping[str, Any]) -> str:
    """Identity of a schema's content, whatever version number it carries."""
    content = dict(schema)
    if isinstance(content.get("x-contract"), dict):
        content["x-contract"] = {k: v for k, v in content["x-contract"].items() if k != "version"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _depth(value: Any, limit: int) -> int:
    """How deep a JSON value nests (stops counting past ``limit``)."""
    if limit <= 0 or not isinstance(value, dict | list):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)


def _subschemas(schema: Any, at: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object in a schema document, with its JSON pointer."""
    if isinstance(schema, dict):
        yield at, schema
        for key, value in schema.items():
            yield from _subschemas(value, f"{at}/{str(key).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from _subschemas(value, f"{at}/{i}")


def _self_contained(schema: Mapping[str, Any]) -> list[str]:
    """What in a schema the gateway could not enforce on its own, with linear-time matching and no network:
    references outside the document, dynamic references, nested ids, patterns RE2 cannot run, and pattern
    properties (a field must be named to carry a sharing class)."""
    problems: list[str] = []
    for where, sub in _subschemas(schema):
        for keyword in ("$dynamicRef", "$recursiveRef", "patternProperties"):
            if keyword in sub:
                problems.append(f"{where}: {keyword} is not supported in contracts")
        if "$id" in sub and where != "#":
            problems.append(f"{where}: only the root may have an $id")
        reference = sub.get("$ref")
        if isinstance(reference, str) and not isinstance(resolve(schema, reference), dict | bool):
            problems.append(f"{where}: $ref {reference[:100]!r} does not name a schema within the contract "
                            "(references are never fetched)")
        pattern = sub.get("pattern")
        if isinstance(pattern, str):
            try:
                linear(pattern)
            except re2.error:
                problems.append(f"{where}: pattern {pattern[:100]!r} is not one RE2 runs in linear time")
    return problems


def problems_with(contract_id: str, schema: Mapping[str, Any]) -> list[str]:
    """Why a schema cannot be a version of this contract; empty when it can."""
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES or _depth(schema, MAX_SCHEMA_DEPTH + 1) > MAX_SCHEMA_DEPTH:
        return [f"a contract's schema is at most {MAX_SCHEMA_BYTES} bytes and {MAX_SCHEMA_DEPTH} levels deep"]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [f"not a valid JSON Schema (2020-12): {exc.message[:300]}"]
    problems = _self_contained(schema)
    if problems:
        return problems
    if not CONTRACT_ID.fullmatch(contract_id) or len(contract_id) > 128:
        problems.append(f"contract id {contract_id[:130]!r} is not <owner>.<name>")
    meta = schema.get("x-contract")
    if not isinstance(meta, dict):
        return [*problems, "x-contract (id, version, owner, publishers, consumers, subject) is missing"]
    owner = contract_id.partition(".")[0]
    if meta.get("id") != contract_id or meta.get("owner") != owner:
        problems.append(f"x-contract must name id {contract_id!r} and owner {owner!r}")
    if owner not in DEPARTMENTS and owner != EXCHANGE:
        problems.append(f"{owner!r} is not a department of the exchange")
    if not is_version_number(meta.get("version")):
        problems.append("x-contract.version must be a positive integer")
    publishers = set(DEPARTMENTS) | ({EXCHANGE} if owner == EXCHANGE else set())
    for role, members in (("publishers", publishers), ("consumers", set(DEPARTMENTS))):
        named = meta.get(role)
        if not isinstance(named, list) or not all(isinstance(m, str) for m in named) or set(named) - members:
            problems.append(f"x-contract.{role} must list departments of the exchange: {', '.join(sorted(members))}")
    if schema.get("type") != "object" or schema.get("additionalProperties") is not False:
        problems.append("a contract is a closed object (type object, additionalProperties false): "
                        "a field without a sharing class cannot travel")
    properties = schema.get("properties", {})
    for name, prop in properties.items():
        sharing = prop.get("x-sharing") if isinstance(prop, dict) else None
        if not FIELD_NAME.fullmatch(name):
            problems.append(f"field {name[:70]!r}: a name is a letter or _ then up to 63 letters, digits, _ or -")
        elif sharing not in {s.value for s in Sharing}:
            problems.append(f"field {name!r} has no sharing class (x-sharing: unconditional, conditional, not_shared)")
    problems.extend(sharing_problems(schema))
    required = schema.get("required", [])
    for role in ("subject", "recipient"):
        name = meta.get(role)
        declared = properties.get(name) if isinstance(name, str) else None
        if (role == "subject" or name is not None) and (name not in required or not isinstance(declared, dict)
                                                        or declared.get("x-sharing") != Sharing.UNCONDITIONAL):
            problems.append(f"x-contract.{role} must name a required unconditional field (every consumer routes on it)")
    if not problems:
        try:
            ContractVersion.from_schema(schema)
        except Exception as exc:  # the last word: the gateway must be able to enforce what it registers
            problems.append(f"the gateway cannot enforce this schema: {type(exc).__name__}: {str(exc)[:200]}")
    return problems


class Refusal(StrEnum):
    NOT_OWNER = "not_owner"  # only the owning department registers versions and sets the mode
    INVALID = "invalid"  # the schema cannot be a version of the contract
    INCOMPATIBLE = "incompatible"  # the contract's compatibility mode forbids the change
    VERSION_TAKEN = "version_taken"  # the version it names is registered with other content
    VERSION_SKIPPED = "version_skipped"  # the version it names would leave a gap after the registered ones


class RegistrationRefused(ValueError):
    """Why a registration was refused. ``next_version`` is the contract's next free version (for the numbering
    refusals), ``mode`` the compatibility mode that forbade the change (for ``INCOMPATIBLE``)."""

    def __init__(self, kind: Refusal, problems: list[str], next_version: int | None = None,
                 mode: Mode | None = None) -> None:
        super().__init__("; ".join(problems))
        self.kind = kind
        self.problems = problems
        self.next_version = next_version
        self.mode = mode


@dataclass(frozen=True)
class Registered:
    contract_id: str
    version: int
    created: bool


@dataclass(frozen=True)
class Numbered:
    """Which version a schema is: one registered with the same content (``existing``), or the next free one."""

    version: int
    existing: bool


def numbered(contract_id: str, registered: Mapping[int, str], schema: Mapping[str, Any]) -> Numbered:
    """The version number a schema gets, from the fingerprints of the versions registered (by version).

    The same content as a registered version is that version, whatever number it names (registering it again
    changes nothing). Other content is the next free version: it may name that number or none; naming a registered
    number (``VERSION_TAKEN``) or a later one (``VERSION_SKIPPED``) is refused, with the next free version. A
    version that is no positive integer is left to ``problems_with``."""
    content = fingerprint(schema)
    for version, print_ in sorted(registered.items()):
        if print_ == content:
            return Numbered(version, existing=True)
    free = max(registered, default=0) + 1
    named = declared_version(schema)
    if not is_version_number(named) or named == free:
        return Numbered(free, existing=False)
    if named in registered:
        raise RegistrationRefused(Refusal.VERSION_TAKEN, [
            f"version {named} of {contract_id} is registered with other content; the next free version is {free} "
            f"(name version {free} in x-contract, or leave the version out)"], next_version=free)
    skipped = f"version {free}" if named == free + 1 else f"versions {free} to {named - 1}"
    raise RegistrationRefused(Refusal.VERSION_SKIPPED, [
        f"version {named} of {contract_id} would skip {skipped}: the next free version is {free} "
        f"(name version {free} in x-contract, or leave the version out)"], next_version=free)


class RegistryStore:
    """The registry in PostgreSQL (schema ``gateway``)."""

    def __init__(self, pool: asyncpg.Pool, notices: Notices) -> None:
        self.pool = pool
        self.notices = notices

    async def contracts(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT c.id, c.owner, c.compatibility, array_agg(v.version ORDER BY v.version) AS versions"
            " FROM gateway.contracts c JOIN gateway.contract_versions v ON v.contract_id = c.id"
            " GROUP BY c.id ORDER BY c.id"
        )
        return [{"id": r["id"], "owner": r["owner"], "compatibility": r["compatibility"],
                 "versions": list(r["versions"]), "latest": r["versions"][-1]} for r in rows]

    async def versions(self, contract_id: str) -> list[int]:
        rows = await self.pool.fetch(
            "SELECT version FROM gateway.contract_versions WHERE contract_id = $1 ORDER BY version", contract_id
        )
        return [r["version"] for r in rows]

    async def schema(self, contract_id: str, version: int) -> dict[str, Any] | None:
        raw = await self.pool.fetchval(
            "SELECT schema FROM gateway.contract_versions WHERE contract_id = $1 AND version = $2", contract_id, version
        )
        return json.loads(raw) if raw else None

    async def mode(self, contract_id: str) -> Mode | None:
        raw = await self.pool.fetchval("SELECT compatibility FROM gateway.contracts WHERE id = $1", contract_id)
        return Mode(raw) if raw else None

    async def register(self, contract_id: str, schema: Mapping[str, Any], by: str) -> Registered:
        """Add a version, unless the contract's compatibility mode forbids it. The same content as a registered
        version returns that version; other content is the next free version (see ``numbered``), which the
        schema's ``x-contract.version`` may name or leave out (the stored schema then names it)."""
        schema = json.loads(json.dumps(schema))
        owner = contract_id.partition(".")[0]
        if by != owner:
            raise RegistrationRefused(Refusal.NOT_OWNER,
                                      [f"only {owner} may register versions of {contract_id}; you are {by}"])
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", contract_id)
            rows = await connection.fetch(
                "SELECT version, schema, fingerprint FROM gateway.contract_versions WHERE contract_id = $1"
                " ORDER BY version", contract_id,
            )
            number = numbered(contract_id, {r["version"]: r["fingerprint"] for r in rows}, schema)
            if number.existing:
                return Registered(contract_id, number.version, created=False)
            meta = schema.get("x-contract")
            if isinstance(meta, dict) and meta.get("version") is None:
                meta["version"] = number.version
            problems = problems_with(contract_id, schema)
            if problems:
                raise RegistrationRefused(Refusal.INVALID, problems)
            mode = Mode(await connection.fetchval(
                "SELECT compatibility FROM gateway.contracts WHERE id = $1", contract_id) or DEFAULT_MODE)
            try:
                differences = incompatibilities(mode, [json.loads(r["schema"]) for r in rows], schema)
            except Exception as exc:  # a schema the checker cannot compare is not a safe change
                raise RegistrationRefused(Refusal.INVALID, [f"could not compare with the registered versions: "
                                                            f"{type(exc).__name__}"]) from exc
            if differences:
                raise RegistrationRefused(Refusal.INCOMPATIBLE, [str(d) for d in differences], mode=mode)
            await connection.execute(
                "INSERT INTO gateway.contracts (id, owner) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                contract_id, owner,
            )
            await connection.execute(
                "INSERT INTO gateway.contract_versions (contract_id, version, schema, fingerprint, registered_by)"
                " VALUES ($1, $2, $3, $4, $5)", contract_id, number.version, json.dumps(schema), fingerprint(schema),
                by,
            )
            await self.notices.audit(connection, AuditAction.CONTRACT_REGISTERED, contract=contract_id,
                                     version=number.version, sender=by, detail=f"compatibility {mode.value}")
        self.notices.outbox.wake()
        return Registered(contract_id, number.version, created=True)

    async def set_mode(self, contract_id: str, mode: Mode, by: str) -> None:
        owner = contract_id.partition(".")[0]
        if by != owner:
            raise RegistrationRefused(Refusal.NOT_OWNER,
                                      [f"only {owner} may set the compatibility of {contract_id}; you are {by}"])
        async with self.pool.acquire() as connection, connection.transaction():
            updated = await connection.fetchval(
                "UPDATE gateway.contracts SET compatibility = $2 WHERE id = $1 RETURNING id", contract_id, mode.value
            )
            if updated is None:
                raise KeyError(contract_id)
            await self.notices.audit(connection, AuditAction.CONTRACT_COMPATIBILITY_SET, contract=contract_id,
                                     sender=by, detail=mode.value)
        self.notices.outbox.wake()

    async def sync_catalogue(self) -> list[str]:
        """Register the contracts declared in code that the registry does not have yet, in version order.
        Returns the problems found (a code version that differs from the registered one, or is refused)."""
        problems: list[str] = []
        for (contract_id, version), declared in sorted(CATALOGUE.items()):
            registered = await self.schema(contract_id, version)
            if registered is not None:
                if fingerprint(registered) != fingerprint(declared.json_schema):
                    problems.append(f"{contract_id} v{version} in code differs from the registered version")
                continue
            try:
                await self.register(contract_id, declared.json_schema, by=declared.owner)
            except RegistrationRefused as exc:
                problems.append(f"{contract_id} v{version}: {exc}")
        return problems
