"""What registering contract versions would do, worked out before anything is posted: the registry's own rules
(numbering, the registration checks, the compatibility mode) applied to the versions a publisher has, against
what is registered. ``concord contracts check`` prints it. Pure: the caller fetches what is registered."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from contracts.compatibility import Mode, incompatibilities
from contracts.documents import ContractDocument
from contracts.jsondiff import json_changes
from gateway.registry import Refusal, RegistrationRefused, fingerprint, numbered, problems_with


class Standing(StrEnum):
    SAME = "same"  # the same content as a registered version (or one checked before it): publishing answers that
    CHANGED = "changed"  # the version it names is registered with other content
    SKIPS = "skips"  # the version it names would leave a gap
    INVALID = "invalid"  # the registry's checks refuse it
    INCOMPATIBLE = "incompatible"  # new, and the contract's compatibility mode forbids the change
    NEW = "new"  # new and compatible: publishing registers it

    @property
    def passes(self) -> bool:
        return self in (Standing.SAME, Standing.NEW)


@dataclass(frozen=True)
class Verdict:
    document: ContractDocument
    standing: Standing
    version: int  # the version it is, or would become
    mode: Mode
    details: tuple[str, ...] = ()  # how it differs, the incompatible changes, or the problems
    registered: bool = True  # for SAME and CHANGED: whether ``version`` is registered, or only checked before it

    @property
    def lines(self) -> list[str]:
        """The verdict as ``concord contracts check`` prints it: a headline, then its details indented."""
        named, version, label = self.document.version, self.version, self.document.label
        where = f"registered v{version}" if self.registered else f"v{version} (checked above)"
        if self.standing is Standing.SAME:
            said = ("registered" if named == version and self.registered else
                    f"the same content as {where}: publishing changes nothing")
        elif self.standing is Standing.CHANGED:
            said = f"differs from {where}:"
        elif self.standing is Standing.SKIPS:
            said = self.details[0]
        elif self.standing is Standing.INVALID:
            said = "the registry would refuse it:"
        else:
            compatible = "compatible" if self.standing is Standing.NEW else "incompatible"
            becomes = "" if named is not None else f", would be v{version}"
            colon = ":" if self.details else ""
            said = f"new{becomes}, {compatible} under {self.mode.value}{colon}"
        shown = () if self.standing is Standing.SKIPS else self.details
        return [f"{label}: {said}", *(f"  {line}" for line in shown)]


def check_versions(documents: Iterable[ContractDocument], registered: Mapping[int, Mapping[str, Any]],
                   mode: Mode) -> list[Verdict]:
    """The verdict on each version of one contract, in the order they would be published; ``registered`` holds
    the contract's registered schemas by version, ``mode`` its compatibility mode. A version found new and
    compatible counts as registered for the ones after it, as it would be once published."""
    known = {version: dict(schema) for version, schema in registered.items()}
    verdicts = []
    for document in documents:
        verdict = _verdict(document, known, mode, set(registered))
        if verdict.standing is Standing.NEW:
            known[verdict.version] = _numbered(document.schema, verdict.version)
        verdicts.append(verdict)
    return verdicts


def _verdict(document: ContractDocument, known: Mapping[int, dict[str, Any]], mode: Mode,
             registered: set[int]) -> Verdict:
    cid, schema = document.contract_id, document.schema
    try:
        number = numbered(cid, {version: fingerprint(s) for version, s in known.items()}, schema)
    except RegistrationRefused as refused:
        taken = document.version
        if refused.kind is Refusal.VERSION_TAKEN and taken is not None:
            changes = tuple(str(c) for c in json_changes(known[taken], schema))
            return Verdict(document, Standing.CHANGED, taken, mode, changes, registered=taken in registered)
        return Verdict(document, Standing.SKIPS, refused.next_version or 0, mode, tuple(refused.problems))
    if number.existing:
        return Verdict(document, Standing.SAME, number.version, mode, registered=number.version in registered)
    candidate = _numbered(schema, number.version)
    problems = problems_with(cid, candidate)
    if problems:
        return Verdict(document, Standing.INVALID, number.version, mode, tuple(problems))
    try:
        differences = incompatibilities(mode, [known[v] for v in sorted(known)], candidate)
    except Exception as exc:  # as the registry: a schema the checker cannot compare is not a safe change
        return Verdict(document, Standing.INVALID, number.version, mode,
                       (f"could not compare with the registered versions: {type(exc).__name__}: {exc}",))
    if differences:
        return Verdict(document, Standing.INCOMPATIBLE, number.version, mode, tuple(str(d) for d in differences))
    return Verdict(document, Standing.NEW, number.version, mode)


def _numbered(schema: Mapping[str, Any], version: int) -> dict[str, Any]:
    """The schema as the registry stores it: naming its version."""
    meta = schema.get("x-contract")
    if not isinstance(meta, dict) or meta.get("version") is not None:
        return dict(schema)
    return {**schema, "x-contract": {**meta, "version": version}}
