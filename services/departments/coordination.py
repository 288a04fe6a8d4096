"""联席会议办公室 (Coordination Office of the Joint Meeting): decides conflicts between departments' opinions and
refusals to share data that a consumer escalated, and takes up what is escalated to it (late opinions, unanswered
sharing requests)."""

from __future__ import annotations

from contracts.bureau import ConflictRaised
from contracts.coordination import Resolution
from services.departments.rules import Arbiter, Pace, SharingRefusal

# What a provider ordered to share may ask of the consumer: the joint meeting's standing conditions (联席会议制度).
SHARING_CONDITIONS = ("used only for the purpose stated in the request, for this case",
                      "not passed on to any other department or third party",
                      "deleted once the case has ended; every access logged for the provider to inspect")


def resolve(conflict: ConflictRaised) -> tuple[Resolution, list[str], list[str]]:
    """A refusal on a statutory ground (one the department's rules named) stands: the law forbids the project.
    Otherwise the approving departments carry the stage, and the refusing ones' concerns become conditions."""
    binding = [r for r in conflict.refusals if r.binding]
    if binding:
        return Resolution.UPHOLD_REFUSAL, [], [
            f"the refusal of {r.department} ({r.item_code}) stands on {', '.join(g.value for g in r.grounds)}: "
            + "; ".join(r.reasons) for r in binding]
    conditions = [f"{r.department} ({r.item_code}): {reason}" for r in conflict.refusals for reason in r.reasons]
    return Resolution.PROCEED_WITH_CONDITIONS, conditions, [
        f"approved by {', '.join(conflict.approving)}; the refusing departments' concerns become conditions"]


def resolve_refusal(refusal: SharingRefusal) -> tuple[Resolution, list[str], list[str]]:
    """A refusal to share on a ground binding in law stands: no joint meeting may order the data out. A refusal
    on the provider's judgement (or on no stated ground) is overruled: the data is shared, on conditions that
    answer the provider's fear of losing control of it."""
    if refusal.ground is not None and refusal.ground.binding:
        return Resolution.UPHOLD_REFUSAL, [], [
            f"{refusal.provider} refused {', '.join(refusal.fields)} of {refusal.contract_id} on "
            f"{refusal.ground.value}, which binds in law"]
    stated = refusal.ground.value if refusal.ground else "no stated ground"
    return Resolution.PROCEED_WITH_CONDITIONS, list(SHARING_CONDITIONS), [
        f"{refusal.provider}'s refusal ({stated}) is its judgement, and {refusal.consumer} needs "
        f"{', '.join(refusal.fields)} for: {refusal.purpose}"]


ARBITER = Arbiter("联席会议办公室 韩梅", Pace(median_days=3.0, spread=0.4), resolve, resolve_refusal)
