"""The ``concord`` command. Each group of commands lives beside the component it drives."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from base.runtime import terminal
from gateway.cli import acls, agreements, audit, credentials, gateway, topics
from gateway.contracts_cli import contracts_cli
from services.bureau.cli import case, report
from services.cli import tasks

app = typer.Typer(help="Concord: an event exchange between government departments.", no_args_is_help=True)
stack = typer.Typer(help="The local stack: Apache Kafka and PostgreSQL as plain processes.", no_args_is_help=True)
service = typer.Typer(help="Department services.", no_args_is_help=True)
app.add_typer(stack, name="stack")
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
app.command("report")(report)
console = terminal()

if TYPE_CHECKING:
    from base.settings import Settings
    from deploy.stack import Stack


def _settings() -> Settings:
    from base.settings import Settings  # here, not at the top: `concord --help` stays quick

    return Settings.from_environment()


def _stack() -> Stack:
    from deploy.stack import Stack

    return Stack(_settings())


@gateway.command("run")
def gateway_run(
    instance: str = typer.Option(None, help="stable instance name (a transactional id per instance)"),
    serve: bool = typer.Option(True, help="also serve the API and run the audit keeper and agreement watch"),
) -> None:
    """Run a gateway process; several share the routing of the ingress topics as one consumer group."""
    from base.clock import clock_from
    from base.runtime import run_until_signalled
    from deploy import bootstrap

    s = _settings()
    run_until_signalled(lambda stop: bootstrap.gateway(s, clock_from(s), stop, instance, serve))


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
        run_until_signalled(lambda stop: bootstrap.bureau(s, clock, stop))
        return
    codes = list(bootstrap.DEPARTMENT_SERVICES) if departments == ["departments"] else departments
    unknown = set(codes) - set(bootstrap.DEPARTMENT_SERVICES)
    if unknown:
        raise typer.BadParameter(f"no service for {sorted(unknown)}; known: "
                                 f"{[BUREAU, *bootstrap.DEPARTMENT_SERVICES]}")
    run_until_signalled(lambda stop: bootstrap.departments(s, clock, codes, stop))


@stack.command("up")
def stack_up() -> None:
    """Start Kafka and PostgreSQL (idempotent); returns once both answer and migrations are applied."""
    from deploy.stack import StackError

    try:
        _stack().up()
    except StackError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    stack_status()


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


@app.command()
def demo(
    cases: int = typer.Option(200, help="how many cases to submit"),
    timeout: float = typer.Option(900.0, help="seconds of real time to wait for every case to finish"),
    seed: int = typer.Option(2026, help="seed of the sample projects"),
) -> None:
    """The main job: start everything, run cases of the agency service end to end, print the results."""
    from deploy.demo import run_demo
    from deploy.stack import StackError

    try:
        code = run_demo(_settings(), cases, timeout, seed)
    except StackError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    raise typer.Exit(code)


if __name__ == "__main__":
    app()
