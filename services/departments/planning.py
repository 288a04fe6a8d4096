"""自然资源和规划局 (Natural Resources and Planning Bureau): its rules for the items it approves."""

from __future__ import annotations

from contracts.bureau import Decision, OpinionRequested
from services.departments.opinion import Opinion

OFFICER = "规划科 赵敏"
MAX_PLOT_RATIO = 3.0  # the district's regulatory plan (控制性详细规划) caps the floor-area ratio
CONDITIONAL_PLOT_RATIO = 2.5
MAX_LAND_AREA_M2 = 200_000  # larger sites need the municipal bureau


def decide(request: OpinionRequested) -> Opinion:
    project = request.project
    if project.land_area_m2 > MAX_LAND_AREA_M2:
        return Opinion(Decision.REJECTED, reasons=[
            f"site of {project.land_area_m2:,.0f} m² exceeds the district's approval authority "
            f"({MAX_LAND_AREA_M2:,} m²): apply to the municipal bureau"])
    plot_ratio = project.floor_area_m2 / project.land_area_m2 if project.land_area_m2 else float("inf")
    if plot_ratio > MAX_PLOT_RATIO:
        return Opinion(Decision.REJECTED, reasons=[
            f"floor-area ratio {plot_ratio:.2f} exceeds the regulatory plan's {MAX_PLOT_RATIO}"])
    if plot_ratio > CONDITIONAL_PLOT_RATIO:
        return Opinion(Decision.APPROVED_WITH_CONDITIONS, conditions=[
            f"floor-area ratio {plot_ratio:.2f} is close to the cap: the design scheme must keep a 30 % green ratio"])
    return Opinion(Decision.APPROVED)
