"""The demo's enterprises act on the case as they last read it; the bureau may have moved it on since (another
department's opinion ended it): its 409 makes them read again, never stops the run."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from base.calendar import WorkingDayCalendar
from deploy.enterprise import Enterprises, Plan
from tests.factories import T0

CASE = "G-ENT-1"


def waiting_for_a_supplement() -> dict[str, Any]:
    return {"case_id": CASE, "status": "in_progress", "awaiting_supplement": [f"{CASE}/NRP-101/1"],
            "resubmissions": 0}


def enterprises_answered(status: int) -> tuple[Enterprises, list[str], httpx.Client]:
    enterprises = Enterprises(seed=1, calendar=WorkingDayCalendar())
    enterprises.plans[CASE] = Plan(supplement_after_days=0.0, token="case-token")
    posted: list[str] = []

    def bureau(request: httpx.Request) -> httpx.Response:
        posted.append(request.url.path)
        return httpx.Response(status, json={"detail": "answered"})

    return enterprises, posted, httpx.Client(transport=httpx.MockTransport(bureau), base_url="http://bureau")


def test_an_action_on_a_case_that_moved_on_is_counted_and_tried_again_from_a_new_view() -> None:
    enterprises, posted, bureau = enterprises_answered(409)
    enterprises.act(waiting_for_a_supplement(), T0, bureau)
    assert posted == [f"/v1/cases/{CASE}/supplements"]
    assert enterprises.stale == 1
    assert enterprises.plans[CASE].supplement_seen  # not answered: the next view decides again


def test_an_action_the_bureau_takes_is_not_sent_again() -> None:
    enterprises, posted, bureau = enterprises_answered(200)
    enterprises.act(waiting_for_a_supplement(), T0, bureau)
    assert posted == [f"/v1/cases/{CASE}/supplements"] and enterprises.stale == 0
    assert not enterprises.plans[CASE].supplement_seen


@pytest.mark.parametrize("status", [400, 403, 500])
def test_any_other_answer_is_raised_for_the_front_desk_to_judge(status: int) -> None:  # 5xx: a missed round
    enterprises, _, bureau = enterprises_answered(status)
    with pytest.raises(httpx.HTTPStatusError):
        enterprises.act(waiting_for_a_supplement(), T0, bureau)
