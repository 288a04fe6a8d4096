"""The agreement lifecycle's rules: which step is allowed from which status, and to whom."""

import pytest

from gateway.lifecycle import (
    ANSWER_WITHIN_WORKING_DAYS,
    AWAITING,
    CASE_ANSWER_WITHIN_WORKING_DAYS,
    RULES,
    Refusal,
    Role,
    Status,
    Transition,
    TransitionRefused,
    allowed,
    deadline_days,
    roles_of,
    step,
)

PROVIDER, CONSUMER, OFFICE, EXCHANGE = (frozenset({r}) for r in Role)
WHY = "reasons"

# (from, step, by) -> to: every step the lifecycle allows.
ALLOWED = {
    (Status.PENDING, Transition.APPROVE, PROVIDER): Status.APPROVED,
    (Status.PENDING, Transition.REJECT, PROVIDER): Status.REJECTED,
    (Status.PENDING, Transition.COUNTER_OFFER, PROVIDER): Status.COUNTERED,
    (Status.COUNTERED, Transition.ACCEPT, CONSUMER): Status.APPROVED,
    (Status.COUNTERED, Transition.DECLINE, CONSUMER): Status.DECLINED,
    (Status.APPROVED, Transition.SUSPEND, PROVIDER): Status.SUSPENDED,
    (Status.SUSPENDED, Transition.RESUME, PROVIDER): Status.APPROVED,
    (Status.APPROVED, Transition.REVOKE, PROVIDER): Status.REVOKED,
    (Status.APPROVED, Transition.REVOKE, CONSUMER): Status.REVOKED,
    (Status.SUSPENDED, Transition.REVOKE, PROVIDER): Status.REVOKED,
    (Status.SUSPENDED, Transition.REVOKE, CONSUMER): Status.REVOKED,
    (Status.APPROVED, Transition.RENEW, CONSUMER): Status.APPROVED,
    (Status.SUSPENDED, Transition.RENEW, CONSUMER): Status.SUSPENDED,
    (Status.REJECTED, Transition.ESCALATE, CONSUMER): Status.ESCALATED,
    (Status.ESCALATED, Transition.PROCEED, OFFICE): Status.APPROVED,
    (Status.ESCALATED, Transition.UPHOLD, OFFICE): Status.UPHELD,
    (Status.APPROVED, Transition.END, EXCHANGE): Status.ENDED,
    (Status.SUSPENDED, Transition.END, EXCHANGE): Status.ENDED,
    (Status.PENDING, Transition.END, EXCHANGE): Status.ENDED,  # a case-scoped request whose case ended first
    (Status.COUNTERED, Transition.END, EXCHANGE): Status.ENDED,
    (Status.ESCALATED, Transition.END, EXCHANGE): Status.ENDED,
}


@pytest.mark.parametrize(("source", "transition", "by"), list(ALLOWED))
def test_each_allowed_step_leads_where_the_lifecycle_says(source: Status, transition: Transition,
                                                          by: frozenset[Role]) -> None:
    assert step(source, transition, by, WHY) is ALLOWED[source, transition, by]


def test_every_other_step_is_refused_saying_whether_the_role_or_the_status_forbids_it() -> None:
    for source in Status:
        for transition in Transition:
            for by in (PROVIDER, CONSUMER, OFFICE, EXCHANGE):
                if (source, transition, by) in ALLOWED:
                    continue
                with pytest.raises(TransitionRefused) as refused:
                    step(source, transition, by, WHY)
                may = by & RULES[transition].by
                assert refused.value.kind is (Refusal.NOT_NOW if may else Refusal.NOT_YOURS), (source, transition, by)


def test_ended_statuses_allow_nothing_but_a_refusal_allows_only_its_escalation() -> None:
    everyone = frozenset(Role)
    for final in (Status.DECLINED, Status.UPHELD, Status.REVOKED, Status.ENDED):
        assert allowed(final, everyone) == []
    assert allowed(Status.REJECTED, everyone) == [Transition.ESCALATE]
    assert allowed(Status.REJECTED, PROVIDER) == []


def test_refusals_counter_offers_suspensions_and_escalations_need_reasons() -> None:
    for source, transition, by in ((Status.PENDING, Transition.REJECT, PROVIDER),
                                    (Status.PENDING, Transition.COUNTER_OFFER, PROVIDER),
                                    (Status.APPROVED, Transition.SUSPEND, PROVIDER),
                                    (Status.SUSPENDED, Transition.RESUME, PROVIDER),
                                    (Status.APPROVED, Transition.REVOKE, CONSUMER),
                                    (Status.REJECTED, Transition.ESCALATE, CONSUMER),
                                    (Status.ESCALATED, Transition.PROCEED, OFFICE),
                                    (Status.ESCALATED, Transition.UPHOLD, OFFICE)):
        with pytest.raises(TransitionRefused) as refused:
            step(source, transition, by, "  ")
        assert refused.value.kind is Refusal.NO_REASONS
    assert step(Status.PENDING, Transition.APPROVE, PROVIDER) is Status.APPROVED
    assert step(Status.COUNTERED, Transition.ACCEPT, CONSUMER) is Status.APPROVED
    assert step(Status.COUNTERED, Transition.DECLINE, CONSUMER) is Status.DECLINED


def test_a_role_is_checked_before_the_status() -> None:
    with pytest.raises(TransitionRefused) as refused:
        step(Status.REVOKED, Transition.APPROVE, CONSUMER)
    assert refused.value.kind is Refusal.NOT_YOURS


def test_roles_follow_the_parties_and_the_office_acts_only_where_it_is_not_one() -> None:
    assert roles_of("bureau", "bureau", "housing") == PROVIDER
    assert roles_of("housing", "bureau", "housing") == CONSUMER
    assert roles_of("water", "bureau", "housing") == frozenset()
    assert roles_of("coordination", "bureau", "housing") == OFFICE
    assert roles_of("coordination", "bureau", "coordination") == CONSUMER  # it cannot decide its own escalation


def test_every_pending_status_waits_for_one_party_under_a_deadline_shorter_for_one_case() -> None:
    assert AWAITING == {Status.PENDING: Role.PROVIDER, Status.COUNTERED: Role.CONSUMER,
                        Status.ESCALATED: Role.OFFICE}
    for status in Status:
        if status in AWAITING:
            assert deadline_days(status, case_scoped=False) == ANSWER_WITHIN_WORKING_DAYS
            assert deadline_days(status, case_scoped=True) == CASE_ANSWER_WITHIN_WORKING_DAYS
        else:
            assert deadline_days(status, case_scoped=False) is None
    assert CASE_ANSWER_WITHIN_WORKING_DAYS < ANSWER_WITHIN_WORKING_DAYS
