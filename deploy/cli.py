"""The ``concord`` command. Each group of commands lives beside the component it drives."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

import typer

from base.runtime import local_time, terminal
from gateway.cli import (
    acls,
    agreements,
    audit,
    credentials,
    gateway,
    lag,
    rejections,
    sharing_catalogue,
    tail_topic,
    topics,
)
from gateway.contracts_cli import contracts_cli
from services.bureau.cli import case, report
from services.cli import tasks
from services.kit.cli import inbox_commands


def _department_service(code: str, settings: Settings, clock: Clock) -> DepartmentService:
    from deploy.bootstrap import department_service  # here, not at the top: `concord --help` stays quick

    return department_service(code, settings, clock)


app = typer.Typer(help="Concord: an event exchange between government departments.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
stack = typer.Typer(help="The local stack: Apache Kafka and PostgreSQL as plain processes.", no_args_is_help=True)
service = typer.Typer(help="Department services.", no_args_is_help=True)
clock = typer.Typer(help="The stack's one clock: real time, or simulated time running N times faster.",
                    no_args_is_help=True)
app.add_typer(stack, name="stack")
app.add_typer(clock, name="clock")
app.add_typer(topics, name="topics")
app.add_typer(gateway, name="gateway")
app.add_typer(service, name="service")
app.add_typer(case, name="case")
app.add_typer(contracts_cli, name="contracts")
app.add_typer(credentials, name="credentials")
app.add_typer(acls, name="acls")
app.add_typer(agreements, name="agreements")
app.add_typer(audit, name="audit")
app.add_typer(tasks, name="tasks")
app.add_typer(inbox_commands(_department_service), name="inbox")
app.command("report")(report)
app.command("lag")(lag)
app.command("tail")(tail_topic)
app.command("rejections")(rejections)
app.command("catalogue")(sharing_catalogue)
console = terminal()
errors = terminal(stderr=True)

if TYPE_CHECKING:

    from base.clock import Clock
    from base.settings import Settings
    from deploy.stack import Stack
    from services.kit.service import DepartmentService


def _settings() -> Settings:
    from base.settings import Settings  # here, not at the top: `concord --help` stays quick

    return Settings.from_environment()


def _stack() -> Stack:
    from deploy.stack import Stack

    return Stack(_settings())


@gateway.command("run")
def gateway_run(
    instance: str = typer.Option(None, help="stable instance name (a transactional id per instance)"),
    serve: bool = typer.Option(True, help="serve the API (with the console), the agreement watch and the notices"),
    route: bool = typer.Option(True, help="run a router instance"),
    keeper: bool = typer.Option(None, help="run the audit keeper (default: where the API is served)"),
    health_port: int = typer.Option(None, help="without the API: answer /healthz and /readyz on this port"),
) -> None:
    """Run a gateway process; several share the routing of the ingress topics as one consumer group."""
    from base.clock import clock_from
    from base.runtime import run_until_signalled
    from deploy import bootstrap

    s = _settings()
    run_until_signalled(lambda stop: bootstrap.gateway(s, clock_from(s), stop, instance, serve, route, keeper,
                                                       health_port), "concord-gateway", s.log_format)


@service.command("run")
def service_run(departments: list[str] = typer.Argument(
        ..., help="bureau, or one or more departments, or 'departments' for every reviewing department and the "
                  "coordination office")) -> None:
    """Run the bureau (with its case API), or departments' services in one process (with their desks' API)."""
    from base.clock import clock_from
    from base.runtime import run_until_signalled
    from contracts.departments import BUREAU
    from deploy import bootstrap

    s = _settings()
    clock = clock_from(s)
    if departments == [BUREAU]:
        run_until_signalled(lambda stop: bootstrap.bureau(s, clock, stop), "concord-bureau", s.log_format)
        return
    codes = list(bootstrap.DEPARTMENT_SERVICES) if departments == ["departments"] else departments
    unknown = set(codes) - set(bootstrap.DEPARTMENT_SERVICES)
    if unknown:
        raise typer.BadParameter(f"no service for {sorted(unknown)}; known: "
                                 f"{[BUREAU, *bootstrap.DEPARTMENT_SERVICES]}")
    run_until_signalled(lambda stop: bootstrap.departments(s, clock, codes, stop), "concord-departments",
                        s.log_format)


@stack.command("up")
def stack_up(
    clock_speed: float = typer.Option(
        None, help="also set the stack's clock to N times real time (as `concord clock set --speed N`)"),
    brokers: int = typer.Option(
        None, min=1, help="Kafka nodes, each broker and controller (3: a quorum of three controllers, topics "
                          "with three replicas, two in sync); the stack keeps the size it was first brought up "
                          "with (CONCORD_KAFKA_BROKERS; default 1)"),
) -> None:
    """Start Kafka and PostgreSQL (idempotent); returns once both answer and migrations are applied."""
    from deploy.stack import Stack

    settings = _settings()
    if brokers is not None:
        settings = settings.model_copy(update={"kafka_brokers": brokers})
    Stack(settings).up()
    if clock_speed is not None:
        clock_set(clock_speed, None)
    stack_status()


@clock.command("set")
def clock_set(
    speed: float = typer.Option(..., help="simulated seconds per real second (1: real time; 100000: a working "
                                          "day in about a third of a real second)"),
    start: str | None = typer.Option(None, help="simulated time now, with its zone, e.g. 2026-03-02T09:00:00+08:00 "
                                         "(default: go on from the clock's present time)"),
) -> None:
    """Set the stack's clock; every process and command on the stack follows it within a second."""
    from datetime import datetime

    from base.clock import ClockMisconfigured, record

    try:
        begins = datetime.fromisoformat(start) if start else None
    except ValueError as exc:
        raise ClockMisconfigured(f"--start {start!r} is not an ISO 8601 time, e.g. 2026-03-02T09:00:00+08:00") \
            from exc
    setting = record(_settings(), speed, begins)
    console.print(f"clock: {setting.speed:,g}× real time, simulated now {local_time(setting.start)}")


@clock.command("show")
def clock_show() -> None:
    """The clock the stack's processes and commands run on, and its present time."""
    from base.clock import StackClock, clock_from, recorded

    s = _settings()
    current = clock_from(s)
    if not isinstance(current, StackClock):
        console.print(f"clock from the environment (CONCORD_CLOCK_*): {s.clock_speed:,g}× real time, "
                      f"now {local_time(current.now())}")
        return
    setting = recorded(s)
    source = f"{setting.speed:,g}× real time (recorded in {current.path})" if setting else "real time"
    console.print(f"clock: {source}, now {local_time(current.now())}")


@clock.command("real")
def clock_real() -> None:
    """Back to real time for the whole stack (what happened in simulated time keeps its times)."""
    from base.clock import StackClock, forget

    s = _settings()
    ahead = StackClock(s).now()
    forget(s)
    console.print(f"clock: real time, now {local_time(StackClock(s).now())} (the simulated clock had reached "
                  f"{local_time(ahead)})")


@stack.command("down")
def stack_down() -> None:
    """Stop the processes the stack started; data stays."""
    _stack().down()
    stack_status()


@stack.command("status")
def stack_status() -> None:
    """Say what runs."""
    for name, state in _stack().status().items():
        console.print(f"{name:9} {state}")


@stack.command("provision")
def stack_provision() -> None:
    """Roles and migrations, credentials for the deployment's own processes, topics and ACLs, on a broker and
    database that run already (the Docker Compose init job; `stack up` does the same for the local stack)."""
    from deploy.stack import provision

    provision(_settings())
    console.print("provisioned: roles and migrations, credentials, topics and ACLs")


@stack.command("docker-secrets")
def stack_docker_secrets(advertise: str = typer.Option("kafka", help="the broker's host name in the network")) -> None:
    """The Docker Compose deployment's secrets and broker configuration, in CONCORD_SECRETS_DIR (its job)."""
    from deploy.docker import prepare

    console.print(f"secrets ready in {prepare(_settings(), advertise)}")


@stack.command("reset")
def stack_reset() -> None:
    """Stop the stack and wipe its data (the Kafka runtime cache stays)."""
    _stack().reset()
    console.print("stack data wiped")


@app.command("migrate")
def migrate_command() -> None:
    """Apply the database migrations of every component (the local stack's `up` does this too)."""
    from deploy.migrate import migrate

    s = _settings()
    applied = migrate(s.admin_dsn, s.secrets.postgres_passwords(), s.postgres_db)
    console.print(f"{len(applied)} migrations applied" + "".join(f"\n  {m.component}/{m.name}" for m in applied))


@app.command("run")
def run_exchange() -> None:
    """Run the exchange's processes (gateway, bureau, departments) on the local stack, under a supervisor that starts
    any that dies again, until Ctrl-C or SIGTERM."""
    import signal
    import threading

    from deploy.processes import AppProcesses
    from deploy.stack import ready

    s = _settings()
    ready(s)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with AppProcesses(s, say=console.print) as apps:
        apps.start_exchange()
        apps.wait_ready()
        console.print(f"the exchange runs: gateway {s.gateway_address} (console at /console/), bureau on port "
                      f"{s.bureau_port}, desks on port {s.departments_port}; logs in {apps.log_dir}; Ctrl-C stops it")
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


@app.command()
def chaos(
    cases: int = typer.Option(1000, help="how many cases to carry through"),
    seconds: float = typer.Option(120.0, help="how long components are killed, paused and restarted"),
    every_min: float = typer.Option(3.0, help="the shortest pause between two kills (seconds)"),
    every_max: float = typer.Option(8.0, help="the longest pause between two kills (seconds)"),
    seed: int = typer.Option(2027, help="seed of the sample projects and of the mischief"),
    timeout: float = typer.Option(1800.0, help="seconds of real time to wait for every case to finish"),
) -> None:
    """Carry cases through an exchange that is being broken (components killed, a router paused, the broker and
    PostgreSQL restarted), then reconcile: exit 1 on any case unfinished, record lost or effect duplicated."""
    from deploy.chaos import run_chaos

    raise typer.Exit(run_chaos(_settings(), cases, seconds, (every_min, every_max), seed, timeout))


@app.command()
def demo(
    cases: int = typer.Option(200, help="how many cases to submit"),
    timeout: float = typer.Option(900.0, help="seconds of real time to wait for every case to finish"),
    seed: int = typer.Option(2026, help="seed of the sample projects"),
    serve: bool = typer.Option(False, "--serve", help="afterwards, keep the exchange running for the operators' "
                                                       "console until Ctrl-C"),
) -> None:
    """The main job: start everything, run cases of the agency service end to end, print the results (and the
    operators' console's address)."""
    from deploy.demo import run_demo

    raise typer.Exit(run_demo(_settings(), cases, timeout, seed, serve))


@app.callback()
def root(debug: bool = typer.Option(False, "--debug", help="on an error, show its traceback")) -> None:
    """Concord: an event exchange between government departments."""
    global DEBUG
    DEBUG = debug


DEBUG = False


def main() -> None:
    """The `concord` command. Exit status: 0 all well; 1 the answer is no (an API refused, a check found a
    difference); 2 the command could not do its work (unreachable, misconfigured, unreadable input: one line on
    stderr saying what to do; usage errors too); 3 a fault of the command itself (one line, `--debug` for more)."""
    try:
        app()
    except Exception as error:
        if DEBUG:
            raise
        from base.errors import Explained
        from deploy.errors import explain, reached_nothing

        try:
            line = explain(error, _settings())
        except Exception:  # the settings themselves may be what is wrong
            line = f"{type(error).__name__}: {error}"
        errors.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
        sys.exit(2 if isinstance(error, Explained) or reached_nothing(error) else 3)


if __name__ == "__main__":
    main()
