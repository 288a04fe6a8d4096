"""First paint of each view of the operators' console, in Debian's Chromium driven by Playwright, on whatever the
stack's database holds (run `make demo` first for the database of a 200-case demo). Starts the exchange's
processes when they are not running. Prints a table and writes .stack/bench/console.json.

    python -m bench.console [--runs 5]"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from typing import Any

import asyncpg
from playwright.async_api import async_playwright
from rich.table import Table

from base.runtime import terminal
from base.settings import REPORTER, Settings
from contracts.departments import OPERATOR
from deploy.processes import AppProcesses
from deploy.stack import port_open

CHROMIUM = "/usr/bin/chromium"
VIEWS = ("map", "flows", "deadletters", "agreements", "departments", "audit", "cases/{case}")
TARGET_MS = 1000.0
# The page's first contentful paint (from the start of its navigation), once the browser has recorded it.
PAINT = """() => new Promise(resolve => {
  const ready = performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd;
  new PerformanceObserver(list => {
    const paint = list.getEntriesByName('first-contentful-paint')[0];
    if (paint) resolve([paint.startTime, ready]);
  }).observe({type: 'paint', buffered: true});
  setTimeout(() => resolve([NaN, ready]), 5000);
})"""
console = terminal()


async def a_case(settings: Settings) -> tuple[str, int]:
    connection = await asyncpg.connect(settings.dsn(REPORTER))
    try:
        case = await connection.fetchval("SELECT case_id FROM bureau.cases WHERE completed_at IS NOT NULL"
                                         " ORDER BY submitted_at DESC LIMIT 1")
        cases = await connection.fetchval("SELECT count(*) FROM bureau.cases")
    finally:
        await connection.close()
    if case is None:
        raise SystemExit("no finished case in the database: run `make demo` first")
    return str(case), int(cases)


async def measure(settings: Settings, runs: int) -> dict[str, Any]:
    case, cases = await a_case(settings)
    base = settings.gateway_address
    figures: dict[str, dict[str, float]] = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        await page.goto(f"{base}/console/login")
        await page.fill("input[name=token]", settings.credentials(OPERATOR).http_token)
        await page.click("form.login button[type=submit]")
        await page.wait_for_url("**/console/map")
        for view in VIEWS:
            path = view.format(case=case)
            paints, loads = [], []
            for _ in range(runs + 1):  # the first load warms what the view caches; it is not counted
                await page.goto(f"{base}/console/{path}")
                timing = await page.evaluate(PAINT)
                paints.append(timing[0])
                loads.append(timing[1])
            figures[view] = {"first_paint_ms": round(statistics.median(paints[1:]), 1),
                             "first_paint_cold_ms": round(paints[0], 1),
                             "dom_ready_ms": round(statistics.median(loads[1:]), 1)}
        await browser.close()
    return {"cases_in_database": cases, "runs": runs, "target_ms": TARGET_MS, "views": figures,
            "all_under_target": all(f["first_paint_ms"] < TARGET_MS and f["first_paint_cold_ms"] < TARGET_MS
                                    for f in figures.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    settings = Settings.from_environment()
    with AppProcesses(settings, {}) as apps:
        if not port_open(settings.gateway_port):
            apps.start_exchange()
            apps.wait_ready()
        result = asyncio.run(measure(settings, runs))
    table = Table("view", "first paint (median)", "first paint (first load)", "DOM ready",
                  title=f"console first paint, {result['cases_in_database']} cases in the database")
    for view, f in result["views"].items():
        table.add_row(view, f"{f['first_paint_ms']:.0f} ms", f"{f['first_paint_cold_ms']:.0f} ms",
                      f"{f['dom_ready_ms']:.0f} ms")
    console.print(table)
    out = settings.stack_path / "bench" / "console.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    console.print(f"every view under {TARGET_MS:.0f} ms: {result['all_under_target']}; wrote {out}")


if __name__ == "__main__":
    main()
