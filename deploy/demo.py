"""`make demo`: the local stack, the gateway and every department's service on one accelerated clock; cases of the
agency service, end to end (the departments ask each other for data as their reviews need it), and the report."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from base.calendar import WorkingDayCalendar
from base.clock import Clock, record
from base.runtime import terminal
from base.settings import REPORTER, Settings
from contracts.departments import BUREAU, OPERATOR
from deploy.enterprise import Enterprises
from deploy.migrate import COMPONENT_ROLES
from deploy.processes import AppProcesses, Usage, usage
from deploy.stack import KafkaNode, kafka_nodes, ready
from deploy.statements import counted, hops_so_far, per_hop, start_counting
from services.bureau.model import CaseStatus

console = terminal()
SPEED = 100_000.0  # one real second is about 1.2 simulated days: a case of 60 working days takes 75 s
ARRIVAL_WORKING_DAYS = 20  # the cases come in over a month
PAGE = 200  # cases looked at per request (the bureau API's largest page)
RETRY_SECONDS = 300.0  # how long a request is tried again while its component restarts (a broker restart with backoff)
LOOKS = ({"status": [s.value for s in CaseStatus if s.ended]}, {"applicant": "true"})


async def clock_start(settings: Settings) -> datetime:
    """Simulated time starts at the real present, or after the last thing an earlier run's cases did if that is
    later: never before what the stack holds. Not where the stack's clock stands: left at 100,000× after a run, it
    has carried the district years ahead since (a day later, the year 2247, with no official calendar)."""
    connection = await asyncpg.connect(settings.dsn(REPORTER))
    try:
        latest = await connection.fetchval(
            "SELECT max(greatest(submitted_at, completed_at)) FROM bureau.cases")
    finally:
        await connection.close()
    now = datetime.now(UTC)
    return max(now, latest) if latest else now


def node_usage(node: KafkaNode) -> Callable[[], Usage | None]:
    return lambda: usage(node.pid())


class UsageWatch:
    """Each process's resident memory through the run (when each quarter of the cases has finished, and its peak:
    the kernel's high-water mark), so that a run shows whether memory stays flat; and the CPU time each had used
    by the end (of its latest start, for one restarted), what the run cost."""

    MARKS = (0.25, 0.5, 0.75, 1.0)

    def __init__(self, processes: dict[str, Callable[[], Usage | None]]) -> None:
        self.processes = processes
        self.at: dict[str, dict[float, float]] = {name: {} for name in processes}
        self.last: dict[str, float] = {}
        self.peak: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def sample(self, share_finished: float) -> None:
        for name, read in self.processes.items():
            now = read()
            if now is None:
                continue
            self.peak[name] = max(self.peak.get(name, 0.0), now.peak_mib)
            self.last[name] = now.rss_mib
            self.cpu[name] = now.cpu_s
            for mark in self.MARKS:
                if share_finished >= mark and mark not in self.at[name]:
                    self.at[name][mark] = now.rss_mib

    def table(self) -> Table:
        table = Table("process", *(f"{mark:.0%}" for mark in self.MARKS), "at the end", "peak", "CPU s",
                      title="resident memory (MiB) of each process when this share of the cases had finished; "
                            "the CPU seconds it had used")
        for name in self.processes:
            marks = [f"{self.at[name][m]:,.0f}" if m in self.at[name] else "" for m in self.MARKS]
            table.add_row(name, *marks, *(f"{figures[name]:,.0f}" if name in figures else ""
                                          for figures in (self.last, self.peak, self.cpu)))
        return table


class Unavailable(RuntimeError):
    """A component did not answer for ``RETRY_SECONDS`` (it stayed down)."""


def patiently(call: Callable[[], httpx.Response]) -> httpx.Response:
    """The answer of a component that may be restarting (or whose database is): a failed connection, a lost answer
    and a server error are tried again after a pause, for up to ``RETRY_SECONDS``. Only for requests that are safe
    to send again."""
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        try:
            response = call()
            if response.status_code < 500:
                return response.raise_for_status()
            problem = f"answered {response.status_code}"
        except httpx.TransportError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise Unavailable(f"no answer for {RETRY_SECONDS:.0f} s: {problem}")
        time.sleep(0.5)


class CaseDriver:
    """The demo's enterprises at the bureau's front desk: cases submitted as the simulated month goes by, looked at
    and acted on until each has ended. A component that restarts meanwhile costs a round, never a case: submissions
    carry an idempotency key, and what an enterprise does is decided again from the case as the bureau shows it."""

    def __init__(self, clock: Clock, count: int, seed: int, bureau: httpx.Client) -> None:
        self.clock = clock
        self.count = count
        self.bureau = bureau
        self.calendar = WorkingDayCalendar()
        self.enterprises = Enterprises(seed, self.calendar)
        self.run = uuid.uuid4().hex[:12]  # the idempotency keys' prefix: this run's own
        self.first = clock.now()
        self.arrival = self.calendar.add_working_time(self.first, ARRIVAL_WORKING_DAYS) - self.first
        self.finished: dict[str, dict] = {}  # type: ignore[type-arg]
        self.missed_rounds = 0  # rounds cut short by a component that did not answer

    @property
    def submitted(self) -> int:
        return len(self.enterprises.plans)

    def done(self) -> bool:
        return len(self.finished) == self.count

    def tick(self) -> None:
        """Submit the cases now due, then look at those not finished and act on them."""
        now = self.clock.now()
        while self.submitted < self.count and now >= self.first + self.arrival * self.submitted / self.count:
            self._submit(now)
        pending = [c for c in self.enterprises.plans if c not in self.finished]
        try:
            for chunk in range(0, len(pending), PAGE):
                # only the cases that ended or wait for their enterprise: the others have nothing to look at
                views = {view["case_id"]: view for looked in LOOKS for view in self.bureau.get("/v1/cases", params={
                    "ids": pending[chunk:chunk + PAGE], "limit": PAGE, **looked}).raise_for_status().json()["cases"]}
                for view in views.values():
                    if self.enterprises.finished(view):
                        self.finished[view["case_id"]] = view
                    else:
                        self.enterprises.act(view, self.clock.now(), self.bureau)
        except httpx.TransportError:
            self.missed_rounds += 1  # the bureau restarts: the next round looks again
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code < 500:
                raise
            self.missed_rounds += 1  # its database restarts, say

    def _submit(self, now: datetime) -> None:
        application, plan = self.enterprises.new_application(now)
        key = f"demo-{self.run}-{self.submitted}"
        answer = patiently(lambda: self.bureau.post("/v1/cases", content=application.model_dump_json(), headers={
            "content-type": "application/json", "idempotency-key": key})).json()
        plan.submitted_at = now
        plan.token = answer["case_token"]
        self.enterprises.plans[answer["case_id"]] = plan


def run_demo(settings: Settings, count: int, timeout: float, seed: int, serve: bool = False) -> int:
    with console.status("starting Kafka and PostgreSQL"):
        ready(settings)
    clock = record(settings, SPEED, asyncio.run(clock_start(settings))).clock()  # the stack's, for every process
    base = f"http://{settings.bureau_host}:{settings.bureau_port}"
    front_desk = {"authorization": f"Bearer {settings.credentials(BUREAU).http_token}"}
    with AppProcesses(settings, {}, say=console.print) as apps, \
            httpx.Client(base_url=base, headers=front_desk, timeout=30.0) as bureau:
        apps.start_exchange()
        apps.wait_ready()
        brokers = kafka_nodes(settings)
        watch = UsageWatch({**{name: process.usage for name, process in apps.processes.items()},
                            **{"kafka broker" + (f" {node.node_id}" if len(brokers) > 1 else ""): node_usage(node)
                               for node in brokers}})
        console.print(f"gateway, bureau and departments up on a clock {SPEED:,.0f}× real time "
                      f"(logs in {apps.log_dir}; a component that dies is started again)")
        console.print(f"operators' console: {settings.gateway_address}/console/ (log in with the operator's "
                      f"http_token, in {settings.secrets.credentials_file(OPERATOR)})")
        uncounted = asyncio.run(start_counting(settings.admin_dsn))
        hops_before = asyncio.run(hops_so_far(settings.admin_dsn))  # of runs before this one on the same stack
        started = time.monotonic()
        cases = CaseDriver(clock, count, seed, bureau)
        drive(cases, timeout, watch.sample)
        wall = time.monotonic() - started
        from services.bureau.cli import gather_report, print_report
        from services.bureau.report_page import render

        figures = asyncio.run(gather_report())
        print_report(figures)
        page = settings.stack_path / "report.html"
        page.write_text(render(figures), encoding="utf-8")
        outcomes = {s: sum(1 for v in cases.finished.values() if v["status"] == s)
                    for s in ("completed", "rejected", "closed")}
        days = cases.calendar.working_days_between(cases.first, clock.now())
        console.print(f"report page: {page}; {wall:.0f} s of wall time for {days:.0f} working days of the district")
        console.print("this run: " + ", ".join(f"{n} {s}" for s, n in outcomes.items())
                      + f"; {cases.enterprises.stale} actions of enterprises on a case that had moved on since they "
                        "read it (409, read again)")
        console.print(f"the stack's clock stays at {SPEED:,.0f}× real time for the commands that follow "
                      "(`concord clock real` goes back to real time)")
        console.print(watch.table())
        if uncounted is None:
            hops = asyncio.run(hops_so_far(settings.admin_dsn)) - hops_before
            console.print(per_hop(asyncio.run(counted(settings.admin_dsn)), hops, frozenset(COMPONENT_ROLES)))
        else:
            console.print(f"PostgreSQL's statements not counted: {uncounted}")
        console.print(f"cases completed: {len(cases.finished)}/{count}")
        if serve:
            console.print(f"the exchange keeps running for the console at {settings.gateway_address}/console/; "
                          "Ctrl-C stops it")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(1.0)

    return 0 if cases.done() else 1


def drive(cases: CaseDriver, timeout: float, each_round: Callable[[float], None]) -> None:
    """Rounds of the case driver, twice a second, with progress bars, until every case has ended or ``timeout``
    seconds have passed; ``each_round`` is told the share of cases finished after each round."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        submitting = progress.add_task("cases submitted", total=cases.count)
        finishing = progress.add_task("cases finished", total=cases.count)
        deadline = time.monotonic() + timeout
        while not cases.done() and time.monotonic() < deadline:
            cases.tick()
            progress.update(submitting, completed=cases.submitted)
            progress.update(finishing, completed=len(cases.finished))
            each_round(len(cases.finished) / cases.count)
            time.sleep(0.5)
