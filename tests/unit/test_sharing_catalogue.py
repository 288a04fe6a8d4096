"""The sharing catalogue from contracts and agreements in force, and the ODCS v3 documents of the contracts."""

from __future__ import annotations

import json
from importlib.resources import files

from jsonschema import Draft202012Validator
from open_data_contract_standard.model import OpenDataContractStandard

from contracts.catalogue import CATALOGUE
from contracts.odcs import odcs_document
from gateway.registry import Registry
from gateway.sharing_catalogue import InForce, catalogue, service_levels
from tests.unit.test_masks import NESTED_VERSION

REGISTRY = Registry.from_catalogue()


def entry(entries: list, contract: str, path: str) -> dict:  # type: ignore[type-arg]
    [found] = [e.model_dump() for e in entries if e.contract == contract and e.path == path]
    return found  # type: ignore[no-any-return]


def receivers(found: dict) -> dict[str, list[str]]:  # type: ignore[type-arg]
    return {r["department"]: r["agreements"] for r in found["receivers"]}


def test_every_field_of_every_contract_is_in_the_catalogue_with_its_class_and_owner() -> None:
    entries = catalogue(REGISTRY, [])
    latest = {cid: max(v for c, v in CATALOGUE if c == cid) for cid, _ in CATALOGUE}
    assert {e.contract for e in entries} == set(latest)
    assert all(e.version == latest[e.contract] for e in entries)
    phone = entry(entries, "bureau.case-submitted", "contact_phone")
    assert phone["sharing"] == "conditional" and phone["owner"] == "bureau" and phone["legal_basis"]
    assert phone["mask"] == "last-characters" and phone["receivers"] == []
    assert set(phone["masked_for"]) == set(CATALOGUE[("bureau.case-submitted", 1)].consumers)
    agent = entry(entries, "bureau.case-submitted", "agent")
    assert agent["receivers"] == [] and agent["masked_for"] == []
    name = entry(entries, "bureau.case-submitted", "project/name")  # nested, by path, with its holder's class
    assert name["sharing"] == "unconditional" and not name["declared"]
    assert set(receivers(name)) == set(CATALOGUE[("bureau.case-submitted", 1)].consumers)


def test_a_conditional_field_lists_who_receives_it_under_which_agreement() -> None:
    agreements = [InForce("AGR-1", "bureau.case-submitted", "housing", frozenset({"contact_phone"})),
                  InForce("AGR-2", "market.business-registration", "environment",
                          frozenset({"legal_representative"}))]
    entries = catalogue(REGISTRY, agreements)
    phone = entry(entries, "bureau.case-submitted", "contact_phone")
    assert receivers(phone) == {"housing": ["AGR-1"]} and "housing" not in phone["masked_for"]
    assert "planning" in phone["masked_for"]
    assert receivers(entry(entries, "market.business-registration", "legal_representative")) == \
        {"environment": ["AGR-2"]}
    assert receivers(entry(entries, "bureau.case-submitted", "case_id"))["housing"] == []  # declared consumer


def test_agreements_for_one_case_each_are_counted_by_case_and_the_other_records_stay_masked() -> None:
    """Most agreements are for one case: a department that has such agreements alone receives the field of those
    cases' records (counted, not listed: there are as many as cases open) and the mask of every other record's; with
    an agreement for every record as well, it is listed under that one alone."""
    scoped = [InForce(f"AGR-C{n}", "bureau.case-submitted", "housing", frozenset({"contact_phone"}), f"G-{n % 3}")
              for n in range(5)]  # five agreements, three cases
    water = InForce("AGR-W", "bureau.case-submitted", "water", frozenset({"contact_person"}), "G-0")
    phone = entry(catalogue(REGISTRY, [*scoped, water]), "bureau.case-submitted", "contact_phone")
    assert [r for r in phone["receivers"] if r["department"] == "housing"] == [
        {"department": "housing", "agreements": [], "cases": 3}]
    assert "housing" in phone["masked_for"]
    assert "water" not in receivers(phone) and "water" in phone["masked_for"]  # its agreement is for another field

    general = InForce("AGR-G", "bureau.case-submitted", "housing", frozenset({"contact_phone"}))
    phone = entry(catalogue(REGISTRY, [*scoped, general]), "bureau.case-submitted", "contact_phone")
    assert [r for r in phone["receivers"] if r["department"] == "housing"] == [
        {"department": "housing", "agreements": ["AGR-G"], "cases": 0}]
    assert "housing" not in phone["masked_for"]


def test_an_agreement_makes_a_department_that_is_not_a_consumer_receive_the_unconditional_fields() -> None:
    entries = catalogue([NESTED_VERSION], [InForce("AGR-9", NESTED_VERSION.id, "planning",
                                                   frozenset({"owner/phone", "contacts/*/name"}))])
    assert receivers(entry(entries, NESTED_VERSION.id, "case_id"))["planning"] == ["AGR-9"]
    assert receivers(entry(entries, NESTED_VERSION.id, "owner/phone")) == {"planning": ["AGR-9"]}
    assert entry(entries, NESTED_VERSION.id, "owner/phone")["masked_for"] == ["bureau", "housing"]
    assert "planning" not in receivers(entry(entries, NESTED_VERSION.id, "owner/note"))  # not shared, nested
    assert entry(entries, NESTED_VERSION.id, "capital")["masked_for"] == ["bureau", "housing", "planning"]
    assert receivers(entry(entries, NESTED_VERSION.id, "remarks/*")) == {}


def test_every_contract_has_an_odcs_document_the_standard_loads_and_its_schema_accepts() -> None:
    levels = service_levels()
    assert levels.answer_within_working_days == 10 and levels.delivery_retention_days == 14

    standard = json.loads(files("open_data_contract_standard").joinpath("schema.json").read_text())
    validator = Draft202012Validator(standard)
    for declared in CATALOGUE.values():
        document = odcs_document(declared.json_schema, levels)
        assert not list(validator.iter_errors(document)), declared.id
        loaded = OpenDataContractStandard.model_validate(document)
        assert loaded.name == declared.id and loaded.kind == "DataContract"


def test_the_odcs_document_classifies_every_field_and_states_owner_purpose_limits_and_service_levels() -> None:
    declared = CATALOGUE[("bureau.case-submitted", 1)]
    loaded = OpenDataContractStandard.model_validate(odcs_document(declared.json_schema, service_levels()))
    assert loaded.description and loaded.description.purpose and "contact_phone" in (loaded.description.limitations
                                                                                     or "")
    [table] = loaded.schema_ or []
    fields = {p.name: p for p in table.properties or []}
    assert {n: p.classification for n, p in fields.items() if n in {"case_id", "contact_phone", "agent"}} == \
        {"case_id": "unconditional", "contact_phone": "conditional", "agent": "not_shared"}
    custom = {c.property: c.value for c in fields["contact_phone"].customProperties or []}
    assert custom["mask"] == {"kind": "last-characters", "keep": 4} and "第十四条" in custom["legalBasis"]
    assert [p.name for p in fields["project"].properties or []][:2] == ["name", "project_type"]
    slas = {(s.property, s.element): s.value for s in loaded.slaProperties or []}
    assert slas[("answerWithin", "contact_person, contact_phone")] == 10
    assert slas[("retention", "deliveries")] == 14 and slas[("retention", "record")] == "unlimited"
    assert isinstance(loaded.team, list) and loaded.team[0].username == "bureau" and loaded.team[0].role == "owner"
    assert {r.role for r in loaded.roles or []} == set(declared.consumers)


def test_a_nested_contract_registered_by_hand_has_its_nested_classes_in_its_odcs_document() -> None:
    document = odcs_document(NESTED_VERSION.schema, service_levels())
    [table] = document["schema"]
    owner = next(p for p in table["properties"] if p["name"] == "owner")
    assert {p["name"]: p["classification"] for p in owner["properties"]} == \
        {"name": "unconditional", "phone": "conditional", "id_number": "conditional", "note": "not_shared"}
    contacts = next(p for p in table["properties"] if p["name"] == "contacts")
    assert contacts["items"]["properties"][0]["classification"] == "conditional"
