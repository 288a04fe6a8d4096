"""The documentation of the three HTTP APIs on the running processes: /docs (Swagger UI) and /redoc load nothing
from the internet, only assets the API itself serves; Swagger UI renders in a real browser that may reach this
machine alone, with an Authorize button that fills the bearer token; a missing or malformed token gets the one
401; and the error answers are the ones each API's OpenAPI document lists, with the bodies it documents."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Route, expect

from base.http import unauthorised
from base.settings import Settings
from deploy.processes import AppProcesses
from tests.tools import bearer, http_client, undocumented

EXTERNAL = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://|[\"'(]//")  # an absolute or protocol-relative URL
REFERENCED = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|url: *'([^']+)'""")
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}
AUTHENTICATED = {  # an operation of each API that needs a token: as documented, and a URL of it
    "gateway": ("/v1/whoami", "/v1/whoami"), "bureau": ("/v1/cases", "/v1/cases"),
    "desks": ("/v1/departments/{code}/tasks", "/v1/departments/planning/tasks"),
}


@pytest.fixture(scope="module")
def urls(stack: Settings, exchange: AppProcesses) -> dict[str, str]:
    return {"gateway": stack.gateway_address, "bureau": f"http://{stack.bureau_host}:{stack.bureau_port}",
            "desks": f"http://{stack.departments_host}:{stack.departments_port}"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
@pytest.mark.parametrize("api", ["gateway", "bureau", "desks"])
async def test_a_docs_page_loads_only_what_the_api_serves(urls: dict[str, str], api: str, page: str) -> None:
    async with http_client(base_url=urls[api], timeout=30) as http:
        html = await http.get(page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert not EXTERNAL.search(html.text), EXTERNAL.search(html.text)
        policy = html.headers["content-security-policy"]  # what the page's scripts may fetch: this API alone
        assert "default-src 'self'" in policy and "connect-src 'self'" in policy
        assert not re.search(r"\*|https?:|//", policy), policy
        referenced = {a or b for a, b in REFERENCED.findall(html.text)}
        assert {"/openapi.json", "/docs/assets/favicon.png"} <= referenced
        assert any(link.endswith(".js") for link in referenced)
        for link in referenced:
            served = await http.get(link)
            suffix = link[link.rfind("."):]
            assert served.status_code == 200, link
            assert served.headers["content-type"].startswith(CONTENT_TYPES[suffix]), (link, served.headers)
            assert len(served.content) > 1000, link


@pytest.mark.parametrize("api", ["gateway", "bureau", "desks"])
async def test_a_missing_or_malformed_token_gets_the_one_401(urls: dict[str, str], api: str) -> None:
    sent = [None, "", "Bearer", "Basic dXNlcjpwYXNz", "token-without-a-scheme", "Bearer not-a-token"]
    async with http_client(base_url=urls[api], timeout=30) as http:
        document = (await http.get("/openapi.json")).json()
        path, url = AUTHENTICATED[api]
        answers = [await http.get(url, headers={} if value is None else {"authorization": value}) for value in sent]
    expected = unauthorised()
    for value, answer in zip(sent, answers, strict=True):
        assert answer.status_code == 401, value
        assert answer.headers["www-authenticate"] == "Bearer", value
        assert answer.json() == {"detail": expected.detail}, value
        assert undocumented(document, "GET", path, answer) is None


async def test_error_answers_have_the_bodies_their_document_gives(urls: dict[str, str],
                                                                  tokens: dict[str, str]) -> None:
    """404, 413 and 422 of each API, and the gateway's typed refusals; 401, 403 and 409 are met for every
    endpoint in test_http_authorisation."""
    operator, bureau, market = bearer(tokens["operator"]), bearer(tokens["bureau"]), bearer(tokens["market"])
    contract = "/v1/contracts/{contract_id}/versions"
    requests: list[tuple[str, str, str, dict[str, Any], int]] = [
        # api, method, path as documented, what to send, the status expected
        ("gateway", "GET", contract, {"url": "/v1/contracts/nobody.nothing/versions"}, 404),
        ("gateway", "GET", contract, {"url": "/v1/contracts/Not A Contract/versions"}, 422),
        ("gateway", "POST", contract, {"url": "/v1/contracts/market.docs-check/versions", "headers": market,
                                       "json": {"schema": {"type": "object", "$ref": "https://elsewhere/x"}}}, 422),
        ("gateway", "POST", "/v1/events", {"headers": market, "content": b"{" + b" " * (3 << 20) + b"}"}, 413),
        ("gateway", "POST", "/v1/events", {"headers": market, "json": {"specversion": "1.0", "id": "docs-1"}}, 422),
        ("gateway", "GET", "/v1/audit", {"headers": operator, "params": {"limit": "0"}}, 422),
        ("bureau", "GET", "/v1/cases/{case_id}", {"url": "/v1/cases/G20000101-NONE", "headers": bureau}, 404),
        ("bureau", "GET", "/v1/cases/{case_id}", {"url": "/v1/cases/G%00X", "headers": bureau}, 422),
        ("bureau", "POST", "/v1/cases", {"headers": bureau, "json": {"project": {}}}, 422),
        ("bureau", "POST", "/v1/cases", {"headers": bureau, "content": b" " * (1 << 20)}, 413),
        ("desks", "GET", "/v1/departments/{code}/mode", {"url": "/v1/departments/nosuch/mode", "headers": operator},
         404),
        ("desks", "PUT", "/v1/departments/{code}/mode",
         {"url": "/v1/departments/planning/mode", "headers": bearer(tokens["planning"]), "json": {"mode": "x"}}, 422),
    ]
    wrong: list[str] = []
    for api, method, path, sent, status in requests:
        async with http_client(base_url=urls[api], timeout=60) as http:
            document = (await http.get("/openapi.json")).json()
            answer = await http.request(method, **{"url": path, **sent})
        if answer.status_code != status:
            wrong.append(f"{api} {method} {sent.get('url', path)}: {answer.status_code}, expected {status}")
        elif problem := undocumented(document, method, path, answer):
            wrong.append(f"{api}: {problem}")
    assert not wrong, "\n".join(wrong)


async def test_swagger_ui_renders_without_the_internet_and_authorizes_with_a_bearer_token(
        browser: Browser, urls: dict[str, str], tokens: dict[str, str]) -> None:
    outside: list[str] = []

    async def this_machine_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    async with http_client(base_url=urls["gateway"], timeout=30) as http:
        document = (await http.get("/openapi.json")).json()
    page = await browser.new_page()
    refused: list[str] = []  # what the pages' content security policy kept the browser from loading
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text
            else None)
    try:
        await page.route("**/*", this_machine_only)
        await page.goto(f"{urls['gateway']}/docs")
        operations = sum(len(item) for item in document["paths"].values())
        await expect(page.locator(".opblock")).to_have_count(operations)
        await expect(page.locator('.opblock-summary-path[data-path="/v1/agreements/{agreement_id}/approve"]')
                     ).to_be_visible()
        authorize = page.locator("button.authorize")
        await expect(authorize).to_have_text("Authorize")
        await authorize.click()
        dialog = page.locator(".auth-container")
        await expect(dialog).to_contain_text("bearer")
        await expect(dialog).to_contain_text("http, Bearer")
        await dialog.locator("input").fill(tokens["planning"])
        await dialog.get_by_role("button", name="Apply credentials").click()
        await expect(dialog.get_by_role("button", name="Remove authorization")).to_be_visible()
        await dialog.get_by_role("button", name="Close").click()
        whoami = page.locator("#operations-default-whoami_v1_whoami_get")
        await whoami.locator(".opblock-summary").click()
        await whoami.get_by_role("button", name="Try it out").click()
        await whoami.get_by_role("button", name="Execute").click()
        answered = whoami.locator(".live-responses-table tbody tr.response")
        await expect(answered.locator("td.response-col_status")).to_have_text("200")
        await expect(answered.locator("td.response-col_description")).to_contain_text('"principal": "planning"')
        await page.goto(f"{urls['gateway']}/redoc")
        await expect(page.get_by_role("heading", name="Concord gateway (1)")).to_be_visible()
        await expect(page.get_by_text("/v1/agreements/{agreement_id}/approve").first).to_be_attached()
    finally:
        await page.close()
    assert outside == []
    assert all(re.search(r"'https://(?!127\.0\.0\.1)", message) for message in refused), refused  # nothing ours
