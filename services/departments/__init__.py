"""The departments: one module per department with its rules, and the desk they share."""

from __future__ import annotations

from services.departments import airdefence, devreform, environment, housing, market, planning, water
from services.departments.rules import Reviewer

REVIEWERS: dict[str, Reviewer] = {
    r.code: r for r in (devreform.REVIEWER, planning.REVIEWER, environment.REVIEWER, housing.REVIEWER,
                        airdefence.REVIEWER, market.REVIEWER, water.REVIEWER)
}
