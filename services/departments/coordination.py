"""联席会议办公室 (Coordination Office of the Joint Meeting): decides conflicts between departments' opinions,
and takes up what is escalated to it (late opinions, unanswered sharing requests)."""

from __future__ import annotations

from contracts.bureau import ConflictRaised
from contracts.coordination import Resolution
from services.departments.rules import Arbiter, Pace


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


ARBITER = Arbiter("联席会议办公室 韩梅", Pace(median_days=3.0, spread=0.4), resolve)
