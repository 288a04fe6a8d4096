"""`concord gateway`, `concord topics`, `concord credentials`, `concord acls`, `concord agreements`,
`concord audit`, `concord catalogue`, and the operator's `concord lag`, `concord tail` and `concord rejections`: the
commands that drive
and watch the gateway. Provisioning (topics, credentials, ACLs) acts as the
deployment's admin; the others call the gateway's API with a bearer token."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from base.runtime import TokenOption, answer, api_client, local_time, terminal
from contracts.departments import DEPARTMENTS, GATEWAY, OPERATOR, PRINCIPALS
from contracts.exchange import AgreementStatus
from contracts.refusal_grounds import SharingGround

if TYPE_CHECKING:  # the commands import what they use when they run: `concord --help` stays quick
    import httpx

    from base.settings import Settings

gateway = typer.Typer(help="The gateway: routes, checks and records every event.", no_args_is_help=True)
topics = typer.Typer(help="The exchange's Kafka topics.", no_args_is_help=True)
credentials = typer.Typer(help="Principals' credentials for the broker and the HTTP APIs (as the admin).",
                          no_args_is_help=True)
acls = typer.Typer(help="The broker's ACLs, derived from the departments and contracts.", no_args_is_help=True)
agreements = typer.Typer(help="Sharing agreements (through the gateway's HTTP API).", no_args_is_help=True)
audit = typer.Typer(help="The exchange's audit log.", no_args_is_help=True)
console = terminal()



def principal_code(value: str) -> str:
    """A principal's code, checked before anything connects: a wrong one is told the valid ones."""
    if value not in PRINCIPALS:
        raise typer.BadParameter(f"no principal {value!r}; one of: {', '.join(PRINCIPALS)}")
    return value


def department_code(value: str) -> str:
    if value not in DEPARTMENTS:
        raise typer.BadParameter(f"no department {value!r}; one of: {', '.join(sorted(DEPARTMENTS))}")
    return value



@topics.command("ensure")
def ensure() -> None:
    """Create missing topics with their partitions and retention (a shared topic for every contract in code or
    registered), align the existing ones, and bring the ACLs in line with the credentials in force."""
    from gateway.provisioning import provisioner

    async def provision() -> dict[str, str]:
        async with provisioner(_settings()) as admin:
            return await admin.ensure_topics(_settings().topics)

    table = Table("topic", "state")
    for name, state in sorted(asyncio.run(provision()).items()):
        table.add_row(name, state)
    console.print(table)
    console.print("ACLs in line with the credentials in force (`concord acls list`)")


@credentials.command("issue")
def issue(principal: str = typer.Argument(..., help="a department's code, gateway or operator",
                                          parser=principal_code),
          save: bool = typer.Option(False, help="also keep them in the secrets folder for this host's processes")
          ) -> None:
    """New credentials for a principal, printed once as JSON (the exchange keeps only salted hashes). Those it
    already holds keep working until revoked: issue, switch the clients, then revoke the old ones."""
    from gateway.provisioning import provisioner

    s = _settings()

    async def create() -> str:
        async with provisioner(s) as admin:
            issued = await admin.issue(principal)
        if save:
            s.secrets.save_credentials(issued)
        return issued.model_dump_json(indent=2)

    print(asyncio.run(create()))


@credentials.command("revoke")
def revoke_credentials(principal: str = typer.Argument(..., parser=principal_code),
                       ids: list[str] = typer.Option(None, "--id", help="only this credential (repeat for several)")
                       ) -> None:
    """Revoke a principal's credentials (all, or those named): they fail at once, on the broker (no new
    connection, and no request on an open one) and on every API."""
    from gateway.provisioning import provisioner

    async def act() -> list[str]:
        async with provisioner(_settings()) as admin:
            return [r.id for r in await admin.revoke(principal, ids or None)]

    revoked = asyncio.run(act())
    console.print(f"{principal}: revoked {', '.join(revoked)}" if revoked
                  else f"{principal}: nothing in force to revoke")


@credentials.command("list")
def list_credentials(principal: str = typer.Argument(None, parser=principal_code)) -> None:
    """Who holds which credentials (never a secret)."""
    import asyncpg

    from gateway.credentials import CredentialStore

    async def fetch() -> list[tuple[str, ...]]:
        pool = await asyncpg.create_pool(_settings().admin_dsn, min_size=1, max_size=1)
        try:
            return [(r.id, r.principal, r.kafka_user, f"{r.issued_at:%Y-%m-%d %H:%M:%S%z}",
                     f"{r.revoked_at:%Y-%m-%d %H:%M:%S%z}" if r.revoked_at else "in force")
                    for r in await CredentialStore(pool).records(principal)]
        finally:
            await pool.close()

    table = Table("id", "principal", "kafka user", "issued", "revoked")
    for row in asyncio.run(fetch()):
        table.add_row(*row)
    console.print(table)


@acls.command("list")
def list_acls(principal: str = typer.Argument(None, parser=principal_code)) -> None:
    """The ACLs the broker holds, and whether they are those the departments, contracts and credentials call for."""
    from gateway.acls import Acl, namespace_of, planned
    from gateway.provisioning import provisioner
    from gateway.topics import existing_topics

    async def fetch() -> tuple[set[Acl], int, set[Acl], dict[str, str]]:
        async with provisioner(_settings()) as admin:
            held, foreign = await asyncio.to_thread(admin.broker.acls)
            active = await admin.store.active()
            spaces = {ns for t in await existing_topics(admin.access) if (ns := namespace_of(t)) is not None}
        return held, len(foreign), planned([c.holder for c in active], spaces), {c.kafka_user: c.principal
                                                                                 for c in active}

    held, foreign, wanted, holders = asyncio.run(fetch())
    table = Table("principal", "user", "resource", "pattern", "name", "operation")
    for acl in sorted(held):
        owner = holders.get(acl.user, "(no credential)")
        if principal is None or owner == principal:
            table.add_row(owner, acl.user, acl.resource.value, acl.pattern.value, acl.name, acl.operation.value)
    console.print(table)
    missing, extra = len(wanted - held), len(held - wanted) + foreign
    console.print("in line with the plan" if not missing and not extra else
                  f"[red]{missing} missing, {extra} not planned[/red]: run `concord topics ensure`")


def _settings() -> Settings:
    from base.settings import Settings

    return Settings.from_environment()


def _api(token: str | None, acting: str | None = None) -> httpx.Client:
    """The gateway's API with the token given, else the local stack's credentials of the principal acting."""
    s = _settings()
    return api_client(s, s.gateway_address, token, acting)


@agreements.command("request")
def request(
    contract: str, fields: list[str] = typer.Argument(..., help="the fields asked for"),
    purpose: str = typer.Option(..., help="what the data is for"),
    legal_basis: str = typer.Option(..., help="the law or regulation that allows it"),
    valid_until: str = typer.Option(None, help="ISO date-time; default one year"),
    case: str = typer.Option(None, help="for the life of this case only (decided within 3 working days)"),
    working_days: int = typer.Option(None, help="in force this many working days from approval"),
    token: str = TokenOption,
) -> None:
    """Ask the provider of a contract for fields (as the department of the token)."""
    body: dict[str, Any] = {"contract": contract, "fields": fields, "purpose": purpose, "legal_basis": legal_basis,
                            "valid_until": valid_until}
    if case:
        body["scope"] = {"case_id": case}
    if working_days:
        body["window"] = {"working_days": working_days}
    with _api(token) as api:
        console.print_json(json.dumps(answer(api.post("/v1/agreements", json=body)), ensure_ascii=False))


@agreements.command("list")
def list_agreements(department: str = typer.Option(None, parser=department_code),
                    status: list[AgreementStatus] = typer.Option([], help="only of this status (repeat for several)"),
                    case: str = typer.Option(None, help="only this case's agreements"),
                    limit: int = typer.Option(50, min=1, max=200, help="agreements on the page"),
                    offset: int = typer.Option(0, min=0, help="where the page begins (newest first)"),
                    token: str = TokenOption) -> None:
    """Agreements, as consumer or provider of a department (the operator's view unless a token says otherwise),
    newest first, a page at a time."""
    params: dict[str, Any] = {"limit": limit, "offset": offset, "status": [s.value for s in status]}
    params |= ({"department": department} if department else {}) | ({"case": case} if case else {})
    with _api(token, OPERATOR) as api:
        found = answer(api.get("/v1/agreements", params=params))
    more = "" if found["next_offset"] is None else f"; the next page: --offset {found['next_offset']}"
    table = Table("id", "contract", "provider", "consumer", "fields", "status", "due",
                  caption=f"{len(found['agreements'])} of {found['total']} from {offset}{more}")
    for a in found["agreements"]:
        table.add_row(a["id"], a["contract_id"], a["provider"], a["consumer"], ", ".join(a["fields"]),
                      a["status"] + (" (in force)" if a["in_force"] else ""), local_time(a["due_at"]))
    console.print(table)


@agreements.command("approve")
def approve(agreement_id: str, token: str = TokenOption) -> None:
    """Approve a request (as its provider)."""
    with _api(token) as api:
        console.print_json(json.dumps(answer(api.post(f"/v1/agreements/{agreement_id}/approve"))))


GroundOption = typer.Option(None, help="the reasons' ground, as a type (no_legal_basis and personal_information "
                                     "bind in law)")


@agreements.command("reject")
def reject(agreement_id: str, reasons: str = typer.Option(...), ground: SharingGround | None = GroundOption,
           token: str = TokenOption) -> None:
    """Refuse a request, with reasons and their ground (as its provider)."""
    _step(agreement_id, "reject", token, {"reasons": reasons, "ground": ground})


@agreements.command("revoke")
def revoke(agreement_id: str, reasons: str = typer.Option(...), token: str = TokenOption) -> None:
    """End an agreement in force (as either party); delivery stops at once."""
    with _api(token) as api:
        result = answer(api.post(f"/v1/agreements/{agreement_id}/revoke", json={"reasons": reasons}))
        console.print_json(json.dumps(result, ensure_ascii=False))


def _step(agreement_id: str, action: str, token: str | None, body: dict[str, Any] | None = None) -> None:
    with _api(token) as api:
        result = answer(api.post(f"/v1/agreements/{agreement_id}/{action}", json=body))
        console.print_json(json.dumps(result, ensure_ascii=False))


@agreements.command("counter-offer")
def counter_offer(agreement_id: str, reasons: str = typer.Option(...),
                  field: list[str] = typer.Option(None, help="a field offered (repeat); default: those asked for"),
                  valid_until: str = typer.Option(None, help="an earlier end (ISO date-time)"),
                  working_days: int = typer.Option(None, help="fewer working days (a working-day window)"),
                  ground: SharingGround | None = GroundOption, token: str = TokenOption) -> None:
    """Offer some of the fields asked for and/or a shorter period, with reasons (as the provider)."""
    _step(agreement_id, "counter-offer", token, {"reasons": reasons, "fields": field or None,
                                                 "valid_until": valid_until, "working_days": working_days,
                                                 "ground": ground})


@agreements.command("accept")
def accept(agreement_id: str, token: str = TokenOption) -> None:
    """Accept a counter-offer: in force on its terms (as the consumer)."""
    _step(agreement_id, "accept", token)


@agreements.command("decline")
def decline(agreement_id: str, reasons: str = typer.Option("", help="why (optional)"),
            token: str = TokenOption) -> None:
    """Decline a counter-offer: the agreement is closed (as the consumer)."""
    _step(agreement_id, "decline", token, {"reasons": reasons})


@agreements.command("suspend")
def suspend(agreement_id: str, reasons: str = typer.Option(...), token: str = TokenOption) -> None:
    """Stop deliveries under an agreement for a while, with reasons (as the provider)."""
    _step(agreement_id, "suspend", token, {"reasons": reasons})


@agreements.command("resume")
def resume(agreement_id: str, reasons: str = typer.Option(...), token: str = TokenOption) -> None:
    """Let deliveries under a suspended agreement go on, with reasons (as the provider)."""
    _step(agreement_id, "resume", token, {"reasons": reasons})


@agreements.command("renew")
def renew(agreement_id: str, valid_until: str = typer.Option(None, help="the new end (ISO date-time)"),
          working_days: int = typer.Option(None, help="working days from the current end"),
          token: str = TokenOption) -> None:
    """Ask for the period after an agreement's end (as the consumer): a new agreement the provider decides."""
    _step(agreement_id, "renew", token, {"valid_until": valid_until, "working_days": working_days})


@agreements.command("escalate")
def escalate(agreement_id: str, reasons: str = typer.Option(...), token: str = TokenOption) -> None:
    """Take a refusal to the coordination office, with reasons (as the consumer)."""
    _step(agreement_id, "escalate", token, {"reasons": reasons})


@agreements.command("proceed")
def proceed(agreement_id: str, reasons: str = typer.Option(...),
            condition: list[str] = typer.Option(None, help="a condition attached (repeat)"),
            token: str = TokenOption) -> None:
    """Put an escalated agreement in force, with conditions (as the coordination office)."""
    _step(agreement_id, "proceed", token, {"reasons": reasons, "conditions": condition or []})


@agreements.command("uphold")
def uphold(agreement_id: str, reasons: str = typer.Option(...), token: str = TokenOption) -> None:
    """Uphold an escalated refusal, with reasons (as the coordination office)."""
    _step(agreement_id, "uphold", token, {"reasons": reasons})


@agreements.command("backfill")
def replay(agreement_id: str, token: str = TokenOption) -> None:
    """Replay the history the agreement now lets the consumer see."""
    with _api(token) as api:
        console.print_json(json.dumps(answer(api.post(f"/v1/agreements/{agreement_id}/backfill"))))


@audit.command("verify")
def verify(table: str = typer.Option("gateway.audit_log", help="the chain table"),
           public_key: Path | None = typer.Option(None, help="the anchors' public key (PEM); default: the one in "
                                                               "the deployment's secrets folder")) -> None:
    """Check the hash chain: report every changed, deleted, inserted or reordered row, and against the signed
    anchors on the broker a truncated tail, a rewritten chain or a forged anchor; exit 1 if any."""

    import asyncpg

    from gateway import audit as audit_log
    from gateway.audit.anchor import verifying_key

    settings = _settings()
    anchors = audit_log.AnchorLog(settings.kafka(GATEWAY), settings.topics.audit_anchor,
                                  verifying_key(public_key or settings.secrets.anchor_public_file))

    async def check() -> audit_log.Verification:
        connection = await asyncpg.connect(settings.dsn(GATEWAY))
        try:
            return await audit_log.check(connection, anchors, table)
        finally:
            await connection.close()

    result = asyncio.run(check())
    for finding in result.findings:
        console.print(f"[red]{finding.kind}[/red] at seq {finding.seq}: {finding.detail}")
    latest = result.latest
    anchored = (f"{result.anchors} anchors, the latest at seq {latest.seq} ({local_time(latest.at)}, key {latest.key})"
                if latest else f"no anchor yet (key {anchors.key_id})")
    if result.findings:
        console.print(f"{result.count} entries; {anchored}")
        raise typer.Exit(1)
    console.print(f"audit chain intact: {result.count} entries, head {result.head[:16]}…; {anchored}")


@audit.command("show")
def show(case_id: str = typer.Option(None), department: str = typer.Option(None),
         contract: str = typer.Option(None), limit: int = 200, token: str = TokenOption) -> None:
    """Audit entries by case, department or contract (the operator's view unless a token says otherwise)."""
    with _api(token, OPERATOR) as api:
        wanted: dict[str, str | int | None] = {"case_id": case_id, "department": department, "contract": contract,
                                               "limit": limit}
        params = {k: v for k, v in wanted.items() if v is not None}
        entries = answer(api.get("/v1/audit", params=params))
    table = Table("at", "action", "sender", "contract", "case", "detail")
    for e in entries:
        first = e.get("first")  # of a resend
        detail = e.get("reason") or ", ".join(e.get("delivered", {})) or e.get("detail") or (
            f"resend of {first['topic']}/{first['partition']}/{first['offset']}" if first else "")
        table.add_row(str(e.get("at", ""))[:23], e.get("action", ""), e.get("sender", ""), e.get("contract", ""),
                      e.get("case_id", ""), str(detail))
    console.print(table)


# --- what operators watch, from a terminal (the console's views, through the gateway's API) -----------------
def lag(department: str = typer.Option(None, parser=department_code, help="one department's consumers"),
        as_json: bool = typer.Option(False, "--json"), token: str = TokenOption) -> None:
    """Consumer lag per department and topic: records each consumer has yet to take up (the router's on the
    ingress topics too), as the gateway last sampled it from the broker."""
    with _api(token, OPERATOR) as api:
        lags = answer(api.get("/v1/lag", params={"department": department} if department else {}))
    if as_json:
        print(json.dumps(lags, ensure_ascii=False, indent=2))
        return
    table = Table("department", "group", "topic", "lag", "records", title=f"consumer lag at "
                  f"{local_time(lags[0]['sampled_at']) if lags else ''}")
    for row in sorted(lags, key=lambda r: (-r["lag"], r["department"], r["topic"])):
        table.add_row(row["department"], row["group"], row["topic"], str(row["lag"]), str(row["end"]),
                      style="bold red" if row["lag"] else None)
    console.print(table)


def tail_topic(topic: str = typer.Argument(..., help="a topic of the exchange (deliver.planning, "
                                                      "deadletter.market, shared.bureau.case-submitted, ...)"),
               last: int = typer.Option(10, "--last", "-n", help="records per partition"),
               follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new records (Ctrl-C ends)"),
               as_json: bool = typer.Option(False, "--json", help="one JSON object per record"),
               token: str = TokenOption) -> None:
    """The latest records of a topic, masked exactly as the console masks them: unconditional values shown,
    conditional and not-shared ones (and any whose class is unknown) replaced by their class."""
    import time

    after: dict[int, int] = {}
    with _api(token, OPERATOR) as api:
        while True:
            params: dict[str, str | int] = {"last": last}
            if after:
                params["after"] = ",".join(f"{p}:{o}" for p, o in sorted(after.items()))
            for record in answer(api.get(f"/v1/topics/{topic}/records", params=params)):
                after[record["partition"]] = record["offset"] + 1
                if as_json:
                    print(json.dumps(record, ensure_ascii=False))
                else:
                    head = (f"[bold]{record['partition']}:{record['offset']}[/bold] {local_time(record['timestamp'])}"
                            f" {record['headers'].get('ce_type', '')} {record['key'] or ''}")
                    console.print(head, highlight=False)
                    if record["envelope_problem"]:
                        console.print(f"  [yellow]{record['envelope_problem']}[/yellow]", highlight=False)
                    console.print_json(json.dumps(record["payload"], ensure_ascii=False))
            if not follow:
                return
            time.sleep(1.0)


def rejections(department: str = typer.Option(None, parser=department_code, help="refusals of one sender"),
               as_json: bool = typer.Option(False, "--json"), token: str = TokenOption) -> None:
    """What the exchange refused, and why: reason, sender, contract, time (newest last)."""
    with _api(token, OPERATOR) as api:
        found = answer(api.get("/v1/rejections", params={"department": department} if department else {}))
    if as_json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return
    table = Table("at", "sender", "contract", "reason", "detail", "event", title=f"{len(found)} refused")
    for e in found:
        table.add_row(local_time(e.get("at")), e.get("sender", ""), e.get("contract", ""), e.get("reason", ""),
                      str(e.get("detail", ""))[:160], e.get("event_id", ""))
    console.print(table)


def sharing_catalogue(contract: str = typer.Option(None, "--contract", help="one contract's fields"),
                      as_json: bool = typer.Option(False, "--json"), token: str = TokenOption) -> None:
    """The sharing catalogue (政务数据共享目录): every field of every contract (nested members by path), its
    class, legal basis, mask and owner, and who receives it now (in clear, and under which agreement; masked)."""
    with _api(token, OPERATOR) as api:
        entries = [e for e in answer(api.get("/v1/catalogue")) if contract in (None, e["contract"])]
    if as_json:
        print(json.dumps(entries, ensure_ascii=False, indent=2))
        return
    table = Table("contract", "field", "class", "legal basis", "mask", "owner", "received by", "masked for",
                  title=f"sharing catalogue (政务数据共享目录): {len(entries)} fields")
    for e in entries:
        received = ", ".join(r["department"] + (f" [{', '.join(r['agreements'])}]" if r["agreements"] else "")
                             + (f" ({r['cases']} cases)" if r["cases"] else "") for r in e["receivers"])
        table.add_row(f"{e['contract']} v{e['version']}", e["path"], e["sharing"] + ("" if e["declared"] else " ↑"),
                      (e["legal_basis"] or "")[:40], e["mask"] or "", e["owner"], received or "—",
                      ", ".join(e["masked_for"]))
    console.print(table)
    console.print("↑ the class of what holds it", style="dim")
