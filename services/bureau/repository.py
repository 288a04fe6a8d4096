"""Cases in PostgreSQL (schema ``bureau``)."""

from __future__ import annotations

import json

import asyncpg

from contracts.bureau import Decision
from services.bureau.model import Case, CaseApplication, CaseStatus, OpinionRequest


async def load(connection: asyncpg.Connection, case_id: str, *, for_update: bool = False) -> Case | None:
    row = await connection.fetchrow(
        "SELECT * FROM bureau.cases WHERE case_id = $1" + (" FOR UPDATE" if for_update else ""), case_id
    )
    if row is None:
        return None
    requests = await connection.fetch(
        "SELECT * FROM bureau.requests WHERE case_id = $1 ORDER BY requested_at, request_id", case_id
    )
    return Case(
        case_id=row["case_id"], application=CaseApplication.model_validate_json(row["application"]),
        agent=row["agent"], submitted_at=row["submitted_at"], status=CaseStatus(row["status"]),
        stage=row["stage"], completed_at=row["completed_at"],
        requests=[
            OpinionRequest(
                request_id=r["request_id"], stage=r["stage"], department=r["department"],
                item_code=r["item_code"], item_name=r["item_name"], requested_at=r["requested_at"],
                due_at=r["due_at"], decision=Decision(r["decision"]) if r["decision"] else None,
                conditions=json.loads(r["conditions"]), reasons=json.loads(r["reasons"]),
                decided_at=r["decided_at"],
            )
            for r in requests
        ],
    )


async def save(connection: asyncpg.Connection, case: Case) -> None:
    await connection.execute(
        "INSERT INTO bureau.cases (case_id, application, agent, status, stage, submitted_at, completed_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (case_id) DO UPDATE SET status = $4, stage = $5, completed_at = $7",
        case.case_id, case.application.model_dump_json(), case.agent, case.status.value, case.stage,
        case.submitted_at, case.completed_at,
    )
    await connection.executemany(
        "INSERT INTO bureau.requests (request_id, case_id, stage, department, item_code, item_name,"
        " requested_at, due_at, decision, conditions, reasons, decided_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        " ON CONFLICT (request_id) DO UPDATE SET decision = $9, conditions = $10, reasons = $11, decided_at = $12",
        [
            (r.request_id, case.case_id, r.stage, r.department, r.item_code, r.item_name, r.requested_at,
             r.due_at, r.decision.value if r.decision else None, json.dumps(r.conditions, ensure_ascii=False),
             json.dumps(r.reasons, ensure_ascii=False), r.decided_at)
            for r in case.requests
        ],
    )
