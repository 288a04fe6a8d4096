"""The `concord` commands a contract publisher and an operator run, against the real gateway and database."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import asyncpg

from base.settings import Settings
from contracts.departments import GATEWAY
from deploy.processes import AppProcesses
from tests.tools import concord


async def test_contracts_in_code_check_against_the_registry_and_publish_idempotently(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    code, out = await concord("contracts", "check")
    assert code == 0, out
    assert "bureau.case-submitted v1: registered" in out
    code, out = await concord("contracts", "publish", "--token", tokens["bureau"])
    assert code == 0, out
    assert "bureau.opinion-issued v1: already registered" in out
    assert "exchange." not in out  # another department's contracts are left alone


async def test_audit_verify_passes_on_the_chain_and_fails_after_a_row_is_edited(
    stack: Settings, exchange: AppProcesses
) -> None:
    code, out = await concord("audit", "verify")
    assert code == 0 and "audit chain intact" in out, out
    scratch = f"gateway.audit_tampered_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(stack.dsn(GATEWAY))  # a copy the gateway's role may read
    try:
        await connection.execute(f"CREATE TABLE {scratch} AS SELECT * FROM gateway.audit_log")
        seq = await connection.fetchval(f"SELECT seq FROM {scratch} ORDER BY seq LIMIT 1 OFFSET 3")
        await connection.execute(
            f"UPDATE {scratch} SET entry = jsonb_set(entry, '{{sender}}', '\"forged\"') WHERE seq = $1", seq)
        code, out = await concord("audit", "verify", "--table", scratch)
        assert code == 1 and f"changed at seq {seq}" in out, out
    finally:
        await connection.execute(f"DROP TABLE IF EXISTS {scratch}")
        await connection.close()


async def test_docs_are_one_asyncapi_document_and_a_schema_per_contract_version(tmp_path: Path) -> None:
    code, out = await concord("contracts", "docs", str(tmp_path))
    assert code == 0, out
    document = json.loads((tmp_path / "asyncapi.json").read_text(encoding="utf-8"))
    assert document["asyncapi"] == "3.0.0"
    schema = json.loads((tmp_path / "schemas" / "bureau.case-submitted" / "v1.json").read_text(encoding="utf-8"))
    assert schema["properties"]["contact_phone"]["x-sharing"] == "conditional"
    for message in document["components"]["messages"].values():
        assert (tmp_path / message["payload"]["$ref"]).exists()


async def test_agreements_from_the_command_line(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    code, out = await concord("agreements", "request", "bureau.case-submitted", "contact_phone",
                              "--purpose", "civil air defence design review",
                              "--legal-basis", "《人民防空法》第二十二条", env={"CONCORD_TOKEN": tokens["airdefence"]})
    assert code == 0, out
    requested = json.loads(out)
    assert requested["status"] == "pending" and requested["consumer"] == "airdefence"
    code, out = await concord("agreements", "approve", requested["id"], "--token", tokens["airdefence"])
    assert code == 1 and "only the provider" in out
    code, out = await concord("agreements", "approve", requested["id"], "--token", tokens["bureau"])
    assert code == 0 and json.loads(out)["status"] == "approved"
    code, out = await concord("agreements", "revoke", requested["id"], "--reasons", "design review done",
                              "--token", tokens["airdefence"])
    assert code == 0 and json.loads(out)["status"] == "revoked"
    # newest first by the stack's clock: a stack whose clock ran ahead in a demo holds "newer" ones, so page on
    pages: list[str] = []
    offset: str | None = "0"
    while offset is not None and not any(requested["id"] in page for page in pages):
        code, out = await concord("agreements", "list", "--department", "airdefence", "--status", "revoked",
                                  "--limit", "200", "--offset", offset)
        assert code == 0, out
        pages.append(out)
        offset = next(iter(re.findall(r"the next page: --offset (\d+)", out)), None)
    assert requested["id"] in pages[-1]
