import copy

from contracts import CATALOGUE
from contracts.asyncapi import asyncapi_document, message_name
from contracts.bureau import CaseSubmitted
from gateway.registry import Registry, fingerprint, problems_with

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
