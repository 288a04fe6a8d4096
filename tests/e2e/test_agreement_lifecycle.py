"""Agreements as a lifecycle, end to end on the real exchange: counter-offers accepted and declined, suspension and
resumption, windows relative to one case or to the approval (a case's requests end with it, decided or not), the
expiry notice and renewal (no notice once a renewal is asked for), refusals escalated to
the coordination office (proceeded and upheld), the consumer's answer reminded and escalated on the clock; and the
purpose of the granting agreement with every delivery and in its audit entry. Each test observes the deliver
topics: what a consumer gets, and the notices each party is sent."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from base.calendar import WorkingDayCalendar
from base.clock import AcceleratedClock
from base.settings import ADMIN, Settings
from contracts.base import Event
from contracts.bureau import CaseCompleted, CaseOutcome
from contracts.departments import OPERATOR
from deploy.processes import AppProcesses
from gateway.lifecycle import ANSWER_WITHIN_WORKING_DAYS, CASE_ANSWER_WITHIN_WORKING_DAYS, EXPIRY_NOTICE_WORKING_DAYS
from tests.e2e.cases import officers_decide
from tests.e2e.test_sharing_agreements import CONTACT, case_submitted, payload, revoke_all, submit_case, urls
from tests.factories import case_submitted as case_event
from tests.tools import Record, Tail, bearer, clock_reaches, eventually, header, http_client

PURPOSE = "arrange the site visit of the review 现场踏勘"
BASIS = "《政务数据共享条例》(2025) 第十四条"
CALENDAR = WorkingDayCalendar()


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def changed(agreement_id: str, change: str) -> Callable[[Record], bool]:
    return lambda r: header(r, "ce_type") == "exchange.agreement-changed" \
        and payload(r)["agreement_id"] == agreement_id and payload(r)["change"] == change


def sent(contract: str, agreement_id: str) -> Callable[[Record], bool]:
    return lambda r: header(r, "ce_type") == contract and payload(r)["agreement_id"] == agreement_id


async def ask(http: httpx.AsyncClient, token: str, fields: list[str], **extra: Any) -> dict[str, Any]:
    body = {"contract": "bureau.case-submitted", "fields": fields, "purpose": PURPOSE, "legal_basis": BASIS, **extra}
    response = await http.post("/v1/agreements", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def act(http: httpx.AsyncClient, token: str, agreement_id: str, action: str, body: dict[str, Any] | None = None,
              expect: int = 200) -> dict[str, Any]:
    response = await http.post(f"/v1/agreements/{agreement_id}/{action}", json=body, headers=bearer(token))
    assert response.status_code == expect, response.text
    return dict(response.json())


async def publish(stack: Settings, tokens: dict[str, str], event: Event) -> list[str]:
    """An event of the bureau's over HTTP ingest; the departments it was delivered to."""
    contract = type(event).CONTRACT
    body = {"specversion": "1.0", "id": f"lifecycle-{uuid.uuid4().hex}", "source": "/tests/lifecycle",
            "type": contract.id, "subject": getattr(event, contract.subject_field),
            "time": datetime.now().astimezone().isoformat(),
            "dataschema": f"urn:concord:contract:{contract.id}:{contract.version}",
            "datacontenttype": "application/json", "data": event.model_dump(mode="json")}
    async with http_client(base_url=urls(stack)[0], timeout=30) as http:
        response = await http.post("/v1/events", json=body, headers=bearer(tokens["bureau"]))
    assert response.status_code == 200, response.text
    return list(response.json()["delivered_to"])


async def audit_of(stack: Settings, match: Callable[[dict[str, Any]], bool], **query: str) -> list[dict[str, Any]]:
    """The audit entries that match, once the keeper has appended them."""
    found: list[dict[str, Any]] = []

    async def kept() -> bool:
        async with http_client(base_url=urls(stack)[0], timeout=30) as http:
            entries = (await http.get("/v1/audit", params={"limit": 10_000, **query},
                                      headers=bearer(stack.credentials(OPERATOR).http_token))).json()
        found[:] = [e for e in entries if match(e)]
        return bool(found)

    await eventually(kept)
    return found


async def agreement_actions(stack: Settings, agreement_id: str, expected: set[str]) -> None:
    actions: set[str] = set()

    async def all_there() -> bool:
        entries = await audit_of(stack, lambda e: e.get("agreement") == agreement_id, contract="bureau.case-submitted")
        actions.update(e["action"] for e in entries)
        return expected <= actions

    await eventually(all_there)


def clear(value: Any) -> bool:
    """A value as the applicant gave it: not withheld, and not its mask (the phone's last four behind asterisks, a
    keyed hash of the person)."""
    return isinstance(value, str) and not value.startswith("****") and re.fullmatch("[0-9a-f]{64}", value) is None


def sees(record: Record, fields: list[str]) -> bool:
    """The consumer received these fields in clear."""
    return all(clear(payload(record).get(f)) for f in fields)


def sees_none(record: Record, fields: list[str]) -> bool:
    """The consumer received none of these fields in clear (withheld or masked)."""
    return not any(clear(payload(record).get(f)) for f in fields)


async def test_a_counter_offer_accepted_puts_the_offered_fields_in_force_with_the_purpose_on_every_delivery(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    async with http_client(base_url=urls(stack)[0], timeout=30) as http:
        await revoke_all(http, "water", tokens["water"])
    async with http_client(base_url=urls(stack)[0], timeout=30) as http, \
            Tail(stack.kafka(ADMIN), "deliver.water") as water, Tail(stack.kafka(ADMIN), "deliver.bureau") as bureau:
        asked = await ask(http, tokens["water"], CONTACT)
        await act(http, tokens["water"], asked["id"], "counter-offer", {"reasons": "mine", "fields": ["contact_phone"]},
                  expect=403)
        await act(http, tokens["bureau"], asked["id"], "counter-offer",
                  {"reasons": "not asked for", "fields": ["contact_phone", "applicant_name"]}, expect=422)
        offered = await act(http, tokens["bureau"], asked["id"], "counter-offer",
                            {"reasons": "the phone is enough to arrange a visit", "fields": ["contact_phone"]})
        assert offered["status"] == "countered" and offered["fields"] == ["contact_phone"]
        assert offered["asked"]["fields"] == CONTACT and offered["awaiting"] == "water" and not offered["in_force"]
        assert at(offered["due_at"]) == CALENDAR.add_working_days(at(offered["decided_at"]), ANSWER_WITHIN_WORKING_DAYS)
        [notice] = await water.wait_for(changed(asked["id"], "countered"))
        assert payload(notice)["fields"] == ["contact_phone"] and payload(notice)["awaiting"] == "water"
        assert payload(notice)["reasons"] == "the phone is enough to arrange a visit"

        before = await submit_case(stack, 201)  # an offer is not in force until it is accepted
        [seen] = await water.wait_for(case_submitted(before))
        assert sees_none(seen, CONTACT) and header(seen, "concord_purpose") is None

        await act(http, tokens["bureau"], asked["id"], "accept", expect=403)
        accepted = await act(http, tokens["water"], asked["id"], "accept")
        assert accepted["status"] == "approved" and accepted["in_force"] and accepted["fields"] == ["contact_phone"]
        [told] = await bureau.wait_for(changed(asked["id"], "accepted"))
        assert payload(told)["status"] == "approved" and payload(told)["by"] == "water"
        await act(http, tokens["water"], asked["id"], "decline", expect=409)

        during = await submit_case(stack, 202)
        [seen] = await water.wait_for(case_submitted(during))
        assert sees(seen, ["contact_phone"]) and sees_none(seen, ["contact_person"])  # only the field offered
        assert header(seen, "concord_agreement") == asked["id"]
        assert json.loads(header(seen, "concord_purpose") or "") == {asked["id"]: PURPOSE}
        [routed] = await audit_of(stack, lambda e: e["action"] == "routed" and e["contract"] == "bureau.case-submitted",
                                  case_id=during)
        assert routed["purposes"]["water"] == {asked["id"]: PURPOSE}  # (other reviews may have their own)
        assert "contact_phone" in routed["delivered"]["water"] and "contact_person" not in routed["delivered"]["water"]
        await agreement_actions(stack, asked["id"],
                                {"agreement_requested", "agreement_countered", "agreement_accepted"})
        await act(http, tokens["water"], asked["id"], "revoke", {"reasons": "the visit is arranged"})


async def test_a_declined_counter_offer_closes_the_agreement(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str], clock: AcceleratedClock
) -> None:
    async with http_client(base_url=urls(stack)[0], timeout=30) as http:
        await revoke_all(http, "devreform", tokens["devreform"])
    async with http_client(base_url=urls(stack)[0], timeout=30) as http, \
            Tail(stack.kafka(ADMIN), "deliver.devreform") as devreform, \
            Tail(stack.kafka(ADMIN), "deliver.bureau") as bureau:
        until = clock.now() + timedelta(days=200)
        asked = await ask(http, tokens["devreform"], CONTACT, valid_until=until.isoformat())
        same = {"reasons": "the same terms", "fields": CONTACT}
        await act(http, tokens["bureau"], asked["id"], "counter-offer", same, expect=422)  # that is an approval
        shorter = clock.now() + timedelta(days=30)
        offered = await act(http, tokens["bureau"], asked["id"], "counter-offer",
                            {"reasons": "thirty days cover one review", "valid_until": shorter.isoformat()})
        assert offered["fields"] == CONTACT and at(offered["valid_until"]) == shorter
        assert at(offered["asked"]["valid_until"]) == at(asked["valid_until"])
        await devreform.wait_for(changed(asked["id"], "countered"))
        declined = await act(http, tokens["devreform"], asked["id"], "decline",
                             {"reasons": "the filing takes longer than thirty days"})
        assert declined["status"] == "declined" and not declined["in_force"] and declined["awaiting"] is None
        [told] = await bureau.wait_for(changed(asked["id"], "declined"))
        assert payload(told)["reasons"] == "the filing takes longer than thirty days"
        await act(http, tokens["devreform"], asked["id"], "accept", expect=409)
        after = await submit_case(stack, 203)
        [seen] = await devreform.wait_for(case_submitted(after))
        assert sees_none(seen, CONTACT)
        await agreement_actions(stack, asked["id"], {"agreement_countered", "agreement_declined"})


async def test_a_suspension_stops_deliveries_at_once_and_resumption_restarts_them_the_consumer_told(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    async with http_client(base_url=urls(stack)[0], timeout=30) as http:
        await revoke_all(http, "planning", tokens["planning"])
    async with http_client(base_url=urls(stack)[0], timeout=30) as http, \
            Tail(stack.kafka(ADMIN), "deliver.planning") as planning:
        asked = await ask(http, tokens["planning"], CONTACT)
        await act(http, tokens["bureau"], asked["id"], "approve")
        first = await submit_case(stack, 204)
        [seen] = await planning.wait_for(case_submitted(first))
        assert sees(seen, CONTACT) and header(seen, "concord_agreement") == asked["id"]

        await act(http, tokens["planning"], asked["id"], "suspend", {"reasons": "mine to suspend?"}, expect=403)
        suspended = await act(http, tokens["bureau"], asked["id"], "suspend",
                              {"reasons": "the applicant withdrew consent for calls"})
        assert suspended["status"] == "suspended" and not suspended["in_force"] and suspended["suspended_at"]
        [told] = await planning.wait_for(changed(asked["id"], "suspended"))
        assert payload(told)["reasons"] == "the applicant withdrew consent for calls"
        assert payload(told)["by"] == "bureau" and payload(told)["status"] == "suspended"
        second = await submit_case(stack, 205)
        [seen] = await planning.wait_for(case_submitted(second))
        assert sees_none(seen, CONTACT) and header(seen, "concord_agreement") is None
        await act(http, tokens["bureau"], asked["id"], "suspend", {"reasons": "again"}, expect=409)

        resumed = await act(http, tokens["bureau"], asked["id"], "resume", {"reasons": "consent given again"})
        assert resumed["status"] == "approved" and resumed["in_force"]
        await planning.wait_for(changed(asked["id"], "resumed"))
        third = await submit_case(stack, 206)
        [seen] = await planning.wait_for(case_submitted(third))
        assert sees(seen, CONTACT) and header(seen, "concord_agreement") == asked["id"]
        await agreement_actions(stack, asked["id"], {"agreement_suspended", "agreement_resumed"})
        await act(http, tokens["planning"], asked["id"], "revoke", {"reasons": "done"})


async def test_a_case_scoped_agreement_is_decided_faster_covers_its_case_only_and_ends_with_it(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    case, other = f"G-SCOPE-{uuid.uuid4().hex[:8]}", f"G-OTHER-{uuid.uuid4().hex[:8]}"
    async with http_client(base_url=urls(stack)[0], timeout=30) as http:
        await revoke_all(http, "market", tokens["market"])
    async with http_client(base_url=urls(stack)[0], timeout=30) as http, \
            Tail(stack.kafka(ADMIN), "deliver.market") as market:
        asked = await ask(http, tokens["market"], CONTACT, scope={"case_id": case})
        assert asked["case_id"] == case
        assert at(asked["due_at"]) == CALENDAR.add_working_days(at(asked["requested_at"]),
                                                                CASE_ANSWER_WITHIN_WORKING_DAYS)
        [request] = await market.wait_for(changed(asked["id"], "requested"))
        assert payload(request)["case_id"] == case
        await act(http, tokens["bureau"], asked["id"], "approve")
        undecided = await ask(http, tokens["planning"], CONTACT, scope={"case_id": case})  # left pending

        assert "market" in await publish(stack, tokens, case_event(case))
        assert "market" in await publish(stack, tokens, case_event(other))
        [mine] = await market.wait_for(case_submitted(case))
        [theirs] = await market.wait_for(case_submitted(other))
        assert sees(mine, CONTACT) and header(mine, "concord_agreement") == asked["id"]
        assert sees_none(theirs, CONTACT) and header(theirs, "concord_agreement") is None

        await publish(stack, tokens, CaseCompleted(case_id=case, outcome=CaseOutcome.COMPLETED,
                                                   completed_at=datetime.now().astimezone()))
        [ended] = await market.wait_for(changed(asked["id"], "ended"))
        assert payload(ended)["by"] == "exchange" and payload(ended)["status"] == "ended"
        assert (await http.get(f"/v1/agreements/{asked['id']}", headers=bearer(tokens["market"]))).json()["ended_at"]
        await publish(stack, tokens, case_event(case))
        [_, again] = await market.wait_for(case_submitted(case), count=2)
        assert sees_none(again, CONTACT) and header(again, "concord_agreement") is None
        await agreement_actions(stack, asked["id"], {"agreement_approved", "agreement_ended"})

        async def closed() -> bool:  # a request still undecided ends with its case: nobody is reminded of it
            response = await http.get(f"/v1/agreements/{undecided['id']}", headers=bearer(tokens["planning"]))
            return bool(response.json()["status"] == "ended")

        await eventually(closed)
        await act(http, tokens["bureau"], undecided["id"], "approve", expect=409)
        await agreement_actions(stack, undecided["id"], {"agreement_ended"})


async def test_a_working_day_window_runs_from_approval_is_announced_ahead_of_its_end_and_ends(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str], clock: AcceleratedClock
) -> None:
    async with http_client(base_url=urls(stack)[0], timeout=30) as http:
        await revoke_all(http, "airdefence", tokens["airdefence"])
    async with http_client(base_url=urls(stack)[0], timeout=30) as http, \
            Tail(stack.kafka(ADMIN), "deliver.airdefence") as airdefence:
        # four working days (1.7 real seconds or more): the case below is delivered within them
        asked = await ask(http, tokens["airdefence"], ["contact_phone"], window={"working_days": 4})
        approved = await act(http, tokens["bureau"], asked["id"], "approve")
        assert approved["working_days"] == 4 and at(approved["valid_from"]) == at(approved["decided_at"])
        assert at(approved["valid_until"]) == CALENDAR.add_working_days(at(approved["decided_at"]), 4)
        during = await submit_case(stack, 207)
        [seen] = await airdefence.wait_for(case_submitted(during))
        assert sees(seen, ["contact_phone"])
        [expiring] = await airdefence.wait_for(changed(asked["id"], "expiring"))  # 4 working days: notice at once
        assert at(header(expiring, "ce_time") or "") < at(approved["valid_until"])
        await clock_reaches(clock, at(approved["valid_until"]) + timedelta(hours=1))
        after = await submit_case(stack, 208)
        [seen] = await airdefence.wait_for(case_submitted(after))
        assert sees_none(seen, ["contact_phone"])
        assert len([r for r in await airdefence.drain() if changed(asked["id"], "expiring")(r)]) == 1  # once


async def test_the_consumer_told_ahead_of_the_end_renews_and_the_next_period_follows_without_a_gap(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str], clock: AcceleratedClock
) -> None:
    async with http_client(base_url=urls(stack)[0], timeout=30) as http:
        await revoke_all(http, "environment", tokens["environment"])
    async with http_client(base_url=urls(stack)[0], timeout=30) as http, \
            Tail(stack.kafka(ADMIN), "deliver.environment") as environment, \
            Tail(stack.kafka(ADMIN), "deliver.bureau") as bureau:
        until = clock.now() + timedelta(days=14)  # about six real seconds
        asked = await ask(http, tokens["environment"], ["contact_phone"], valid_until=until.isoformat())
        await act(http, tokens["bureau"], asked["id"], "approve")
        before = await submit_case(stack, 209)  # in the current period
        [seen] = await environment.wait_for(case_submitted(before))
        assert sees(seen, ["contact_phone"]) and header(seen, "concord_agreement") == asked["id"]
        [expiring] = await environment.wait_for(changed(asked["id"], "expiring"), timeout=30)
        told_at = at(header(expiring, "ce_time") or "")
        assert told_at < until and CALENDAR.working_days_between(told_at, until) <= EXPIRY_NOTICE_WORKING_DAYS

        renewal = await act(http, tokens["environment"], asked["id"], "renew", {"working_days": 10}, expect=201)
        assert renewal["renews"] == asked["id"] and renewal["status"] == "pending" and renewal["purpose"] == PURPOSE
        assert at(renewal["valid_from"]) == until
        await bureau.wait_for(changed(renewal["id"], "renewal_requested"))
        await act(http, tokens["environment"], asked["id"], "renew", {"working_days": 3}, expect=409)  # one at a time
        approved = await act(http, tokens["bureau"], renewal["id"], "approve")
        assert at(approved["valid_from"]) == until and not approved["in_force"]  # after the current one
        assert at(approved["valid_until"]) == CALENDAR.add_working_days(until, 10)

        await clock_reaches(clock, until + timedelta(hours=1))
        after = await submit_case(stack, 210)
        [seen] = await environment.wait_for(case_submitted(after))
        assert sees(seen, ["contact_phone"]) and header(seen, "concord_agreement") == renewal["id"]
        await agreement_actions(stack, renewal["id"], {"agreement_renewal_requested", "agreement_approved"})
        await act(http, tokens["environment"], renewal["id"], "revoke", {"reasons": "done"})


async def test_no_expiry_notice_urges_a_renewal_asked_for_already(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str], clock: AcceleratedClock
) -> None:
    async with http_client(base_url=urls(stack)[0], timeout=30) as http:
        await revoke_all(http, "devreform", tokens["devreform"])
    async with http_client(base_url=urls(stack)[0], timeout=30) as http, \
            Tail(stack.kafka(ADMIN), "deliver.devreform") as devreform:
        until = clock.now() + timedelta(days=21)  # its notice would be due some real seconds from now
        asked = await ask(http, tokens["devreform"], ["contact_phone"], valid_until=until.isoformat())
        await act(http, tokens["bureau"], asked["id"], "approve")
        renewal = await act(http, tokens["devreform"], asked["id"], "renew", {"working_days": 10}, expect=201)
        await clock_reaches(clock, until + timedelta(hours=1))  # the days a notice would have gone out in are past
        await act(http, tokens["bureau"], renewal["id"], "approve")
        await devreform.wait_for(changed(renewal["id"], "approved"))  # the marker: told after those days
        told = await devreform.drain()
        assert [r for r in told if changed(asked["id"], "approved")(r)]  # what the tail holds is from this test
        assert not [r for r in told if changed(asked["id"], "expiring")(r)]
        await act(http, tokens["devreform"], renewal["id"], "revoke", {"reasons": "done"})


async def test_an_escalated_refusal_the_office_proceeds_with_comes_into_force_with_its_conditions(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    async with http_client(base_url=urls(stack)[0], timeout=30) as http:
        await revoke_all(http, "housing", tokens["housing"])
    async with http_client(base_url=urls(stack)[0], timeout=30) as http, \
            Tail(stack.kafka(ADMIN), "deliver.housing") as housing, \
            Tail(stack.kafka(ADMIN), "deliver.bureau") as bureau, \
            Tail(stack.kafka(ADMIN), "deliver.coordination") as coordination, \
            officers_decide(stack, "coordination"):  # the office's officer decides, here through the gateway's API
        asked = await ask(http, tokens["housing"], ["contact_phone"])
        await act(http, tokens["bureau"], asked["id"], "reject", {"reasons": "no site visit is planned"})
        await act(http, tokens["bureau"], asked["id"], "escalate", {"reasons": "mine?"}, expect=403)
        escalated = await act(http, tokens["housing"], asked["id"], "escalate",
                              {"reasons": "the fire review must call the applicant before the visit"})
        assert escalated["status"] == "escalated" and escalated["awaiting"] == "coordination"
        [case_file] = await coordination.wait_for(sent("exchange.refusal-escalated", asked["id"]))
        assert payload(case_file)["refusal"] == "no site visit is planned"
        assert payload(case_file)["reasons"] == "the fire review must call the applicant before the visit"
        assert payload(case_file)["fields"] == ["contact_phone"] and payload(case_file)["purpose"] == PURPOSE
        assert at(payload(case_file)["due_at"]) == at(escalated["due_at"])
        [told] = await bureau.wait_for(changed(asked["id"], "escalated"))
        assert payload(told)["awaiting"] == "coordination"

        office = await http.get(f"/v1/agreements/{asked['id']}", headers=bearer(tokens["coordination"]))
        assert office.status_code == 200  # the office reads what it decides
        await act(http, tokens["bureau"], asked["id"], "proceed", {"reasons": "mine?"}, expect=403)
        conditions = ["use the phone only to arrange the joint site survey"]
        proceeded = await act(http, tokens["coordination"], asked["id"], "proceed",
                              {"reasons": "the review cannot go on without a visit", "conditions": conditions})
        assert proceeded["status"] == "approved" and proceeded["in_force"] and proceeded["conditions"] == conditions
        for tail in (housing, bureau):
            [told] = await tail.wait_for(changed(asked["id"], "proceeded"))
            assert payload(told)["conditions"] == conditions and payload(told)["by"] == "coordination"
        await act(http, tokens["coordination"], asked["id"], "uphold", {"reasons": "too late"}, expect=409)

        case_id = await submit_case(stack, 211)
        [seen] = await housing.wait_for(case_submitted(case_id))
        assert sees(seen, ["contact_phone"]) and header(seen, "concord_agreement") == asked["id"]
        await agreement_actions(stack, asked["id"],
                                {"agreement_rejected", "agreement_escalated", "agreement_proceeded"})
        await act(http, tokens["housing"], asked["id"], "revoke", {"reasons": "the visit took place"})


async def test_an_escalated_refusal_the_office_upholds_stays_refused(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    async with http_client(base_url=urls(stack)[0], timeout=30) as http:
        await revoke_all(http, "water", tokens["water"])
    async with http_client(base_url=urls(stack)[0], timeout=30) as http, \
            Tail(stack.kafka(ADMIN), "deliver.water") as water, Tail(stack.kafka(ADMIN), "deliver.bureau") as bureau, \
            officers_decide(stack, "coordination"):
        asked = await ask(http, tokens["water"], CONTACT)
        await act(http, tokens["bureau"], asked["id"], "reject", {"reasons": "water permits name the enterprise only"})
        await act(http, tokens["water"], asked["id"], "escalate", {"reasons": "we must call the applicant"})
        await act(http, tokens["water"], asked["id"], "uphold", {"reasons": "mine?"}, expect=403)
        upheld = await act(http, tokens["coordination"], asked["id"], "uphold",
                           {"reasons": "the permit needs no contact: the refusal stands"})
        assert upheld["status"] == "upheld" and not upheld["in_force"] and upheld["awaiting"] is None
        for tail in (water, bureau):
            [told] = await tail.wait_for(changed(asked["id"], "upheld"))
            assert payload(told)["reasons"] == "the permit needs no contact: the refusal stands"
        await act(http, tokens["water"], asked["id"], "escalate", {"reasons": "once more"}, expect=409)
        case_id = await submit_case(stack, 212)
        [seen] = await water.wait_for(case_submitted(case_id))
        assert sees_none(seen, CONTACT)
        await agreement_actions(stack, asked["id"], {"agreement_escalated", "agreement_upheld"})


async def test_an_unanswered_counter_offer_is_reminded_to_the_consumer_and_escalated_on_the_case_deadline(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    async with http_client(base_url=urls(stack)[0], timeout=30) as http, \
            Tail(stack.kafka(ADMIN), "deliver.devreform") as devreform, \
            Tail(stack.kafka(ADMIN), "deliver.coordination") as coordination:
        asked = await ask(http, tokens["devreform"], CONTACT, scope={"case_id": f"G-LATE-{uuid.uuid4().hex[:8]}"})
        offered = await act(http, tokens["bureau"], asked["id"], "counter-offer",
                            {"reasons": "the phone only", "fields": ["contact_phone"]})
        assert at(offered["due_at"]) == CALENDAR.add_working_days(at(offered["decided_at"]),
                                                                  CASE_ANSWER_WITHIN_WORKING_DAYS)
        [reminder] = await devreform.wait_for(sent("exchange.agreement-step-reminder", asked["id"]))
        assert payload(reminder)["status"] == "countered" and payload(reminder)["department"] == "devreform"
        [late] = await coordination.wait_for(sent("exchange.agreement-step-escalated", asked["id"]))
        assert payload(late)["late"] == "devreform" and payload(late)["status"] == "countered"
        assert at(header(reminder, "ce_time") or "") >= at(offered["remind_at"])
        assert at(header(late, "ce_time") or "") >= at(offered["due_at"]) > at(header(reminder, "ce_time") or "")
        now = (await http.get(f"/v1/agreements/{asked['id']}", headers=bearer(tokens["devreform"]))).json()
        assert now["status"] == "countered" and now["escalated_at"] and now["overdue_steps"] == 1
        await act(http, tokens["devreform"], asked["id"], "decline")


def requested(agreement_id: str) -> Callable[[Record], bool]:
    return lambda r: header(r, "ce_type") == "exchange.agreement-requested" \
        and payload(r)["agreement_id"] == agreement_id


async def every_agreement(http: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    """Every agreement the token's department is a party to, page by page: the first page is not enough, its order
    being the stack's clock's (a stack whose clock ran ahead in a demo, then went back, holds agreements "newer"
    than any a test makes)."""
    found: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        page = (await http.get("/v1/agreements", headers=bearer(token),
                               params={"limit": 200, "offset": offset})).json()
        found += page["agreements"]
        offset = page["next_offset"]
    return found


async def test_a_request_sent_again_with_its_idempotency_key_asks_the_provider_once(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str], clock: AcceleratedClock
) -> None:
    key = {"idempotency-key": f"review-{uuid.uuid4().hex}"}
    body = {"contract": "bureau.case-submitted", "fields": CONTACT, "purpose": PURPOSE, "legal_basis": BASIS}
    async with http_client(base_url=urls(stack)[0], timeout=30) as http, \
            Tail(stack.kafka(ADMIN), "deliver.bureau") as bureau:
        first = await http.post("/v1/agreements", json=body, headers=bearer(tokens["environment"]) | key)
        assert first.status_code == 201, first.text
        asked = first.json()
        # the answer was lost; the retry computed its end again: the first request's terms stand
        later = {**body, "valid_until": (clock.now() + timedelta(days=400)).isoformat()}
        again = await http.post("/v1/agreements", json=later, headers=bearer(tokens["environment"]) | key)
        assert again.status_code == 200, again.text
        assert again.json()["id"] == asked["id"] and again.json()["valid_until"] == asked["valid_until"]
        other = await http.post("/v1/agreements", json={**body, "fields": ["contact_phone"]},
                                headers=bearer(tokens["environment"]) | key)
        assert other.status_code == 409 and asked["id"] not in other.text
        # the key is the consumer's own: another department's request under it is a request of its own
        water = await http.post("/v1/agreements", json=body, headers=bearer(tokens["water"]) | key)
        assert water.status_code == 201 and water.json()["id"] != asked["id"]
        await bureau.wait_for(requested(water.json()["id"]))  # told after whatever the retries could have caused
        notices = {header(r, "ce_id") for r in await bureau.drain() if requested(asked["id"])(r)}
        assert len(notices) == 1  # (a notice resent by the outbox keeps its id)
        listed = [a for a in await every_agreement(http, tokens["environment"])
                  if a["purpose"] == PURPOSE and a["requested_at"] == asked["requested_at"]]
        assert [a["id"] for a in listed] == [asked["id"]]
        for agreement in (asked["id"], water.json()["id"]):  # nothing of this test left to come into force
            refused = await http.post(f"/v1/agreements/{agreement}/reject", json={"reasons": "test done"},
                                      headers=bearer(tokens["bureau"]))
            assert refused.status_code in (200, 409), refused.text  # (409: the bureau's rules decided it first)
        await revoke_all(http, "environment", tokens["environment"])
        await revoke_all(http, "water", tokens["water"])
