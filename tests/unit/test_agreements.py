import itertools
from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.bureau import CaseSubmitted, OpinionIssued
from gateway.agreements import Agreement, AgreementPolicy, Status
from gateway.registry import ContractVersion
from gateway.routing import NOTHING, Grant, Granted, visible_fields
from tests.factories import T0

CASES = ContractVersion.from_schema(CaseSubmitted.CONTRACT.json_schema)
OPINIONS = ContractVersion.from_schema(OpinionIssued.CONTRACT.json_schema)
CASE = "G-TEST-1"


def agreement(consumer: str = "housing", status: Status = Status.APPROVED, days: int = 30,
              fields: tuple[str, ...] = ("contact_phone", "project"), id: str = "AGR-1", case_id: str | None = None,
              purpose: str = "review") -> Agreement:
    return Agreement(
        id=id, contract_id=CASES.id, provider="bureau", consumer=consumer, fields=frozenset(fields),
        purpose=purpose, legal_basis="basis", valid_from=T0, valid_until=T0 + timedelta(days=days), status=status,
        requested_at=T0, remind_at=T0, due_at=T0, case_id=case_id,
    )


def fields(policy: AgreementPolicy, consumer: str = "housing", contract: ContractVersion = CASES,
           subject: str = CASE, days: float = 1) -> frozenset[str]:
    return policy.grant(consumer, contract, subject, T0 + timedelta(days=days)).fields


def test_an_agreement_in_force_grants_its_conditional_fields_to_its_consumer_only() -> None:
    policy = AgreementPolicy([agreement()])
    assert fields(policy) == {"contact_phone"}
    assert fields(policy, consumer="planning") == frozenset()
    assert fields(policy, contract=OPINIONS) == frozenset()


def test_nothing_is_granted_before_the_period_after_it_or_unless_approved() -> None:
    assert fields(AgreementPolicy([agreement()]), days=-1 / 86400) == set()
    assert fields(AgreementPolicy([agreement(days=1)]), days=1) == set()
    for status in set(Status) - {Status.APPROVED}:  # pending, countered, suspended, refused, ended …
        assert AgreementPolicy([agreement(status=status)]).grant("housing", CASES, CASE, T0) == NOTHING, status


def test_not_shared_fields_are_never_granted_even_if_an_agreement_names_them() -> None:
    policy = AgreementPolicy([agreement(fields=("agent", "contact_person"))])
    assert fields(policy, days=0) == {"contact_person"}


def test_an_agreement_in_force_makes_its_consumer_a_recipient() -> None:
    policy = AgreementPolicy([agreement(consumer="coordination")])
    assert policy.consumers(CASES, T0) == {"coordination"}
    assert policy.consumers(CASES, T0 + timedelta(days=31)) == frozenset()


def test_a_grant_names_the_agreements_and_purposes_it_comes_from() -> None:
    policy = AgreementPolicy([agreement(id="AGR-2", fields=("contact_person",), purpose="site visit"),
                              agreement(id="AGR-1", fields=("contact_phone", "project"), purpose="review"),
                              agreement(id="AGR-3", fields=("project",), purpose="only unconditional fields")])
    grant = policy.grant("housing", CASES, CASE, T0)
    assert grant.fields == {"contact_phone", "contact_person"}
    assert grant.agreements == (Granted("AGR-1", "review", frozenset({"contact_phone"})),
                                Granted("AGR-2", "site visit", frozenset({"contact_person"})))
    assert visible_fields(CASES, grant) == CASES.unconditional | {"contact_phone", "contact_person"}


def test_a_case_scoped_agreement_grants_its_case_records_only() -> None:
    policy = AgreementPolicy([agreement(case_id=CASE)])
    assert fields(policy, subject=CASE) == {"contact_phone"}
    assert fields(policy, subject="G-OTHER") == frozenset()
    assert policy.grant("housing", CASES, "G-OTHER", T0) == NOTHING


def test_a_case_scoped_agreement_makes_its_consumer_a_recipient_of_its_case_only() -> None:
    policy = AgreementPolicy([agreement(consumer="coordination", case_id=CASE)])
    assert policy.consumers(CASES, T0, CASE) == {"coordination"}
    assert policy.consumers(CASES, T0, "G-OTHER") == frozenset()
    assert policy.consumers(CASES, T0) == {"coordination"}  # asked about any case (the console's view)


def test_a_general_agreement_and_a_case_scoped_one_add_up_for_that_case() -> None:
    policy = AgreementPolicy([agreement(id="AGR-1", fields=("contact_phone",)),
                              agreement(id="AGR-2", fields=("contact_person",), case_id=CASE)])
    assert fields(policy, subject=CASE) == {"contact_phone", "contact_person"}
    assert fields(policy, subject="G-OTHER") == {"contact_phone"}


CONSUMERS, SUBJECTS = ("housing", "planning", "coordination"), (CASE, "G-OTHER")
AT = (T0 - timedelta(days=1), T0, T0 + timedelta(days=20), T0 + timedelta(days=45))
STATES = st.builds(
    agreement, consumer=st.sampled_from(CONSUMERS), id=st.sampled_from(["AGR-1", "AGR-2", "AGR-3", "AGR-4"]),
    status=st.sampled_from([Status.APPROVED, Status.APPROVED, Status.SUSPENDED, Status.ENDED, Status.REVOKED]),
    days=st.sampled_from([10, 30, 60]), case_id=st.sampled_from([None, *SUBJECTS]),
    fields=st.sampled_from([("contact_phone",), ("contact_person", "project"), ("project",)]))


def expected_grant(latest: dict[str, Agreement], consumer: str, subject: str, at: datetime) -> Grant:
    """What the agreements as they last stood grant, by the rule's words, with no index."""
    parts = [Granted(a.id, a.purpose, a.fields & CASES.conditional) for a in sorted(latest.values(), key=lambda a: a.id)
             if a.consumer == consumer and a.in_force(at) and a.case_id in (None, subject)
             and a.fields & CASES.conditional]
    return Grant(frozenset().union(*(p.fields for p in parts)), tuple(parts)) if parts else NOTHING


@settings(max_examples=300, deadline=None)
@given(initial=st.lists(STATES, max_size=4), changes=st.lists(st.lists(STATES, max_size=3), max_size=6))
def test_changes_applied_one_by_one_grant_what_the_agreements_as_they_last_stood_grant(
    initial: list[Agreement], changes: list[list[Agreement]]
) -> None:
    """The router applies each change to its policy instead of loading every agreement again: whatever the
    changes (an agreement approved, suspended, ended, moved to another consumer or case), the policy answers as
    the agreements' latest states say, and forgets what is no longer approved."""
    policy = AgreementPolicy(initial)
    latest = {a.id: a for a in initial}
    for change in changes:
        policy.apply(change)
        latest |= {a.id: a for a in change}
        for consumer, subject, at in itertools.product(CONSUMERS, SUBJECTS, AT):
            assert policy.grant(consumer, CASES, subject, at) == expected_grant(latest, consumer, subject, at)
        for subject_or_any, at in itertools.product((*SUBJECTS, None), AT):
            assert policy.consumers(CASES, at, subject_or_any) == {
                a.consumer for a in latest.values()
                if a.in_force(at) and (subject_or_any is None or a.case_id in (None, subject_or_any))}
    policy.apply(replace(a, status=Status.ENDED) for a in latest.values())
    assert not policy._indexed and not any(policy._general.values()) and not any(policy._scoped.values())
