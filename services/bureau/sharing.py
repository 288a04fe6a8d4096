"""The bureau as a provider of data: it holds the applicants' contacts (``bureau.case-submitted``'s conditional
fields) and answers, at its pace and by these rules, the departments' requests for them that a review of one of
its cases waits for (approving, refusing, or offering the phone alone). A request no review waits for (one made by
hand, for a standing agreement) is left to the bureau's officers, who answer it through the agreement API. Pure: no
I/O."""

from __future__ import annotations

from contracts.exchange import AgreementRequested
from contracts.refusal_grounds import SharingGround
from services.bureau.model import Case
from services.departments.rules import Pace, draw
from services.kit.agreements import APPROVED, SharingAnswer

PACE = Pace(median_days=1.5, spread=0.6)
# Agents (代办员) who would rather arrange a visit with their enterprise themselves than hand its contact on: the
# paper's "loss of control", a judgement the coordination office may overrule.
AGENT_KEEPS_CONTACT_RATE = 0.3
# Agents who hand on the phone that reaches the site but not the person's name, when both are asked for: a visit is
# arranged by phone (个保法 第六条's "minimum necessary", as the agent reads it): a counter-offer.
PHONE_ONLY_RATE = 0.3
PHONE = "contact_phone"
# A request is answered once the review waiting for it is known (the department says so in its own event, which
# may come after the request): until then the answer waits, this long at most (then it is the officers'), looking
# again this often.
CASE_GRACE_DAYS = 2.0
LOOK_AGAIN_DAYS = 0.1


def decide(request: AgreementRequested, case: Case) -> SharingAnswer:
    """The applicant's contacts go to a department whose review of the case waits for them, for as long as the
    case runs; the case's agent sometimes keeps the contact to itself."""
    if case.status.ended:
        return SharingAnswer(SharingGround.NO_LEGAL_BASIS,
                             f"{case.case_id} has ended: contacts are shared only to handle the applicant's own "
                             "approval (《政务数据共享条例》第十四条)")
    if draw(request.agreement_id, "agent") < AGENT_KEEPS_CONTACT_RATE:
        return SharingAnswer(SharingGround.NOT_NECESSARY,
                             f"the case's agent {case.agent} (代办员) arranges it with the applicant: ask the agent")
    if PHONE in request.fields and len(request.fields) > 1 and draw(request.agreement_id, "offer") < PHONE_ONLY_RATE:
        return SharingAnswer(SharingGround.NOT_NECESSARY,
                             f"the case's agent {case.agent} (代办员) offers the phone that reaches the site: a visit "
                             "is arranged by phone, the person's name is more than it needs", offered=(PHONE,))
    return APPROVED
