"""`concord gateway`, `concord topics`, `concord tokens`, `concord agreements`, `concord audit`: the commands
that drive the gateway."""

from __future__ import annotations

import asyncio
import json
import os

import asyncpg
import httpx
import typer
from rich.table import Table

from deploy.runtime import answer, run_until_signalled, terminal
from deploy.settings import settings
from gateway import audit as audit_log
from gateway.identity import issue_token
from gateway.topics import ensure_topics, planned_topics
from services.kit.clock import clock_from

gateway = typer.Typer(help="The gateway: routes, checks and records every event.", no_args_is_help=True)
topics = typer.Typer(help="The exchange's Kafka topics.", no_args_is_help=True)
tokens = typer.Typer(help="Departments' bearer tokens for the HTTP API.", no_args_is_help=True)
agreements = typer.Typer(help="Sharing agreements (through the gateway's HTTP API).", no_args_is_help=True)
audit = typer.Typer(help="The exchange's audit log.", no_args_is_help=True)
console = terminal()

TokenOption = typer.Option(None, "--token", envvar="CONCORD_TOKEN", help="the department's bearer token")


@gateway.command("run")
def run(
    instance: str = typer.Option(None, help="stable instance name (a transactional id per instance)"),
    serve: bool = typer.Option(True, help="also serve the API and run the audit keeper and agreement watch"),
) -> None:
    """Run a gateway process; several share the routing of the ingress topics as one consumer group."""
    from gateway.app import run_gateway

    s = settings()
    run_until_signalled(lambda stop: run_gateway(s, clock_from(s), stop, instance, serve))


@topics.command("ensure")
def ensure() -> None:
    """Create missing topics with their partitions and retention; align the existing ones."""
    s = settings()
    specs = planned_topics(s.topics)
    done = asyncio.run(ensure_topics(s.bootstrap, specs))
    table = Table("topic", "partitions", "retention", "state")
    for spec in specs:
        retention = "kept" if spec.retention_ms < 0 else f"{spec.retention_ms // 86_400_000} days"
        table.add_row(spec.name, str(spec.partitions), retention, done.get(spec.name, ""))
    console.print(table)


@tokens.command("issue")
def issue(department: str) -> None:
    """Issue a bearer token for a department (printed once; only its hash is kept)."""

    async def create() -> str:
        pool = await asyncpg.create_pool(settings().dsn, min_size=1, max_size=1)
        try:
            return await issue_token(pool, department)
        finally:
            await pool.close()

    print(asyncio.run(create()))


def _api(token: str | None) -> httpx.Client:
    s = settings()
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=f"http://{s.gateway_host}:{s.gateway_port}", headers=headers, timeout=60.0)


@agreements.command("request")
def request(
    contract: str, fields: list[str] = typer.Argument(..., help="the fields asked for"),
    purpose: str = typer.Option(..., help="what the data is for"),
    legal_basis: str = typer.Option(..., help="the law or regulation that allows it"),
    valid_until: str = typer.Option(None, help="ISO date-time; default one year"),
    token: str = TokenOption,
) -> None:
    """Ask the provider of a contract for fields (as the department of the token)."""
    body = {"contract": contract, "fields": fields, "purpose": purpose, "legal_basis": legal_basis,
            "valid_until": valid_until}
    with _api(token) as api:
        console.print_json(json.dumps(answer(api.post("/v1/agreements", json=body)), ensure_ascii=False))


@agreements.command("list")
def list_agreements(department: str = typer.Option(None)) -> None:
    """Agreements, as consumer or provider of a department."""
    with _api(None) as api:
        rows = answer(api.get("/v1/agreements", params={"department": department} if department else {}))
    table = Table("id", "contract", "provider", "consumer", "fields", "status", "due")
    for a in rows:
        table.add_row(a["id"], a["contract_id"], a["provider"], a["consumer"], ", ".join(a["fields"]),
                      a["status"] + (" (in force)" if a["in_force"] else ""), a["due_at"][:16])
    console.print(table)


@agreements.command("approve")
def approve(agreement_id: str, token: str = TokenOption) -> None:
    """Approve a request (as its provider)."""
    with _api(token) as api:
        console.print_json(json.dumps(answer(api.post(f"/v1/agreements/{agreement_id}/approve"))))


@agreements.command("reject")
def reject(agreement_id: str, reasons: str = typer.Option(...), token: str = TokenOption) -> None:
    """Refuse a request, with reasons (as its provider)."""
    with _api(token) as api:
        result = answer(api.post(f"/v1/agreements/{agreement_id}/reject", json={"reasons": reasons}))
        console.print_json(json.dumps(result, ensure_ascii=False))


@agreements.command("revoke")
def revoke(agreement_id: str, reasons: str = typer.Option(...), token: str = TokenOption) -> None:
    """End an agreement in force (as either party); delivery stops at once."""
    with _api(token) as api:
        result = answer(api.post(f"/v1/agreements/{agreement_id}/revoke", json={"reasons": reasons}))
        console.print_json(json.dumps(result, ensure_ascii=False))


@agreements.command("backfill")
def replay(agreement_id: str, token: str = TokenOption) -> None:
    """Replay the history the agreement now lets the consumer see."""
    with _api(token) as api:
        console.print_json(json.dumps(answer(api.post(f"/v1/agreements/{agreement_id}/backfill"))))


@audit.command("verify")
def verify(table: str = typer.Option("gateway.audit_log", help="the chain table")) -> None:
    """Check the hash chain: report every changed, deleted, inserted or reordered row; exit 1 if any."""

    async def check() -> tuple[list[audit_log.Finding], tuple[int, str]]:
        connection = await asyncpg.connect(settings().dsn)
        try:
            return await audit_log.verify(connection, table=table), await audit_log.head(connection)
        finally:
            await connection.close()

    findings, (count, last) = asyncio.run(check())
    for finding in findings:
        console.print(f"[red]{finding.kind}[/red] at seq {finding.seq}: {finding.detail}")
    if findings:
        raise typer.Exit(1)
    console.print(f"audit chain intact: {count} entries, head {last[:16]}…")


@audit.command("show")
def show(case_id: str = typer.Option(None), department: str = typer.Option(None),
         contract: str = typer.Option(None), limit: int = 200) -> None:
    """Audit entries by case, department or contract."""
    with _api(os.environ.get("CONCORD_TOKEN")) as api:
        wanted: dict[str, str | int | None] = {"case_id": case_id, "department": department, "contract": contract,
                                               "limit": limit}
        params = {k: v for k, v in wanted.items() if v is not None}
        entries = answer(api.get("/v1/audit", params=params))
    table = Table("at", "action", "sender", "contract", "case", "detail")
    for e in entries:
        detail = e.get("reason") or ", ".join(e.get("delivered", {})) or e.get("detail") or ""
        table.add_row(str(e.get("at", ""))[:23], e.get("action", ""), e.get("sender", ""), e.get("contract", ""),
                      e.get("case_id", ""), str(detail))
    console.print(table)


def check_contracts() -> None:
    """Check every contract version in contracts/ against the registry: registered ones must be unchanged,
    new ones compatible under the contract's mode. Exit 1 if any is not."""
    from contracts.base import CATALOGUE
    from contracts.compatibility import Mode, incompatibilities
    from gateway.registry import fingerprint

    failures = 0
    with _api(None) as api:
        for (contract_id, version), declared in sorted(CATALOGUE.items()):
            registered = api.get(f"/v1/contracts/{contract_id}/versions")
            known = registered.json() if registered.status_code == 200 else []
            if version in known:
                schema = answer(api.get(f"/v1/contracts/{contract_id}/versions/{version}/schema"))
                same = fingerprint(schema) == fingerprint(declared.json_schema)
                failures += not same
                console.print(f"{contract_id} v{version}: " + ("registered" if same else
                              "[red]differs from the registered version[/red]"))
                continue
            mode = Mode(api.get(f"/v1/contracts/{contract_id}/config").json().get("compatibility", "BACKWARD")
                        if known else "BACKWARD")
            previous = [answer(api.get(f"/v1/contracts/{contract_id}/versions/{v}/schema"))
                        for v in known if v < version]
            differences = incompatibilities(mode, previous, declared.json_schema)
            failures += bool(differences)
            console.print(f"{contract_id} v{version}: new, " + ("compatible" if not differences else
                          "[red]incompatible[/red]") + f" under {mode.value}")
            for difference in differences:
                print(f"  {difference}")
    if failures:
        raise typer.Exit(1)


def publish_contracts(token: str = TokenOption) -> None:
    """Register the versions in contracts/ that the registry lacks, for the contracts the token's
    department owns."""
    from contracts.base import CATALOGUE

    failures = 0
    with _api(token) as api:
        for (contract_id, version), declared in sorted(CATALOGUE.items()):
            response = api.post(f"/v1/contracts/{contract_id}/versions", json={"schema": declared.json_schema})
            if response.status_code == 403:
                continue  # another department's contract
            failures += response.is_error
            state = {201: "registered", 200: "already registered"}.get(response.status_code, response.text)
            console.print(f"{contract_id} v{version}: {state}")
    if failures:
        raise typer.Exit(1)
