from datetime import timedelta

from contracts.bureau import CaseSubmitted, OpinionIssued
from gateway.agreements import Agreement, AgreementPolicy, Status
from gateway.registry import ContractVersion
from tests.factories import T0

CASES = ContractVersion.from_schema(CaseSubmitted.CONTRACT.json_schema)
OPINIONS = ContractVersion.from_schema(OpinionIssued.CONTRACT.json_schema)


def agreement(consumer: str = "housing", status: Status = Status.APPROVED, days: int = 30,
              fields: tuple[str, ...] = ("contact_phone", "project")) -> Agreement:
    return Agreement(
        id="AGR-1", contract_id=CASES.id, provider="bureau", consumer=consumer, fields=frozenset(fields),
        purpose="review", legal_basis="basis", valid_from=T0, valid_until=T0 + timedelta(days=days), status=status,
        requested_at=T0, remind_at=T0, due_at=T0,
    )


def test_an_agreement_in_force_grants_its_conditional_fields_to_its_consumer_only() -> None:
    policy = AgreementPolicy([agreement()])
    assert policy.conditional_fields("housing", CASES, T0 + timedelta(days=1)) == {"contact_phone"}
    assert policy.conditional_fields("planning", CASES, T0 + timedelta(days=1)) == frozenset()
    assert policy.conditional_fields("housing", OPINIONS, T0 + timedelta(days=1)) == frozenset()


def test_nothing_is_granted_before_the_period_after_it_or_unless_approved() -> None:
    assert AgreementPolicy([agreement()]).conditional_fields("housing", CASES, T0 - timedelta(seconds=1)) == set()
    assert AgreementPolicy([agreement(days=1)]).conditional_fields("housing", CASES, T0 + timedelta(days=1)) == set()
    for status in (Status.PENDING, Status.REJECTED, Status.REVOKED):
        assert AgreementPolicy([agreement(status=status)]).conditional_fields("housing", CASES, T0) == set()


def test_not_shared_fields_are_never_granted_even_if_an_agreement_names_them() -> None:
    policy = AgreementPolicy([agreement(fields=("agent", "contact_person"))])
    assert policy.conditional_fields("housing", CASES, T0) == {"contact_person"}


def test_an_agreement_in_force_makes_its_consumer_a_recipient() -> None:
    policy = AgreementPolicy([agreement(consumer="coordination")])
    assert policy.consumers(CASES, T0) == {"coordination"}
    assert policy.consumers(CASES, T0 + timedelta(days=31)) == frozenset()
