"""The reviewing departments: each module holds one department's rules."""

from __future__ import annotations

from contracts.departments import PLANNING
from services.departments import planning
from services.departments.opinion import Rules

RULES: dict[str, tuple[Rules, str]] = {
    PLANNING: (planning.decide, planning.OFFICER),
}
