"""Sharing that arises from the work, on the real stack: a department's review asks for conditional data when its
case needs it, waits (the case shows it), and goes on once the provider decided, by its rules or by an officer, on
a typed ground; a refusal the review cannot do without, on the provider's judgement, is escalated by the review's
rules and the coordination office's desk orders the data shared on conditions; a binding refusal escalated is
upheld; a counter-offer holding what the review needs is accepted by its rules. The typed ground goes from the API
to the exchange's notices, the audit log and the efficacy report."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timedelta
from typing import Any

from base.settings import ADMIN, Settings
from contracts.bureau import Project
from deploy.processes import AppProcesses
from services.departments.coordination import SHARING_CONDITIONS
from tests.e2e.cases import FINAL, decide, follow, officers_decide, request, submit, task_of
from tests.e2e.test_agency_service import OFFICE
from tests.e2e.test_agreement_lifecycle import agreement_actions, audit_of, changed, sent
from tests.e2e.test_sharing_agreements import payload
from tests.tools import Tail, bearer, eventually, http_client

PHARMA = Project(name="博源生物医药产业园项目", project_type="industrial", land_area_m2=30_000, floor_area_m2=36_000,
                 investment_10k_cny=20_000, industry_code="C2710", location="经开区")


async def agreement(stack: Settings, agreement_id: str, department: str) -> dict[str, Any]:
    async with http_client(base_url=stack.gateway_address, timeout=30,
                                 headers=bearer(stack.credentials(department).http_token)) as http:
        response = await http.get(f"/v1/agreements/{agreement_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def report(stack: Settings) -> dict[str, Any]:
    """The efficacy report, as ``concord report --json`` prints it."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "deploy.cli", "report", "--json",
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    return dict(json.loads(out[out.index(b"{"):]))


async def waiting_for_the_legal_representative(stack: Settings) -> tuple[str, str]:
    """A pharmaceutical plant (a high-risk industry): environment's impact review asks market regulation for the
    legal representative and waits. Returns the case and the agreement."""
    case_id = await submit(stack, PHARMA)
    view = await follow(stack, case_id, lambda v: any(
        s["hold"] == "data" and s["department"] == "environment" for s in v["stuck"]), timeout=60)
    [wait] = request(view, "EEB-101")["data_waits"]
    return case_id, wait["agreement_id"]


async def test_the_fire_acceptance_of_a_mall_asks_the_bureau_for_the_applicants_contact_and_goes_on_when_decided(
    stack: Settings, exchange: AppProcesses
) -> None:
    case_id = await submit(stack, OFFICE)
    view = await follow(stack, case_id, lambda v: v["status"] in FINAL, timeout=120)
    assert view["status"] == "completed"
    fire = request(view, "HOU-401")
    [wait] = fire["data_waits"]
    assert (wait["provider"], wait["contract_id"]) == ("bureau", "bureau.case-submitted")
    assert set(wait["fields"]) == {"contact_person", "contact_phone"}
    since, until, decided = (datetime.fromisoformat(t) for t in (wait["since"], wait["until"], fire["decided_at"]))
    assert wait["outcome"] in ("shared", "withheld") and since <= until <= decided
    at_gateway: dict[str, Any] = {}

    async def ended_with_the_case() -> bool:  # asked for this case alone: the agreement ends with it
        at_gateway.update(await agreement(stack, wait["agreement_id"], "housing"))
        return bool(at_gateway["status"] == "ended")

    await eventually(ended_with_the_case)
    assert (at_gateway["consumer"], at_gateway["provider"]) == ("housing", "bureau") and case_id in \
        at_gateway["purpose"] and at_gateway["case_id"] == case_id
    # approved; or the phone alone offered, which the review accepts; or refused on the agent's judgement, which the
    # review escalates and the office overrules: the review has the contact it cannot do without, every way
    assert wait["outcome"] == "shared" and wait["ground"] is None and fire["decision"] == "approved"
    assert at_gateway["decided_at"] is not None and at_gateway["ended_at"] is not None
    if at_gateway["asked"] is not None:  # a counter-offer accepted
        assert at_gateway["fields"] == ["contact_phone"] and at_gateway["ground"] == "not_necessary"
    assert wait["escalated"] == (at_gateway["conditions"] == list(SHARING_CONDITIONS))
    if wait["escalated"]:
        assert at_gateway["ground"] == "not_necessary" and at_gateway["refused_at"] is not None
    steps = [m["step"] for m in view["timeline"] if m["detail"].startswith("HOU-401")]
    assert steps == ["requested", "waits for data", f"data {wait['outcome']}", fire["decision"]]


async def test_an_officers_binding_refusal_the_review_disputes_is_escalated_and_upheld_by_the_office(
    stack: Settings, exchange: AppProcesses
) -> None:
    async with officers_decide(stack, "market"):
        case_id = await submit(stack, PHARMA)
        view = await follow(stack, case_id, lambda v: any(
            s["hold"] == "data" and s["department"] == "environment" for s in v["stuck"]), timeout=60)
        [wait] = request(view, "EEB-101")["data_waits"]
        assert (wait["provider"], wait["fields"], wait["until"]) == ("market", ["legal_representative"], None)
        task = await task_of(stack, "market", None, wait["agreement_id"])  # the bureau may know of it first
        assert task["kind"] == "sharing" and task["item_code"] == "market.business-registration"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "deploy.cli", "tasks", "decide", "market", task["task_id"], "--decision",
            "rejected", "--ground", "personal_information", "--reason", "the representative's record is protected",
            "--officer", "登记科 冯静", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, out.decode()
        view = await follow(stack, case_id, lambda v: request(v, "EEB-101")["status"] == "decided", timeout=60)
    [wait] = request(view, "EEB-101")["data_waits"]
    # environment's law names the person responsible: it disputes the ground before the office, which upholds it
    assert (wait["outcome"], wait["ground"], wait["escalated"]) == ("withheld", "personal_information", True)
    assessment = request(view, "EEB-101")
    assert assessment["decision"] == "approved_with_conditions"
    assert any("legal representative was withheld" in c for c in assessment["conditions"])
    refused = await agreement(stack, wait["agreement_id"], "environment")
    assert (refused["status"], refused["ground"]) == ("upheld", "personal_information")
    assert "binds in law" in refused["reasons"]  # the office's, the latest step's
    [audited] = await audit_of(stack, lambda e: e.get("agreement") == wait["agreement_id"]
                               and e["action"] == "agreement_rejected", contract="market.business-registration")
    assert audited["reason"] == "personal_information"
    await audit_of(stack, lambda e: e.get("agreement") == wait["agreement_id"] and e["action"] == "agreement_upheld",
                   contract="market.business-registration")


async def test_a_refusal_on_the_providers_judgement_is_escalated_and_the_office_orders_the_data_shared(
    stack: Settings, exchange: AppProcesses
) -> None:
    async with officers_decide(stack, "market"), Tail(stack.kafka(ADMIN), "deliver.environment") as environment, \
            Tail(stack.kafka(ADMIN), "deliver.coordination") as office:
        case_id, agreement_id = await waiting_for_the_legal_representative(stack)
        await decide(stack, "market", agreement_id, "rejected", sharing_ground="vertical_system",
                     reasons=["the provincial bureau's consent comes first"])
        [refused] = await environment.wait_for(changed(agreement_id, "rejected"))
        assert (payload(refused)["ground"], payload(refused)["reasons"]) == \
            ("vertical_system", "the provincial bureau's consent comes first")
        # the review's rules escalate it (an essential need, a ground that does not bind) ...
        [escalated] = await office.wait_for(sent("exchange.refusal-escalated", agreement_id))
        assert (payload(escalated)["consumer"], payload(escalated)["ground"]) == ("environment", "vertical_system")
        assert "EEB-101" in payload(escalated)["reasons"]
        # ... and the office's desk, by its rules, orders the data shared on its conditions
        [proceeded] = await environment.wait_for(changed(agreement_id, "proceeded"))
        assert payload(proceeded)["by"] == "coordination" and payload(proceeded)["status"] == "approved"
        assert payload(proceeded)["conditions"] == list(SHARING_CONDITIONS)
        assert payload(proceeded)["ground"] == "vertical_system"  # the refusal's ground stays with the agreement
        view = await follow(stack, case_id, lambda v: request(v, "EEB-101")["status"] == "decided", timeout=60)
    assessment = request(view, "EEB-101")
    [wait] = assessment["data_waits"]
    assert (wait["outcome"], wait["escalated"], wait["ground"]) == ("shared", True, None)
    assert not any("withheld" in c for c in assessment["conditions"])  # the review had the data
    task = await task_of(stack, "coordination", None, f"refusal:{agreement_id}", status="decided")
    assert (task["kind"], task["decision"], task["decided_by"]) == \
        ("refusal", "proceed_with_conditions", "joint meeting rules")
    # the typed ground from the API to the audit log and the report
    [audited] = await audit_of(stack, lambda e: e.get("agreement") == agreement_id
                               and e["action"] == "agreement_rejected", contract="market.business-registration")
    assert audited["reason"] == "vertical_system"
    [reported] = [r for r in (await report(stack))["sharing"]["refusals"] if r["agreement"] == agreement_id]
    assert reported["ground"] == "vertical_system"
    if reported["status"] == "ended":  # asked for this case alone, the agreement ends with it: the case went on
        at_gateway = await agreement(stack, agreement_id, "environment")
        assert at_gateway["conditions"] == list(SHARING_CONDITIONS) and at_gateway["ended_at"] is not None
        await follow(stack, case_id, lambda v: v["status"] in FINAL, timeout=5)  # fails unless the case has ended
    else:
        assert reported["status"] == "approved"  # the office's order


async def test_a_refusal_on_a_binding_ground_taken_to_the_office_is_upheld(
    stack: Settings, exchange: AppProcesses
) -> None:
    asked = {"contract": "bureau.case-submitted", "fields": ["contact_phone"], "legal_basis": "《消防法》第十五条",
             "purpose": "call the applicant about the fire acceptance"}
    async with http_client(base_url=stack.gateway_address, timeout=30) as http, \
            Tail(stack.kafka(ADMIN), "deliver.housing") as housing, \
            Tail(stack.kafka(ADMIN), "deliver.coordination") as office:
        as_housing = bearer(stack.credentials("housing").http_token)
        response = await http.post("/v1/agreements", json=asked, headers=as_housing)
        assert response.status_code == 201, response.text
        agreement_id = response.json()["id"]
        as_bureau = bearer(stack.credentials("bureau").http_token)
        wrong = await http.post(f"/v1/agreements/{agreement_id}/reject", headers=as_bureau,
                                json={"reasons": "no", "ground": "careless"})
        assert wrong.status_code == 422 and "ground" in wrong.text  # only a ground the enum knows
        refused = await http.post(f"/v1/agreements/{agreement_id}/reject", headers=as_bureau, json={
            "reasons": "the applicant asked that its contact go to no one", "ground": "personal_information"})
        assert refused.status_code == 200 and refused.json()["ground"] == "personal_information"
        # the consumer takes it to the office by hand (its rules would not: the ground binds) ...
        escalated = await http.post(f"/v1/agreements/{agreement_id}/escalate", json={"reasons": "we must call"},
                                    headers=as_housing)
        assert escalated.status_code == 200, escalated.text
        [told] = await office.wait_for(sent("exchange.refusal-escalated", agreement_id))
        assert payload(told)["ground"] == "personal_information"
        # ... and the office's rules uphold it
        [upheld] = await housing.wait_for(changed(agreement_id, "upheld"))
        assert (payload(upheld)["by"], payload(upheld)["status"], payload(upheld)["ground"]) == \
            ("coordination", "upheld", "personal_information")
        assert "binds in law" in payload(upheld)["reasons"]
    assert (await agreement(stack, agreement_id, "housing"))["status"] == "upheld"
    await agreement_actions(stack, agreement_id, {"agreement_rejected", "agreement_escalated", "agreement_upheld"})


async def test_a_counter_offer_holding_what_the_review_needs_is_accepted_by_its_rules_and_the_review_goes_on(
    stack: Settings, exchange: AppProcesses
) -> None:
    async with officers_decide(stack, "market"), Tail(stack.kafka(ADMIN), "deliver.environment") as environment:
        case_id, agreement_id = await waiting_for_the_legal_representative(stack)
        asked = await agreement(stack, agreement_id, "market")
        shorter = datetime.fromisoformat(asked["valid_until"]) - timedelta(days=7)
        async with http_client(base_url=stack.gateway_address, timeout=30) as http:
            offered = await http.post(f"/v1/agreements/{agreement_id}/counter-offer",
                                      headers=bearer(stack.credentials("market").http_token), json={
                                          "valid_until": shorter.isoformat(), "ground": "vertical_system",
                                          "reasons": "the provincial bureau consents to a shorter period"})
        assert offered.status_code == 200, offered.text
        [accepted] = await environment.wait_for(changed(agreement_id, "accepted"))
        assert payload(accepted)["by"] == "environment" and payload(accepted)["status"] == "approved"
        view = await follow(stack, case_id, lambda v: request(v, "EEB-101")["status"] == "decided", timeout=60)
    [wait] = request(view, "EEB-101")["data_waits"]
    assert (wait["outcome"], wait["escalated"]) == ("shared", False)
    now = await agreement(stack, agreement_id, "environment")
    assert (now["status"], now["ground"], datetime.fromisoformat(now["valid_until"])) == \
        ("approved", "vertical_system", shorter)
    [counted] = [p for p in (await report(stack))["barriers"]["providers"] if p["provider"] == "market"]
    assert counted["counter_offered"] >= 1 and counted["counter_offers_accepted"] >= 1
