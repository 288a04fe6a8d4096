"""``concord contracts``: commands about contracts' JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import typer

from contracts.compatibility import Mode, SchemaError, incompatibilities

contracts_cli = typer.Typer(help="Contracts: their JSON Schemas and how versions may evolve.", no_args_is_help=True)

MODES = ", ".join(m.value for m in Mode)


@contracts_cli.command("compat")
def compat(
    schemas: list[Path] | None = typer.Argument(
        None, metavar="OLD.json [OLD2.json ...] NEW.json", help="the previous versions in order, then the new one"
    ),
    mode: str = typer.Option("", "--mode", metavar="MODE", help=f"compatibility mode, any case: {MODES}"),
) -> None:
    """Check a new schema version against the previous ones, as Confluent Schema Registry would.

    Prints one line per incompatible difference: CHANGE_NAME json-pointer. Exits 0 if compatible, 1 if not, 2 if an
    input cannot be read."""
    if not mode:
        _fail(f"give --mode, one of {MODES}")
    try:
        chosen = Mode(mode.upper())
    except ValueError:
        _fail(f"unknown mode {mode!r}; use one of {MODES}")
    files = schemas or []
    if len(files) < 2:
        _fail("give at least two schema files: the previous version(s), then the new one")
    documents = [_read(path) for path in files]
    try:
        found = incompatibilities(chosen, documents[:-1], documents[-1])
    except SchemaError as exc:
        _fail(str(exc))
    for difference in found:
        typer.echo(str(difference))
    raise typer.Exit(1 if found else 0)


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {path}: {exc}")
    except json.JSONDecodeError as exc:
        _fail(f"{path} is not valid JSON: {exc}")
    if not isinstance(document, dict):
        _fail(f"{path} does not hold a JSON object")
    return document


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
