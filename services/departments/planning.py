"""自然资源和规划局 (Natural Resources and Planning Bureau): land pre-review and site selection, land-use and
construction-engineering planning permits, design scheme review, planning verification."""

from __future__ import annotations

from contracts.bureau import Decision, OpinionRequested, RefusalGround
from contracts.departments import PLANNING
from services.departments.rules import CaseFile, Opinion, Pace, Reviewer

MAX_PLOT_RATIO = 3.0  # the district's regulatory plan (控制性详细规划) caps the floor-area ratio
CONDITIONAL_PLOT_RATIO = 2.5
MAX_LAND_AREA_M2 = 200_000  # larger sites need the municipal bureau
INDUSTRIAL_MIN_PLOT_RATIO = 0.8  # industrial land must be used intensively (节约集约用地)


def decide(request: OpinionRequested, file: CaseFile) -> Opinion:
    project = request.project
    if project.land_area_m2 > MAX_LAND_AREA_M2:
        return Opinion(Decision.REJECTED, reasons=[
            f"site of {project.land_area_m2:,.0f} m² exceeds the district's approval authority "
            f"({MAX_LAND_AREA_M2:,} m²): apply to the municipal bureau"],
            grounds=[RefusalGround.BEYOND_DISTRICT_AUTHORITY])
    plot_ratio = project.floor_area_m2 / project.land_area_m2 if project.land_area_m2 else float("inf")
    if plot_ratio > MAX_PLOT_RATIO:
        return Opinion(Decision.REJECTED, reasons=[
            f"floor-area ratio {plot_ratio:.2f} exceeds the regulatory plan's {MAX_PLOT_RATIO}"],
            grounds=[RefusalGround.REGULATORY_PLAN])
    if request.item_code == "NRP-101" and project.project_type == "industrial" \
            and plot_ratio < INDUSTRIAL_MIN_PLOT_RATIO:
        return Opinion(Decision.APPROVED_WITH_CONDITIONS, conditions=[
            f"industrial floor-area ratio {plot_ratio:.2f} is below {INDUSTRIAL_MIN_PLOT_RATIO}: "
            "the site plan must reserve the remaining land for a second phase"])
    if plot_ratio > CONDITIONAL_PLOT_RATIO:
        return Opinion(Decision.APPROVED_WITH_CONDITIONS, conditions=[
            f"floor-area ratio {plot_ratio:.2f} is close to the cap: the design scheme must keep a 30 % green ratio"])
    return Opinion(Decision.APPROVED)


def supplement_reason(request: OpinionRequested) -> str:
    return "the site red-line drawing lacks the coordinates of the boundary points (界址点坐标)"


REVIEWER = Reviewer(PLANNING, "规划科 赵敏", Pace(median_days=4.0, spread=0.5, supplement_rate=0.10), decide,
                    supplement_reason)
