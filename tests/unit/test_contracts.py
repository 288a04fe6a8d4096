from datetime import datetime

import pytest

from contracts import bureau, bureau_v1
from contracts.base import Event, Sharing, contract, field_sharing, received_view, shared
from contracts.bureau import CaseSubmitted, OpinionIssued
from contracts.catalogue import CATALOGUE
from tests.factories import case_submitted, conflict_raised


def test_every_field_of_every_contract_has_a_sharing_class() -> None:
    for declared in CATALOGUE.values():
        schema = declared.json_schema
        assert set(field_sharing(schema)) == set(schema["properties"])
        for name, prop in schema["properties"].items():
            assert prop["x-sharing"] in {s.value for s in Sharing}, (declared.id, name)
            if prop["x-sharing"] == Sharing.CONDITIONAL:
                assert prop["x-legal-basis"], (declared.id, name)


def test_a_field_without_a_sharing_class_cannot_be_declared() -> None:
    with pytest.raises(ValueError, match="without a sharing class"):
        @contract("bureau.bad-contract", version=1, consumers=["planning"])
        class Bad(Event):
            case_id: str = shared("case")
            loose: str


def test_a_conditional_field_needs_a_legal_basis() -> None:
    with pytest.raises(ValueError, match="legal basis"):
        shared("phone", sharing=Sharing.CONDITIONAL)


def test_contract_ids_name_their_owner_and_publishers_include_it() -> None:
    assert CaseSubmitted.CONTRACT.owner == "bureau"
    assert "bureau" in CaseSubmitted.CONTRACT.publishers
    assert OpinionIssued.CONTRACT.publishers >= {"planning", "bureau"}


def test_contracts_are_closed() -> None:
    assert CaseSubmitted.CONTRACT.json_schema["additionalProperties"] is False


def test_a_consumer_view_accepts_withheld_fields() -> None:
    full = case_submitted().model_dump(mode="json")
    withheld = {k: v for k, v in full.items() if k not in {"contact_person", "contact_phone", "agent"}}
    view = received_view(CaseSubmitted).model_validate(withheld)
    assert isinstance(view, CaseSubmitted)
    assert view.contact_phone is None
    assert isinstance(view.submitted_at, datetime)
    with pytest.raises(ValueError):
        received_view(CaseSubmitted).model_validate({k: v for k, v in withheld.items() if k != "case_id"})


def test_a_first_version_reads_in_its_successors_terms_without_statutory_grounds() -> None:
    current = conflict_raised(bureau.Refusal(department="environment", item_code="EEB-101", reasons=["红线"],
                                             grounds=[bureau.RefusalGround.ECOLOGICAL_RED_LINE]))
    first = bureau_v1.ConflictRaised.model_validate(
        current.model_dump() | {"refusals": [r.model_dump(exclude={"grounds"}) for r in current.refusals]})
    upgraded = first.upgraded()
    assert upgraded.refusals[0].grounds == [] and not upgraded.refusals[0].binding
    assert upgraded.model_dump(exclude={"refusals"}) == current.model_dump(exclude={"refusals"})
    assert bureau_v1.ConflictRaised.CONTRACT.key == ("bureau.conflict-raised", 1)
    assert bureau.ConflictRaised.CONTRACT.key == ("bureau.conflict-raised", 2)
