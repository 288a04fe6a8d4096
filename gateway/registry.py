"""The contract versions the gateway enforces, each with its compiled validator and sharing classes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from contracts.base import CATALOGUE, Contract, Sharing, field_sharing

FORMATS = FormatChecker(formats=["date-time", "date", "email"])


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
    sharing: dict[str, Sharing] = field(init=False)
    validator: Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        Draft202012Validator.check_schema(self.schema)
        object.__setattr__(self, "sharing", field_sharing(self.schema))
        object.__setattr__(self, "validator", Draft202012Validator(self.schema, format_checker=FORMATS))

    @classmethod
    def of(cls, contract: Contract) -> ContractVersion:
        return cls(
            id=contract.id, version=contract.version, owner=contract.owner, publishers=contract.publishers,
            consumers=contract.consumers, subject_field=contract.subject_field,
            recipient_field=contract.recipient_field, schema=contract.json_schema,
        )

    def fields_with(self, *classes: Sharing) -> frozenset[str]:
        return frozenset(name for name, sharing in self.sharing.items() if sharing in classes)

    def violations(self, payload: Any) -> list[str]:
        errors = sorted(self.validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors[:10]]


class Registry:
    """In-memory view of the registered contract versions, looked up on every routed event."""

    def __init__(self, versions: Iterable[ContractVersion] = ()) -> None:
        self._versions: dict[tuple[str, int], ContractVersion] = {}
        for version in versions:
            self.add(version)

    @classmethod
    def from_catalogue(cls) -> Registry:
        return cls(ContractVersion.of(c) for c in CATALOGUE.values())

    def add(self, version: ContractVersion) -> None:
        self._versions[(version.id, version.version)] = version

    def get(self, contract_id: str, version: int) -> ContractVersion | None:
        return self._versions.get((contract_id, version))

    def __iter__(self) -> Any:
        return iter(self._versions.values())

    def contract_ids(self) -> set[str]:
        return {cid for cid, _ in self._versions}
