"""The enterprises of the demo: they hand in applications, sometimes promise a non-key document for later
(容缺受理) and keep or miss the promise, sometimes commit in writing to the items that may be approved on
commitment (告知承诺制), answer supplement requests after a few working days, and revise and resubmit some refused
projects. They act only through the bureau's HTTP API, as a front desk would."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from base.calendar import WorkingDayCalendar
from contracts.bureau import Project
from services.bureau.catalogue import load_catalogue
from services.bureau.model import CaseApplication
from services.bureau.samples import application
from services.departments.devreform import RESTRICTED_INDUSTRIES

SAFE_LOCATION = "临港工业园"
COMMITMENT_RATE = 0.4  # enterprises that choose approval on commitment where the catalogue offers it


@dataclass
class Plan:
    """How one enterprise behaves, drawn once per case."""

    promised: list[str] = field(default_factory=list)
    deliver_after_days: float | None = None  # None: the promise is never kept
    supplement_after_days: float = 2.0
    resubmits: bool = False
    # what has happened
    token: str = ""  # the case token the bureau gave at submission: the enterprise acts with it
    submitted_at: datetime | None = None
    supplement_seen: dict[str, datetime] = field(default_factory=dict)
    delivered: bool = False
    refused_at: datetime | None = None


class Enterprises:
    def __init__(self, seed: int, calendar: WorkingDayCalendar) -> None:
        self.rng = random.Random(seed)
        self.calendar = calendar
        self.plans: dict[str, Plan] = {}
        self.stale = 0  # actions the bureau refused (409) because the case had moved on since its view was read

    def new_application(self, now: datetime) -> tuple[CaseApplication, Plan]:
        candidate = application(self.rng)
        plan = Plan(supplement_after_days=self.rng.uniform(1, 4), resubmits=self.rng.random() < 0.6)
        catalogue = load_catalogue()
        offered = [i.code for i in catalogue.items if i.commitment is not None and i.applies(candidate.project)]
        if offered and self.rng.random() < COMMITMENT_RATE:
            candidate = candidate.model_copy(update={"commitments": offered})
        optional = [d.name for d in catalogue.documents_for(candidate.project) if not d.key]
        if optional and self.rng.random() < 0.12:  # 容缺受理: one non-key document promised for later
            plan.promised = [self.rng.choice(optional)]
            roll = self.rng.random()
            plan.deliver_after_days = 3.0 if roll < 0.6 else (9.0 if roll < 0.85 else None)
            candidate = candidate.model_copy(update={
                "documents": [d for d in candidate.documents if d not in plan.promised],
                "promised_documents": plan.promised,
                "promised_by": self.calendar.add_working_days(now, 5),
            })
        return candidate, plan

    def finished(self, view: dict[str, Any]) -> bool:
        """Ended, with no approval on commitment still to be verified (a failed verification reopens a case)."""
        plan = self.plans[view["case_id"]]
        if any(r["on_commitment"] and r["verification"] is None for r in view["requests"]) \
                and view["status"] != "closed":
            return False
        if view["status"] in ("completed", "closed"):
            return True
        return view["status"] == "rejected" and (not plan.resubmits or view["resubmissions"] >= 1)

    def act(self, view: dict[str, Any], now: datetime, bureau: httpx.Client) -> None:
        """What the enterprise does about its case at this moment (with its own case token)."""
        case_id = view["case_id"]
        plan = self.plans[case_id]
        if view["status"] == "completed":
            return  # waits for a verification of an approval on commitment: nothing to do meanwhile
        own = {"authorization": f"Bearer {plan.token}"}

        def send(action: str, body: dict[str, Any]) -> bool:
            """Whether the bureau took it. 409: the case moved on since the view was read (another department's
            opinion ended it, say); the next round reads it again."""
            answer = bureau.post(f"/v1/cases/{case_id}/{action}", json=body, headers=own)
            if answer.status_code == httpx.codes.CONFLICT:
                self.stale += 1
                return False
            answer.raise_for_status()
            return True

        if plan.promised and not plan.delivered and plan.deliver_after_days is not None and plan.submitted_at \
                and self.calendar.working_days_between(plan.submitted_at, now) >= plan.deliver_after_days:
            plan.delivered = send("documents", {"documents": plan.promised})
        for request_id in view["awaiting_supplement"]:
            seen = plan.supplement_seen.setdefault(request_id, now)
            if self.calendar.working_days_between(seen, now) >= plan.supplement_after_days:
                if send("supplements", {"documents": [f"补正材料 {request_id.split('/')[1]}"]}):
                    plan.supplement_seen.clear()
                break  # one answer covers every open supplement request of the case
        if view["status"] == "rejected" and plan.resubmits and view["resubmissions"] == 0:
            plan.refused_at = plan.refused_at or now
            if self.calendar.working_days_between(plan.refused_at, now) >= 3:
                send("resubmissions", {"project": revise(Project.model_validate(view["project"])).model_dump(
                    mode="json")})


def revise(project: Project) -> Project:
    """What an enterprise changes after a refusal: a smaller building, a site outside the protected area."""
    land = min(project.land_area_m2, 180_000)
    return project.model_copy(update={
        "land_area_m2": land,
        "floor_area_m2": min(project.floor_area_m2, round(land * 2.2, -2)),
        "location": SAFE_LOCATION if "保护区" in project.location else project.location,
        "industry_code": "C3989" if project.industry_code in RESTRICTED_INDUSTRIES else project.industry_code,
    })
