"""The operators' console in a real browser (Debian's Chromium driven by Playwright) on the real exchange: log in with
a token; the exchange map lists every department and counts events sent during the test on the open page; a refused
event appears with its reason and its not-shared value never reaches the page; a case is traced end to end; the
audit view verifies the chain; the agreements view counts each standing and pages through it; a department's token
opens only its own views. A screenshot of every view is saved under artifacts/console/."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from base.settings import Settings
from contracts.bureau import CaseSubmitted
from contracts.departments import DEPARTMENTS, GATEWAY, OPERATOR
from deploy.processes import AppProcesses
from tests.e2e.cases import follow, submit
from tests.factories import T0, opinion_issued, project
from tests.integration.test_ingest_and_rejections import structured
from tests.tools import bearer, http_client

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"
EDGE = "planning>bureau>bureau.opinion-issued"
LIVE_MS = 15_000  # how long a live view may take to show what happened (it updates within a second)


@pytest.fixture(scope="module")
def base(stack: Settings, exchange: AppProcesses) -> str:
    return stack.gateway_address


async def logged_in(browser: Browser, base: str, token: str, path: str = "/console/map") -> Page:
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    await page.goto(base + path)
    assert "/console/login" in page.url  # no session yet: the login form, which comes back here
    await page.fill("input[name=token]", token)
    await page.click("form.login button[type=submit]")
    await page.wait_for_url(f"**{path}")
    return page


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def send(base: str, token: str, body: dict[str, Any]) -> httpx.Response:
    async with http_client(base_url=base, timeout=30) as http:
        return await http.post("/v1/events", json=body, headers=bearer(token))


async def count(page: Page, selector: str) -> int:
    return int((await page.locator(selector).inner_text()).strip())


async def at_least(page: Page, selector: str, expected: int) -> None:
    """Wait until the number the page shows there reaches ``expected`` (the page's own updates bring it)."""
    deadline = asyncio.get_running_loop().time() + LIVE_MS / 1000
    while (shown := await count(page, selector)) < expected:
        assert asyncio.get_running_loop().time() < deadline, f"{selector} shows {shown}, not {expected} or more"
        await page.wait_for_timeout(100)


async def test_a_bad_token_is_told_and_gets_no_session(browser: Browser, base: str) -> None:
    page = await browser.new_page()
    await page.goto(base + "/console/flows")
    await page.fill("input[name=token]", "cnc_not_a_token")
    await page.click("form.login button[type=submit]")
    await expect(page.locator(".error")).to_contain_text("not valid")
    assert "/console/login" in page.url
    await page.goto(base + "/console/flows")
    assert "/console/login" in page.url
    await page.close()


async def test_the_map_lists_every_department_and_counts_events_on_the_open_page(
        browser: Browser, base: str, tokens: dict[str, str]) -> None:
    page = await logged_in(browser, base, tokens[OPERATOR])
    for code in DEPARTMENTS:
        await expect(page.locator(f"svg.map [data-node={code}]")).to_have_count(1)
        await expect(page.locator(f"table.departments tr[data-department={code}]")).to_have_count(1)
    counter = f'tr[data-edge="{EDGE}"] [data-total]'
    before = await count(page, counter)
    await page.evaluate("window.concordMarker = 'same page'")  # gone if the page were loaded again
    for _ in range(3):
        case_id = f"G-MAP-{uuid.uuid4().hex[:8]}"
        answer = await send(base, tokens["planning"], structured(opinion_issued(case_id)))
        assert answer.status_code == 200, answer.text
    await at_least(page, counter, before + 3)
    assert await page.evaluate("window.concordMarker") == "same page"
    assert await count(page, f'tr[data-edge="{EDGE}"] [data-minute]') >= 3
    await shot(page, "map")
    for view in ("flows", "agreements", "departments"):
        await page.goto(f"{base}/console/{view}")
        await expect(page.locator("#live")).not_to_be_empty()
        await shot(page, view)
    await expect(page.locator("table.efficacy tr[data-department]").first).to_be_visible()
    await page.goto(f"{base}/console/flows")
    for code in ("bureau", "planning", "water"):
        await expect(page.locator(f"table.flows tr[data-department={code}] [data-lag]")).to_have_count(1,
                                                                                                     timeout=LIVE_MS)
    await page.close()


async def test_a_refused_event_shows_its_reason_and_never_its_not_shared_value(
        browser: Browser, base: str, tokens: dict[str, str]) -> None:
    secret = f"秘密-{uuid.uuid4().hex[:10]}"
    page = await logged_in(browser, base, tokens[OPERATOR], "/console/deadletters")
    body = structured(opinion_issued(f"G-DLQ-{uuid.uuid4().hex[:8]}"))
    body["data"] |= {"officer": secret, "smuggled": f"{secret}-extra"}  # not shared, and a field no contract has
    answer = await send(base, tokens["planning"], body)
    assert answer.status_code == 422 and answer.json()["reason"] == "schema_violation", answer.text
    row = page.locator(f'tr[data-event="{body["id"]}"]')
    await expect(row).to_have_count(1, timeout=LIVE_MS)  # appeared on the open page
    await expect(row.locator("[data-reason]")).to_have_text("schema_violation")
    await shot(page, "deadletters")
    await row.locator("a").click()
    await expect(page.locator("pre[data-payload]")).to_contain_text("‹masked: not shared›")
    await expect(page.locator("pre[data-payload]")).to_contain_text("‹masked: class unknown›")
    await expect(page.locator("pre[data-payload]")).to_contain_text(body["data"]["case_id"])  # unconditional
    assert secret not in await page.content()
    await shot(page, "deadletter")
    await page.close()


async def test_a_case_is_traced_end_to_end(browser: Browser, base: str, stack: Settings,
                                           tokens: dict[str, str]) -> None:
    case_id = await submit(stack, project(name=f"控制台追踪 {uuid.uuid4().hex[:6]}"))
    view = await follow(stack, case_id, lambda v: v["status"] == "completed", timeout=180)
    page = await logged_in(browser, base, tokens[OPERATOR], "/console/cases")
    await page.fill("form.big-search input[name=case]", case_id)
    await page.press("form.big-search input[name=case]", "Enter")
    await page.wait_for_url(f"**/console/cases/{case_id}")
    await expect(page.locator(f"[data-case='{case_id}']")).to_have_count(1)
    actions = await page.locator("table.trace tr[data-action]").evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert actions.count("routed") >= 3 and "rejected" not in actions
    departments = {r["department"] for r in view["requests"]}
    for department in departments:
        await expect(page.locator(f"table.responses tr[data-request^='{case_id}/']").filter(
            has_text=DEPARTMENTS[department].name_zh).first).to_be_visible()
    days = await page.locator("table.responses [data-working-days]").all_inner_texts()
    assert len(days) == len(view["requests"]) and all(d.strip() != "–" for d in days)
    assert "ms" in await page.locator("table.trace").inner_text()  # the exchange's transit to a consumer
    # the applicant's contact went masked to a consumer without an agreement for it, and the audit entry says so
    await expect(page.locator("table.trace [data-masked]").first).to_contain_text("contact_phone")
    await shot(page, "case")
    await page.close()


async def test_the_audit_view_verifies_the_chain(browser: Browser, base: str, tokens: dict[str, str]) -> None:
    page = await logged_in(browser, base, tokens[OPERATOR], "/console/audit")
    await expect(page.locator("table.audit tr[data-seq]").first).to_be_visible()
    before = int(await page.locator("[data-entries]").inner_text())
    await page.click("#verify")  # answered at once; the view shows the verification under way, then its outcome
    verification = page.locator("[data-verification]")
    await expect(verification).to_have_attribute("data-verification", "ok", timeout=120_000)
    await expect(verification).to_contain_text("intact")
    await expect(verification).to_contain_text(f"by {OPERATOR}")
    verified = re.search(r"(\d+) entries", await verification.inner_text())
    assert verified is not None and int(verified[1]) >= before
    await expect(page.locator("[data-anchor]")).to_have_attribute("data-anchor", "genuine", timeout=60_000)
    await expect(page.locator("[data-anchor]")).to_contain_text("signed by key")  # the keeper's latest anchor
    await shot(page, "audit")
    await page.close()


async def test_the_agreements_view_counts_each_standing_and_pages_through_it(
        browser: Browser, base: str, stack: Settings, tokens: dict[str, str]) -> None:
    """Sixty revoked agreements, the newest of all (requested in 2101): the first page of the ended ones shows fifty
    of them, newest first, its next page the other ten; the count is of every agreement so standing."""
    run = uuid.uuid4().hex[:8]
    ours = [f"AGR-VIEW-{run}-{n:02d}" for n in range(60)]
    pool = await asyncpg.create_pool(stack.dsn(GATEWAY), min_size=1, max_size=1)
    try:
        for n, agreement_id in enumerate(ours):
            await pool.execute(
                "INSERT INTO gateway.agreements (id, contract_id, provider, consumer, fields, purpose, legal_basis,"
                " valid_from, valid_until, status, requested_at, remind_at, due_at) VALUES ($1, $2, 'bureau',"
                " 'housing', $3, 'the view', 'basis', $4, $5, 'revoked', $6, $4, $4)", agreement_id,
                CaseSubmitted.CONTRACT.id, ["contact_phone"], T0, T0 + timedelta(days=30),
                datetime(2101, 1, 1, tzinfo=UTC) + timedelta(minutes=n))
        page = await logged_in(browser, base, tokens[OPERATOR], "/console/agreements")
        assert await count(page, '[data-count="ended"]') >= 60
        for standing in ("pending", "overdue", "in_force", "ended"):
            await expect(page.locator(f'table[data-group="{standing}"]')).to_have_count(1)
        rows = page.locator('table[data-group="ended"] tr[data-agreement]')
        await expect(rows).to_have_count(50)
        newest_first = ours[::-1]
        assert await rows.evaluate_all("rows => rows.map(r => r.dataset.agreement)") == newest_first[:50]
        await page.locator('[data-next="ended"]').click()
        await page.wait_for_url("**/console/agreements?standing=ended&offset=50")
        await expect(page.locator('[data-pages="ended"]')).to_contain_text("51–")
        await expect(page.locator('table[data-group="pending"]')).to_have_count(0)  # one standing's pages alone
        shown = await rows.evaluate_all("rows => rows.map(r => r.dataset.agreement)")
        assert shown[:10] == newest_first[50:]
        assert (await page.goto(f"{base}/console/agreements?standing=lost")).status == 422  # type: ignore[union-attr]
        await page.close()
    finally:
        await pool.execute("DELETE FROM gateway.agreements WHERE id LIKE $1", f"AGR-VIEW-{run}-%")
        await pool.close()


async def test_a_departments_token_sees_only_its_own_views(browser: Browser, base: str,
                                                           tokens: dict[str, str]) -> None:
    page = await logged_in(browser, base, tokens["planning"])
    edges = await page.locator("table.edges tr[data-edge]").evaluate_all("rows => rows.map(r => r.dataset.edge)")
    assert edges and all("planning" in edge.split(">")[:2] for edge in edges)
    for view in ("map", "flows", "deadletters", "agreements", "departments", "audit"):
        answer = await page.goto(f"{base}/console/{view}?department=water")
        assert answer is not None and answer.status == 403, view
        answer = await page.goto(f"{base}/console/live/{view}?department=water")
        assert answer is not None and answer.status == 403, view
    await page.goto(f"{base}/console/departments")
    rows = await page.locator("table.efficacy tr[data-department]").evaluate_all(
        "rows => rows.map(r => r.dataset.department)")
    assert set(rows) <= {"planning"}
    verified = await page.request.post(f"{base}/console/audit/verify", max_redirects=0)  # with planning's session
    assert verified.status == 403
    await shot(page, "department-map")
    await page.close()
