import copy
import json
from typing import Any

import pytest

from contracts.asyncapi import asyncapi_document, message_name
from contracts.bureau import CaseSubmitted
from contracts.catalogue import CATALOGUE
from gateway.registry import (
    ContractVersion,
    Numbered,
    Refusal,
    RegistrationRefused,
    Registry,
    fingerprint,
    load_registry,
    numbered,
    problems_with,
)
from tests.factories import case_submitted

SCHEMA = CaseSubmitted.CONTRACT.json_schema


def test_every_contract_in_code_is_a_valid_registry_version() -> None:
    for (contract_id, _), declared in CATALOGUE.items():
        assert problems_with(contract_id, declared.json_schema) == [], contract_id


def test_the_registry_refuses_schemas_that_leave_a_field_unclassed_or_the_model_open() -> None:
    unclassed = copy.deepcopy(SCHEMA)
    del unclassed["properties"]["contact_phone"]["x-sharing"]
    assert any("contact_phone" in p for p in problems_with("bureau.case-submitted", unclassed))
    open_model = copy.deepcopy(SCHEMA) | {"additionalProperties": True}
    assert any("closed" in p for p in problems_with("bureau.case-submitted", open_model))
    assert any("owner" in p for p in problems_with("market.case-submitted", SCHEMA))
    assert problems_with("bureau.case-submitted", {"type": "nonsense"})[0].startswith("not a valid JSON Schema")


def test_fingerprints_ignore_key_order_and_the_latest_version_is_found() -> None:
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert Registry.from_catalogue().latest("bureau.case-submitted").version == 1  # type: ignore[union-attr]
    assert Registry.from_catalogue().latest("bureau.nothing") is None


def test_the_asyncapi_document_names_every_contract_and_each_department_channel() -> None:
    document = asyncapi_document(c.json_schema for c in CATALOGUE.values())
    assert document["asyncapi"] == "3.0.0"
    assert message_name("bureau.case-submitted", 1) in document["components"]["messages"]
    housing_in = document["channels"]["deliver_housing"]["messages"]
    assert message_name("bureau.case-submitted", 1) in housing_in
    assert document["operations"]["planning_publishes"]["action"] == "send"
    assert document["channels"]["ingress_planning"]["address"] == "ingress.planning"


def _with(change: dict[str, object], meta: dict[str, object] | None = None) -> dict[str, object]:
    schema = copy.deepcopy(SCHEMA)
    schema.update(change)
    if meta:
        schema["x-contract"] = {**schema["x-contract"], **meta}
    return schema


def test_a_schema_that_refers_outside_itself_or_to_nothing_is_refused() -> None:
    for reference in ("https://example.org/schema.json", "other.json#/x", "#/$defs/Nowhere", "#/properties/zz"):
        schema = copy.deepcopy(SCHEMA)
        schema["properties"]["agent"] = {"$ref": reference, "x-sharing": "not_shared"}
        assert any("$ref" in p for p in problems_with("bureau.case-submitted", schema)), reference


def test_patterns_must_run_on_a_linear_time_engine_and_pattern_properties_are_refused() -> None:
    schema = copy.deepcopy(SCHEMA)
    schema["properties"]["agent"] = {"type": "string", "pattern": "^(a)\\1$", "x-sharing": "not_shared"}
    assert any("RE2" in p for p in problems_with("bureau.case-submitted", schema))
    schema["properties"]["agent"] = {"type": "object", "patternProperties": {"^x": {}}, "x-sharing": "not_shared"}
    assert any("patternProperties" in p for p in problems_with("bureau.case-submitted", schema))


def test_a_backtracking_pattern_is_registered_and_checked_in_linear_time() -> None:
    """On Python's engine this check would not end (2**5000 ways to split the a's); RE2 answers at once."""
    schema = copy.deepcopy(SCHEMA)
    schema["properties"]["agent"] = {"type": "string", "pattern": "^(a+)+$", "x-sharing": "not_shared"}
    assert problems_with("bureau.case-submitted", schema) == []
    version = ContractVersion.from_schema(schema)
    assert version.compiled is None  # the compiled validator would use Python's engine: not for patterns
    payload = case_submitted().model_dump(mode="json") | {"agent": "a" * 5000 + "!"}
    assert version.violations(payload) == ["agent: does not match the contract's pattern"]
    assert version.violations(payload | {"agent": "a" * 5000}) == []


def test_publishers_and_consumers_must_be_departments_with_topics() -> None:
    for role, names in (("consumers", ["planning", "nosuchdept"]), ("consumers", ["exchange"]),
                        ("publishers", ["exchange"]), ("consumers", [["planning"]])):
        problems = problems_with("bureau.case-submitted", _with({}, {role: names}))
        assert any(f"x-contract.{role}" in p for p in problems), (role, names)


def test_schemas_too_large_or_too_deep_and_odd_field_names_are_refused() -> None:
    deep: dict[str, object] = {"type": "object"}
    for _ in range(40):
        deep = {"type": "object", "properties": {"x": deep}}
    schema = copy.deepcopy(SCHEMA)
    schema["properties"]["agent"] = deep | {"x-sharing": "not_shared"}
    assert "levels deep" in problems_with("bureau.case-submitted", schema)[0]
    schema = copy.deepcopy(SCHEMA)
    schema["properties"]["x" * 100] = {"type": "string", "x-sharing": "unconditional"}
    assert any("a name is" in p for p in problems_with("bureau.case-submitted", schema))


# --- numbering: versions are numbered by what is registered ----------------------------------------------------------


def _version(schema: dict[str, object], version: object) -> dict[str, object]:
    changed = copy.deepcopy(schema)
    meta = changed["x-contract"]
    assert isinstance(meta, dict)
    if version is None:
        del meta["version"]
    else:
        meta["version"] = version
    return changed


V2 = _with({"description": "the second version"})
REGISTERED = {1: fingerprint(SCHEMA), 2: fingerprint(_version(V2, 2))}


def test_the_same_content_is_the_registered_version_whatever_number_it_names() -> None:
    for named in (None, 1, 2, 3, 7):
        assert numbered("bureau.case-submitted", REGISTERED, _version(SCHEMA, named)) == Numbered(1, existing=True)
    assert numbered("bureau.case-submitted", REGISTERED, _version(V2, None)) == Numbered(2, existing=True)


def test_other_content_is_the_next_free_version_named_or_not() -> None:
    v3 = _with({"description": "the third version"})
    assert numbered("bureau.case-submitted", REGISTERED, _version(v3, None)) == Numbered(3, existing=False)
    assert numbered("bureau.case-submitted", REGISTERED, _version(v3, 3)) == Numbered(3, existing=False)
    assert numbered("bureau.case-submitted", {}, _version(v3, None)) == Numbered(1, existing=False)
    # a version that is no number is the registration checks' to refuse, not the numbering's
    assert numbered("bureau.case-submitted", REGISTERED, _version(v3, "2")) == Numbered(3, existing=False)


def test_other_content_under_a_registered_number_is_refused_with_the_next_free_version() -> None:
    v3 = _with({"description": "the third version"})
    with pytest.raises(RegistrationRefused) as refused:
        numbered("bureau.case-submitted", REGISTERED, _version(v3, 2))
    assert (refused.value.kind, refused.value.next_version) == (Refusal.VERSION_TAKEN, 3)
    assert str(refused.value).startswith("version 2 of bureau.case-submitted is registered with other content; "
                                         "the next free version is 3")


def test_a_number_past_the_next_free_one_is_refused_as_a_gap() -> None:
    v3 = _with({"description": "the third version"})
    for named, skipped in ((4, "version 3"), (9, "versions 3 to 8")):
        with pytest.raises(RegistrationRefused) as refused:
            numbered("bureau.case-submitted", REGISTERED, _version(v3, named))
        assert (refused.value.kind, refused.value.next_version) == (Refusal.VERSION_SKIPPED, 3)
        assert f"would skip {skipped}: the next free version is 3" in str(refused.value)


def test_a_version_that_is_a_boolean_is_refused() -> None:
    assert "x-contract.version must be a positive integer" in problems_with("bureau.case-submitted",
                                                                            _with({}, {"version": True}))


class StoredVersions:
    """The registry's table, as ``load_registry`` reads it."""

    def __init__(self, schemas: list[dict[str, Any]]) -> None:
        self.schemas = schemas

    async def fetch(self, query: str) -> list[dict[str, Any]]:
        return [{"contract_id": s["x-contract"]["id"], "version": s["x-contract"]["version"],
                 "schema": json.dumps(s)} for s in self.schemas]


async def test_a_reload_keeps_the_versions_it_knows_and_builds_a_changed_one_again() -> None:
    other = next(d.json_schema for (cid, _), d in CATALOGUE.items() if cid != "bureau.case-submitted")
    stored = StoredVersions([SCHEMA, other])
    first = await load_registry(stored)  # type: ignore[arg-type]
    again = await load_registry(stored, known=first)  # type: ignore[arg-type]
    for version in first:
        assert again.get(version.id, version.version) is version  # its validators are not compiled again
    changed = copy.deepcopy(SCHEMA)
    changed["properties"]["contact_phone"]["description"] = "a changed description"
    stored.schemas = [changed, other]
    reloaded = await load_registry(stored, known=again)  # type: ignore[arg-type]
    rebuilt = reloaded.get("bureau.case-submitted", 1)
    assert rebuilt is not None and rebuilt is not first.get("bureau.case-submitted", 1)
    assert rebuilt.schema == changed
    kept = reloaded.get(other["x-contract"]["id"], other["x-contract"]["version"])
    assert kept is first.get(other["x-contract"]["id"], other["x-contract"]["version"])
