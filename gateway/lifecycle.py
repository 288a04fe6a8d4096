"""The lifecycle of a sharing agreement, in the spirit of a dataspace's contract negotiation: which steps are
allowed from which status, and by whom. Pure: the store (``gateway.agreements``) applies it.

```
              approve                       suspend ─▶ SUSPENDED ─ resume ─┐
 PENDING ───────────────────────▶ APPROVED ◀──────────────────────────────┘
   │  counter_offer                 ▲   │ revoke (either party) ─▶ REVOKED
   ├──────────▶ COUNTERED ─ accept ─┘   │ end (the case ended)   ─▶ ENDED
   │              └─ decline ─▶ DECLINED │ renew: a new PENDING agreement for the next period
   └─ reject ─▶ REJECTED ─ escalate ─▶ ESCALATED ─ proceed ─▶ APPROVED
                                          └─ uphold ─▶ UPHELD
```

A case-scoped agreement ends with its case from any status that stands or may (``LIVE``): in force, suspended,
or still being decided (pending, countered, escalated), so that nobody is reminded of, or escalated for, a
request whose case is over.

A pending status waits for one party (``AWAITING``): the provider's decision, the consumer's answer to a
counter-offer, the coordination office's decision on an escalated refusal. Each has a statutory deadline, a
reminder at half time and, but for the office's own, an escalation to the office when it passes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from contracts.departments import COORDINATION
from contracts.exchange import AgreementStatus

ANSWER_WITHIN_WORKING_DAYS = 10  # 2025 Regulation on Government Data Sharing: conditional requests
# A case-scoped request asks for the conditional fields of one case in progress, which waits on them: decided in 3
# working days. Not a national figure: the district's own commitment, as its approval items are committed well
# inside their statutory limits (国办发〔2019〕11号 asks local governments to compress time limits); change it here.
CASE_ANSWER_WITHIN_WORKING_DAYS = 3
EXPIRY_NOTICE_WORKING_DAYS = 5  # the consumer is told this long before an agreement ends, to renew it in time


Status = AgreementStatus  # defined with the contracts: departments read it in the notices


class Role(StrEnum):
    PROVIDER = "provider"
    CONSUMER = "consumer"
    OFFICE = "office"  # the coordination office, when it is not a party
    EXCHANGE = "exchange"  # the gateway itself: what follows from events and the clock


class Transition(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    COUNTER_OFFER = "counter_offer"
    ACCEPT = "accept"
    DECLINE = "decline"
    SUSPEND = "suspend"
    RESUME = "resume"
    REVOKE = "revoke"
    RENEW = "renew"  # asks for the next period: a new agreement; this one is unchanged
    ESCALATE = "escalate"
    PROCEED = "proceed"
    UPHOLD = "uphold"
    END = "end"


@dataclass(frozen=True)
class Rule:
    by: frozenset[Role]
    source: frozenset[Status]
    target: Status | None  # None: the status does not change
    needs_reasons: bool


def _rule(by: set[Role], source: set[Status], target: Status | None, needs_reasons: bool = True) -> Rule:
    return Rule(frozenset(by), frozenset(source), target, needs_reasons)


PROVIDER, CONSUMER, OFFICE, EXCHANGE = Role.PROVIDER, Role.CONSUMER, Role.OFFICE, Role.EXCHANGE
S = Status
# Asked and not decided against, or in force: an agreement that still stands or may. A renewal in one of these
# is the renewal (no second is asked for, and no expiry notice urges one); a case's agreements in one of these
# end with the case.
LIVE = frozenset({S.PENDING, S.COUNTERED, S.ESCALATED, S.APPROVED, S.SUSPENDED})
RULES: dict[Transition, Rule] = {
    Transition.APPROVE: _rule({PROVIDER}, {S.PENDING}, S.APPROVED, needs_reasons=False),
    Transition.REJECT: _rule({PROVIDER}, {S.PENDING}, S.REJECTED),
    Transition.COUNTER_OFFER: _rule({PROVIDER}, {S.PENDING}, S.COUNTERED),
    Transition.ACCEPT: _rule({CONSUMER}, {S.COUNTERED}, S.APPROVED, needs_reasons=False),
    Transition.DECLINE: _rule({CONSUMER}, {S.COUNTERED}, S.DECLINED, needs_reasons=False),
    Transition.SUSPEND: _rule({PROVIDER}, {S.APPROVED}, S.SUSPENDED),
    Transition.RESUME: _rule({PROVIDER}, {S.SUSPENDED}, S.APPROVED),
    Transition.REVOKE: _rule({PROVIDER, CONSUMER}, {S.APPROVED, S.SUSPENDED}, S.REVOKED),
    Transition.RENEW: _rule({CONSUMER}, {S.APPROVED, S.SUSPENDED}, None, needs_reasons=False),
    Transition.ESCALATE: _rule({CONSUMER}, {S.REJECTED}, S.ESCALATED),
    Transition.PROCEED: _rule({OFFICE}, {S.ESCALATED}, S.APPROVED),
    Transition.UPHOLD: _rule({OFFICE}, {S.ESCALATED}, S.UPHELD),
    Transition.END: _rule({EXCHANGE}, set(LIVE), S.ENDED),  # its case ended: in force or still being decided
}

# Who must act while an agreement is in a pending status, and whether its lateness goes to the office.
AWAITING: dict[Status, Role] = {S.PENDING: PROVIDER, S.COUNTERED: CONSUMER, S.ESCALATED: OFFICE}
ESCALATES_WHEN_LATE = frozenset({S.PENDING, S.COUNTERED})


class Refusal(StrEnum):
    NOT_YOURS = "not_yours"  # the caller does not hold a role that may make the step
    NOT_NOW = "not_now"  # not from the agreement's status
    NO_REASONS = "no_reasons"  # the step needs reasons


class TransitionRefused(ValueError):
    def __init__(self, kind: Refusal, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def roles_of(department: str, provider: str, consumer: str) -> frozenset[Role]:
    """The roles a department holds towards an agreement; the office only where it is not a party."""
    roles = {role for role, party in ((PROVIDER, provider), (CONSUMER, consumer)) if party == department}
    if department == COORDINATION and not roles:
        roles.add(OFFICE)
    return frozenset(roles)


def step(status: Status, transition: Transition, roles: frozenset[Role], reasons: str = "") -> Status:
    """The status after a step, or TransitionRefused saying which rule forbids it (the role first, then the status,
    then the reasons)."""
    rule = RULES[transition]
    if not rule.by & roles:
        raise TransitionRefused(Refusal.NOT_YOURS, f"only the {' or the '.join(sorted(rule.by))} may "
                                                   f"{transition.value.replace('_', '-')}")
    if status not in rule.source:
        raise TransitionRefused(Refusal.NOT_NOW, f"not from {status.value} (only from "
                                                 f"{', '.join(sorted(rule.source))})")
    if rule.needs_reasons and not reasons.strip():
        raise TransitionRefused(Refusal.NO_REASONS, f"{transition.value.replace('_', '-')} needs reasons")
    return status if rule.target is None else rule.target


def allowed(status: Status, roles: frozenset[Role]) -> list[Transition]:
    """The steps the holder of these roles may take from a status."""
    return [t for t, rule in RULES.items() if rule.by & roles and status in rule.source]


def deadline_days(status: Status, case_scoped: bool) -> int | None:
    """The working days the party awaited has for a pending status (None: nothing is awaited)."""
    if status not in AWAITING:
        return None
    return CASE_ANSWER_WITHIN_WORKING_DAYS if case_scoped else ANSWER_WITHIN_WORKING_DAYS
