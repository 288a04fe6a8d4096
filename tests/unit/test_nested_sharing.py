"""Classes on nested objects and array items: applied by the projection, and a class the gateway cannot apply is
refused, at registration (``problems_with``) and when a contract is declared in code."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from contracts.base import Event, Sharing, contract, received_view, shared
from contracts.masks import KeyedHash, LastCharacters
from gateway.agreements import Agreement, AgreementPolicy, Status
from gateway.registry import problems_with
from gateway.routing import visible_fields
from tests.factories import T0
from tests.unit.test_masks import BASIS, NESTED, NESTED_VERSION

CONDITIONAL: dict[str, Any] = {"type": "string", "x-sharing": "conditional", "x-legal-basis": BASIS}


def with_field(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    changed = copy.deepcopy(NESTED)
    changed["properties"][name] = schema
    if required:
        changed["required"].append(name)
    return changed


def refused(schema: dict[str, Any]) -> list[str]:
    return problems_with("market.owners-declared", schema)


def test_a_contract_with_nested_classes_registers_and_each_is_known_by_its_path() -> None:
    assert refused(NESTED) == []
    assert NESTED_VERSION.sharing["owner/phone"] is Sharing.CONDITIONAL
    assert NESTED_VERSION.sharing["deputy/note"] is Sharing.NOT_SHARED
    assert NESTED_VERSION.sharing["contacts/*/name"] is Sharing.CONDITIONAL
    assert "contacts/*/role" not in NESTED_VERSION.sharing  # no class of its own: it goes where its item goes
    assert {"owner/phone", "remarks/*", "capital"} <= NESTED_VERSION.conditional


def test_an_agreement_may_grant_a_nested_conditional_member_by_its_path() -> None:
    agreement = Agreement(
        id="AGR-1", contract_id=NESTED_VERSION.id, provider="market", consumer="housing",
        fields=frozenset({"owner/phone", "officer"}), purpose="site visit", legal_basis=BASIS, valid_from=T0,
        valid_until=T0 + timedelta(days=30), status=Status.APPROVED, requested_at=T0, remind_at=T0, due_at=T0)
    grant = AgreementPolicy([agreement]).grant("housing", NESTED_VERSION, "C-1", T0)
    assert visible_fields(NESTED_VERSION, grant) - NESTED_VERSION.unconditional == {"owner/phone"}


@pytest.mark.parametrize("keyword", ["oneOf", "anyOf"])
def test_a_class_inside_a_choice_between_schemas_is_refused(keyword: str) -> None:
    choice = {"x-sharing": "unconditional", keyword: [
        {"type": "object", "properties": {"a": CONDITIONAL}}, {"type": "object", "properties": {"b": {}}}]}
    assert any(keyword in p and "cannot apply" in p for p in refused(with_field("choice", choice)))


def test_a_class_under_additional_properties_or_if_then_is_refused() -> None:
    free = {"type": "object", "x-sharing": "unconditional", "additionalProperties": CONDITIONAL}
    assert any("additionalProperties" in p for p in refused(with_field("free", free)))
    conditioned = {"type": "object", "x-sharing": "unconditional", "if": {"properties": {"a": {"const": 1}}},
                   "then": {"properties": {"b": CONDITIONAL}}}
    assert any("then" in p for p in refused(with_field("conditioned", conditioned)))


def test_a_nullable_choice_is_followed_and_a_defined_schema_reached_through_a_real_choice_is_refused() -> None:
    assert refused(with_field("maybe", {"anyOf": [{"$ref": "#/$defs/Person"}, {"type": "null"}],
                                        "x-sharing": "unconditional"})) == []
    either = {"x-sharing": "unconditional", "oneOf": [{"$ref": "#/$defs/Person"}, {"type": "string"}]}
    assert any("#/$defs/Person" in p for p in refused(with_field("either", either)))


def test_an_unknown_or_misplaced_mask_is_refused() -> None:
    for mask, said in (({"kind": "reverse"}, "kind"), ({"kind": "band", "bounds": [100]}, "type"),
                       ({"kind": "last-characters", "keep": 99}, "keep")):
        assert any(said in p for p in refused(with_field("x", CONDITIONAL | {"x-mask": mask}))), mask
    unconditional = {"type": "string", "x-sharing": "unconditional", "x-mask": {"kind": "keyed-hash"}}
    assert any("conditional fields" in p for p in refused(with_field("x", unconditional)))
    inherited = {"type": "object", "x-sharing": "unconditional",
                 "properties": {"inner": {"type": "string", "x-mask": {"kind": "keyed-hash"}}}}
    assert any("inner" in p for p in refused(with_field("x", inherited)))


def test_nested_classes_need_what_top_level_ones_need() -> None:
    no_basis = {"type": "object", "x-sharing": "unconditional",
                "properties": {"inner": {"type": "string", "x-sharing": "conditional"}}}
    assert any("x/inner" in p and "x-legal-basis" in p for p in refused(with_field("x", no_basis)))
    unknown = {"type": "object", "x-sharing": "unconditional", "properties": {"inner": {"x-sharing": "secret"}}}
    assert any("x/inner" in p for p in refused(with_field("x", unknown)))


def test_constraints_a_withheld_member_would_break_are_refused() -> None:
    elsewhere = {"type": "object", "x-sharing": "unconditional", "properties": {"inner": CONDITIONAL},
                 "allOf": [{"required": ["inner"]}]}
    assert any("required" in p for p in refused(with_field("x", elsewhere)))
    counted = {"type": "object", "x-sharing": "unconditional", "properties": {"inner": CONDITIONAL},
               "minProperties": 1}
    assert any("minProperties" in p for p in refused(with_field("x", counted)))
    at_least_one = {"type": "array", "x-sharing": "unconditional", "items": CONDITIONAL, "minItems": 1}
    assert any("minItems" in p for p in refused(with_field("x", at_least_one)))
    subject = copy.deepcopy(NESTED)
    subject["properties"]["case_id"] = CONDITIONAL
    assert any("subject" in p and "unconditional" in p for p in refused(subject))


class Person(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    phone: str = shared("phone", sharing=Sharing.CONDITIONAL, legal_basis=BASIS, mask=LastCharacters(4))
    home: str = shared("home address", sharing=Sharing.NOT_SHARED)


class Firm(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = shared("name", sharing=Sharing.CONDITIONAL, legal_basis=BASIS)


def test_a_code_contract_whose_class_the_gateway_cannot_apply_is_refused_when_declared() -> None:
    with pytest.raises(ValueError, match="cannot apply"):
        @contract("market.party-declared", version=1, consumers=["bureau"])
        class PartyDeclared(Event):
            case_id: str = shared("case")
            party: Person | Firm = shared("a person or a firm")
    with pytest.raises(ValueError, match="only a conditional field has a mask"):
        shared("phone", mask=KeyedHash())


def test_a_consumer_model_receives_nested_members_withheld_or_masked() -> None:
    class Visit(Event):  # not declared as a contract: the view is about the model
        case_id: str = shared("case")
        owner: Person = shared("owner")
        others: list[Person] = shared("others")

    view = received_view(Visit).model_validate(
        {"case_id": "G-1", "owner": {"name": "王", "phone": "****5678"}, "others": [{"name": "李", "phone": "138"}]})
    assert view.owner.phone == "****5678" and view.owner.home is None and view.others[0].phone == "138"
    assert isinstance(view, Visit) and isinstance(view.owner, Person)
