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


@contracts_cli.command("docs")
def docs(out: Path = typer.Argument(..., help="folder to write the documents into")) -> None:
    """Write the consumers' view of the exchange: one AsyncAPI 3.0 document (asyncapi.json) for the whole
    exchange, and one JSON Schema file per contract version (schemas/<id>/v<version>.json)."""
    from contracts.asyncapi import asyncapi_document, schema_file
    from contracts.catalogue import CATALOGUE

    schemas = [c.json_schema for _, c in sorted(CATALOGUE.items())]
    for schema in schemas:
        path = out / schema_file(schema["x-contract"]["id"], schema["x-contract"]["version"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    out.mkdir(parents=True, exist_ok=True)
    (out / "asyncapi.json").write_text(
        json.dumps(asyncapi_document(schemas), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    typer.echo(f"wrote {out / 'asyncapi.json'} and {len(schemas)} JSON Schema files under {out / 'schemas'}")
