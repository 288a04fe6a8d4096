"""联席会议办公室 (Coordination Office of the Joint Meeting): decides conflicts between departments' opinions,
and takes up what is escalated to it (late opinions, unanswered sharing requests)."""

from __future__ import annotations

from typing import Any

from contracts.coordination import Resolution
from services.departments.desk import Arbiter, Pace

# A refusal grounded in one of these cannot be overruled by the joint meeting: the law forbids the project.
BINDING_GROUNDS = ("生态保护红线", "restricted by the industrial structure catalogue", "approval authority",
                   "exceeds the regulatory plan", "registration is")


def resolve(conflict: dict[str, Any]) -> tuple[Resolution, list[str], list[str]]:
    refusals = conflict["refusals"]
    binding = [reason for refusal in refusals for reason in refusal["reasons"]
               if any(ground in reason for ground in BINDING_GROUNDS)]
    if binding:
        return Resolution.UPHOLD_REFUSAL, [], [f"the refusal stands on a binding ground: {reason}"
                                               for reason in binding]
    conditions = [f"{r['department']} ({r['item_code']}): {reason}" for r in refusals for reason in r["reasons"]]
    return Resolution.PROCEED_WITH_CONDITIONS, conditions, [
        f"approved by {', '.join(conflict['approving'])}; the refusing departments' concerns become conditions"]


ARBITER = Arbiter("联席会议办公室 韩梅", Pace(median_days=3.0, spread=0.4), resolve)
