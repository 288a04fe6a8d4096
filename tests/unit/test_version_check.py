"""What `concord contracts check` says of contract versions against what is registered (no registry: the
registered versions are given)."""

from __future__ import annotations

import copy
from typing import Any

from contracts.compatibility import Mode
from contracts.documents import ContractDocument, contract_document
from gateway.version_check import Standing, check_versions

ID = "market.licence"


def licence(version: int | None, **extra_fields: dict[str, Any]) -> dict[str, Any]:
    """A hand-written contract of market regulation, in the layout `concord contracts docs` writes."""
    schema: dict[str, Any] = {
        "type": "object", "additionalProperties": False, "title": "LicenceIssued",
        "properties": {
            "case_id": {"type": "string", "x-sharing": "unconditional"},
            "scope": {"type": "string", "x-sharing": "unconditional"},
            **extra_fields,
        },
        "required": ["case_id", "scope"],
        "x-contract": {"id": ID, "owner": "market", "publishers": ["market"], "consumers": ["bureau"],
                       "subject": "case_id"},
    }
    if version is not None:
        schema["x-contract"]["version"] = version
    return schema


def doc(schema: dict[str, Any]) -> ContractDocument:
    return contract_document(schema)


CAPITAL = {"type": "number", "x-sharing": "unconditional"}
REGISTERED = {1: licence(1)}


def test_a_registered_version_unchanged_is_registered() -> None:
    [verdict] = check_versions([doc(licence(1))], REGISTERED, Mode.BACKWARD)
    assert (verdict.standing, verdict.version, verdict.lines) == (Standing.SAME, 1, ["market.licence v1: registered"])
    [unnamed] = check_versions([doc(licence(None))], REGISTERED, Mode.BACKWARD)
    assert unnamed.lines == ["market.licence: the same content as registered v1: publishing changes nothing"]


def test_a_registered_version_that_changed_says_how() -> None:
    changed = licence(1, capital=CAPITAL)
    changed["properties"]["scope"]["maxLength"] = 100
    [verdict] = check_versions([doc(changed)], REGISTERED, Mode.BACKWARD)
    assert verdict.standing is Standing.CHANGED and not verdict.standing.passes
    assert verdict.lines == [
        "market.licence v1: differs from registered v1:",
        '  added   #/properties/capital: {"type":"number","x-sharing":"unconditional"}',
        "  added   #/properties/scope/maxLength: 100",
    ]


def test_a_new_version_is_checked_under_the_contracts_mode_and_says_which_changes_break_it() -> None:
    optional = licence(2, capital=CAPITAL)
    required = copy.deepcopy(optional)
    required["required"].append("capital")
    [compatible] = check_versions([doc(optional)], REGISTERED, Mode.BACKWARD)
    assert compatible.lines == ["market.licence v2: new, compatible under BACKWARD"]
    [breaking] = check_versions([doc(required)], REGISTERED, Mode.BACKWARD)
    assert breaking.standing is Standing.INCOMPATIBLE
    assert breaking.lines == ["market.licence v2: new, incompatible under BACKWARD:",
                              "  REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/capital"]
    [anything] = check_versions([doc(required)], REGISTERED, Mode.NONE)
    assert anything.standing is Standing.NEW


def test_a_version_left_out_becomes_the_next_free_one() -> None:
    [verdict] = check_versions([doc(licence(None, capital=CAPITAL))], REGISTERED, Mode.BACKWARD)
    assert (verdict.standing, verdict.version) == (Standing.NEW, 2)
    assert verdict.lines == ["market.licence: new, would be v2, compatible under BACKWARD"]


def test_a_version_that_would_leave_a_gap_names_the_next_free_one() -> None:
    [verdict] = check_versions([doc(licence(5, capital=CAPITAL))], REGISTERED, Mode.BACKWARD)
    assert (verdict.standing, verdict.version) == (Standing.SKIPS, 2)
    assert verdict.lines == ["market.licence v5: version 5 of market.licence would skip versions 2 to 4: the next "
                             "free version is 2 (name version 2 in x-contract, or leave the version out)"]


def test_what_the_registry_would_refuse_is_said() -> None:
    unclassed = licence(2, capital={"type": "number"})
    [verdict] = check_versions([doc(unclassed)], REGISTERED, Mode.BACKWARD)
    assert verdict.standing is Standing.INVALID
    assert verdict.lines == ["market.licence v2: the registry would refuse it:",
                             "  field 'capital' has no sharing class (x-sharing: unconditional, conditional, "
                             "not_shared)"]


def test_versions_checked_together_follow_one_another_as_publishing_them_would() -> None:
    v2 = licence(2, capital=CAPITAL)
    v3 = licence(3, capital={"type": "string", "x-sharing": "unconditional"})  # compatible with v1, not with v2
    verdicts = check_versions([doc(v2), doc(v3), doc(licence(None, capital=CAPITAL))], {}, Mode.BACKWARD)
    assert [(v.standing, v.version) for v in verdicts] == [
        (Standing.SKIPS, 1), (Standing.SKIPS, 1), (Standing.NEW, 1)]
    verdicts = check_versions([doc(v2), doc(v3)], REGISTERED, Mode.BACKWARD)
    assert [(v.standing, v.version) for v in verdicts] == [(Standing.NEW, 2), (Standing.INCOMPATIBLE, 3)]
    assert verdicts[1].details == ("TYPE_CHANGED #/properties/capital",)
    assert check_versions([doc(v3)], REGISTERED, Mode.BACKWARD)[0].standing is Standing.SKIPS
    assert check_versions([doc(licence(None, capital=v3["properties"]["capital"]))], REGISTERED,
                          Mode.BACKWARD)[0].standing is Standing.NEW
    [again] = check_versions([doc(v2), doc(licence(2))], REGISTERED, Mode.BACKWARD)[1:]
    assert again.lines[0] == "market.licence v2: the same content as registered v1: publishing changes nothing"
    [changed] = check_versions([doc(v2), doc(licence(2, scope_note=CAPITAL))], REGISTERED, Mode.BACKWARD)[1:]
    assert changed.lines[0] == "market.licence v2: differs from v2 (checked above):"
