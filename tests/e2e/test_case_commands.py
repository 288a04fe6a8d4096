"""The front desk's first hour on the command line, against the real bureau: a template that passes intake,
what a project needs, submitting, listing, finding the stuck cases, and answering for the enterprise; every
failure one line that says what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from base.settings import Settings
from deploy.processes import AppProcesses
from tests.e2e.cases import decide, officers_decide, task_of
from tests.tools import concord, eventually


async def submitted(path: Path) -> dict[str, Any]:
    code, out = await concord("case", "submit", str(path))
    assert code == 0, out
    return dict(json.loads(out))


async def test_from_a_template_to_a_submitted_case_listed_and_shown(
    stack: Settings, exchange: AppProcesses, tmp_path: Path
) -> None:
    code, out = await concord("case", "template", "--type", "commercial", "--seed", "11")
    assert code == 0, out
    application = tmp_path / "application.json"
    application.write_text(out, encoding="utf-8")
    code, out = await concord("case", "requirements", str(application), "--json")
    assert code == 0 and json.loads(out)["intake"] is None, out
    code, out = await concord("case", "requirements", str(application))
    assert code == 0 and "intake: passes" in out and "NRP-101" in out, out

    case = await submitted(application)
    assert case["status"] == "in_progress" and case["case_token"].startswith("case_")
    code, out = await concord("case", "list", "--status", "in_progress", "--json", "--case", case["case_id"],
                              "--case", "G-NO-SUCH-CASE")
    assert code == 0, out
    assert [c["case_id"] for c in json.loads(out)["cases"]] == [case["case_id"]]
    code, out = await concord("case", "list", "--status", "completed", "--json", "--case", case["case_id"])
    assert code == 0 and json.loads(out)["cases"] == [], out
    code, out = await concord("case", "show", case["case_id"], "--token", case["case_token"])
    assert code == 0 and json.loads(out)["case_id"] == case["case_id"], out  # the applicant's own token


async def test_a_case_a_department_leaves_waiting_is_listed_as_stuck_and_the_supplement_answered(
    stack: Settings, exchange: AppProcesses, tmp_path: Path
) -> None:
    code, out = await concord("case", "template", "--type", "warehouse", "--seed", "12")
    application = tmp_path / "application.json"
    application.write_text(out, encoding="utf-8")
    async with officers_decide(stack, "planning"):
        case = await submitted(application)
        task = await task_of(stack, "planning", case["case_id"])  # planning's officers say nothing: it runs late

        async def stuck() -> list[dict[str, Any]]:
            code, out = await concord("case", "list", "--stuck", "--json", "--case", case["case_id"])
            assert code == 0, out
            return [c for c in json.loads(out)["cases"] if c["case_id"] == case["case_id"]]

        async def overdue() -> bool:
            found = await stuck()
            return bool(found) and any(h["hold"] == "overdue" and h["department"] == "planning"
                                       for h in found[0]["stuck"])

        await eventually(overdue, timeout=60)
        code, out = await concord("case", "list", "--stuck", "--case", case["case_id"])
        assert code == 0 and case["case_id"] in out and "overdue" in out, out
        await decide(stack, "planning", task["task_id"], "supplement_requested", reasons=["界址点坐标表"])

        async def asked() -> bool:
            return any(h["hold"] == "supplement" for c in await stuck() for h in c["stuck"])

        await eventually(asked)
        assert await waiting_for_applicant(case["case_id"])
        code, out = await concord("case", "supplement", case["case_id"], "界址点坐标表")
    assert code == 0, out
    answered = json.loads(out)
    assert answered["awaiting_supplement"] == [] and not [h for h in answered["stuck"] if h["hold"] == "supplement"]
    waiting = await listed_for_applicant(case["case_id"])  # only if another department asked for more meanwhile
    assert not waiting or waiting[0]["awaiting_supplement"], waiting


async def listed_for_applicant(case_id: str) -> list[dict[str, Any]]:
    code, out = await concord("case", "list", "--applicant", "--json", "--case", case_id)
    assert code == 0, out
    return list(json.loads(out)["cases"])


async def waiting_for_applicant(case_id: str) -> bool:
    return [c["case_id"] for c in await listed_for_applicant(case_id)] == [case_id]


async def test_promised_documents_and_a_resubmission_from_the_command_line_and_their_errors(
    stack: Settings, exchange: AppProcesses, tmp_path: Path
) -> None:
    code, out = await concord("case", "template", "--type", "public", "--seed", "13")
    body = json.loads(out)
    code, out = await concord("case", "requirements", str(_write(tmp_path / "a.json", body)), "--json")
    later = next(d["name"] for d in json.loads(out)["documents"] if not d["key"])
    promising = body | {"documents": [d for d in body["documents"] if d != later], "promised_documents": [later],
                        "promised_by": "2099-01-04T09:00:00+08:00"}
    case = await submitted(_write(tmp_path / "promising.json", promising))
    assert case["promised_documents"] == [later] and await waiting_for_applicant(case["case_id"])
    code, out = await concord("case", "documents", case["case_id"], later)
    assert code == 0 and json.loads(out)["promised_documents"] == [], out
    waiting = await listed_for_applicant(case["case_id"])  # only if a department asked for more meanwhile
    assert not waiting or waiting[0]["awaiting_supplement"], waiting

    code, out = await concord("case", "resubmit", case["case_id"], str(tmp_path / "promising.json"))
    assert code == 1 and out.count("\n") == 1, out  # one line: only a refused case may be resubmitted
    assert "answered 409" in out

    missing = body | {"documents": body["documents"][1:]}
    code, out = await concord("case", "submit", str(_write(tmp_path / "missing.json", missing)))
    assert code == 1 and out.count("\n") == 1 and "422" in out and "key documents missing" in out, out


async def test_every_failure_is_one_line_saying_what_to_do(stack: Settings, exchange: AppProcesses) -> None:
    code, out = await concord("case", "show", "G-NO-SUCH-CASE")
    assert code == 1 and out.count("\n") == 1 and "404" in out, out
    code, out = await concord("case", "list", env={"CONCORD_BUREAU_PORT": "9"})
    assert code == 2 and out.count("\n") == 1 and "concord service run bureau" in out, out
    code, out = await concord("credentials", "issue", "nosuchdept")
    assert code == 2 and "planning" in out and "Traceback" not in out, out
    code, out = await concord("clock", "show", env={"CONCORD_CLOCK_SPEED": "100"})
    assert code == 2 and out.count("\n") == 1 and "concord clock set" in out, out


def _write(path: Path, body: object) -> Path:
    path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    return path
