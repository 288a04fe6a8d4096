"""``concord contracts``: a contract's JSON Schemas, how its versions may evolve, and the registry.

``compat`` and ``docs`` work on files alone; ``compat --contract``, ``check`` and ``publish`` ask the gateway's
registry. As every ``concord`` command, each fails with one line on stderr that says what went wrong and what to
do (``concord --debug …`` shows the traceback). Exit codes: 0 all well, 1 the answer is no (incompatible,
differs, refused), 2 the question could not be answered (an input unreadable, the gateway unreachable, no
token), 3 a fault of the command itself.

What a command imports it imports when it runs: ``concord --help`` and ``compat`` on files stay quick."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from base.errors import Explained
from contracts.compatibility import Mode, SchemaError, incompatibilities
from contracts.documents import (
    ContractDocument,
    DocumentError,
    contract_document,
    declared_version,
    is_version_number,
    schema_of,
)

if TYPE_CHECKING:
    from gateway.registry_client import Registration, RegistryClient

contracts_cli = typer.Typer(help="Contracts: their JSON Schemas, how versions may evolve, and the registry.",
                            no_args_is_help=True)

MODES = ", ".join(m.value for m in Mode)
FILES_HELP = ("contract versions as JSON files: a contract's JSON Schema naming its contract and version in "
              'x-contract (as `concord contracts docs` writes them), or a registration body {"schema": {...}}; '
              "none: every version in contracts/")
TokenOption = typer.Option(None, "--token", envvar="CONCORD_TOKEN",
                           help="the owning department's bearer token (its http_token)")


class CommandFailed(Explained):
    """What went wrong and what to do, in one line: the command could not do its work."""


def _one_line(message: str) -> str:
    return " ".join(message.split())


@contracts_cli.command("compat")
def compat(
    schemas: list[Path] | None = typer.Argument(
        None, metavar="[OLD.json ...] NEW.json", help="the previous versions in order, then the new one"),
    mode: str = typer.Option("", "--mode", metavar="MODE", help=f"compatibility mode, any case: {MODES}"),
    contract: str | None = typer.Option(None, "--contract", metavar="ID", help=(
        "take the mode from this contract in the registry (unless --mode is given) and, when only NEW.json is "
        "given, its registered versions (before NEW's x-contract.version, if it names one) as the previous ones")),
) -> None:
    """Check a new schema version against the previous ones, as Confluent Schema Registry would.

    Prints a verdict, `compatible (MODE): NEW against OLD` or `incompatible (...)`, then one line per incompatible
    difference: CHANGE_NAME json-pointer. Exits 0 if compatible, 1 if not, 2 if an input cannot be read."""
    files = schemas or []
    if not mode and not contract:
        raise CommandFailed(f"give --mode (one of {MODES}), or --contract ID to use the contract's mode in the "
                            "registry")
    given = _mode(mode) if mode else None
    if len(files) < (1 if contract else 2):
        raise CommandFailed("give at least two schema files: the previous version(s), then the new one"
                            + ("" if contract else " (or --contract ID and the new one alone)"))
    documents = [_schema(path) for path in files]
    labels = [_label(document, path) for document, path in zip(documents, files, strict=True)]
    if contract:
        _all_of(contract, documents, files)
    if contract and (given is None or len(files) == 1):
        chosen, previous = _from_registry(contract, given, documents[-1], len(files) == 1)
        documents[:0] = [schema for _, schema in previous]
        labels[:0] = [f"registered v{version}" for version, _ in previous]
    else:
        chosen = _mode(mode)
    try:
        found = incompatibilities(chosen, documents[:-1], documents[-1])
    except SchemaError as exc:
        raise CommandFailed(str(exc)) from exc
    source = f", {contract}'s mode in the registry" if contract and given is None else ""
    typer.echo(f"{'incompatible' if found else 'compatible'} ({chosen.value}{source}): "
               f"{_compared(chosen, labels, contract)}")
    for difference in found:
        typer.echo(str(difference))
    raise typer.Exit(1 if found else 0)


def _compared(mode: Mode, labels: list[str], contract: str | None) -> str:
    """What the verdict is about: the new version, and the previous ones the mode compares it with."""
    transitive = mode in (Mode.BACKWARD_TRANSITIVE, Mode.FORWARD_TRANSITIVE, Mode.FULL_TRANSITIVE)
    compared = labels[:-1] if transitive else labels[-2:-1]
    if mode is Mode.NONE:
        return f"{labels[-1]} (NONE compares nothing)"
    if not compared:
        return f"{labels[-1]} ({contract} has no registered version before it)"
    return f"{labels[-1]} against {', '.join(compared)}"


def _all_of(contract: str, documents: list[dict[str, Any]], files: list[Path]) -> None:
    for document, path in zip(documents, files, strict=True):
        meta = document.get("x-contract")
        named = meta.get("id") if isinstance(meta, dict) else None
        if named is not None and named != contract:
            raise CommandFailed(f"{path} is a version of {named} (its x-contract.id), not of {contract}")


def _mode(text: str) -> Mode:
    try:
        return Mode(text.upper())
    except ValueError:
        raise CommandFailed(f"unknown mode {text!r}; use one of {MODES}") from None


def _from_registry(contract: str, mode: Mode | None, new: dict[str, Any],
                   previous_from_registry: bool) -> tuple[Mode, list[tuple[int, dict[str, Any]]]]:
    """The mode to check under, and (when asked for) the registered versions before ``new``."""
    with _registry() as registry:
        found = registry.contracts().get(contract)
        if found is None:
            raise CommandFailed(f"{contract} is not registered, so it has no mode or versions: give --mode and the "
                                "previous versions' files (`concord contracts check` lists what is registered)")
        if not previous_from_registry:
            return mode or found.mode, []
        named = declared_version(new)
        versions = [v for v in found.versions if not is_version_number(named) or v < named]
        return mode or found.mode, [(v, registry.schema(contract, v)) for v in versions]


def _label(schema: dict[str, Any], path: Path) -> str:
    version = declared_version(schema)
    return f"v{version}" if is_version_number(version) else path.name


def _schema(path: Path) -> dict[str, Any]:
    """The JSON Schema a file holds, itself or in a registration body."""
    try:
        return schema_of(_read_json(path))
    except DocumentError as exc:
        raise CommandFailed(f"{path} {exc}") from exc


def _read_json(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandFailed(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CommandFailed(f"cannot read {path}: not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise CommandFailed(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(content, dict):
        raise CommandFailed(f"{path} does not hold a JSON object")
    return content


@contracts_cli.command("check")
def check(
    files: list[Path] | None = typer.Argument(None, metavar="[FILE.json ...]", help=FILES_HELP),
    contract: str | None = typer.Option(None, "--contract", metavar="ID", help=(
        "only this contract; with files, the contract they are versions of (it names the contract of a file "
        "whose x-contract gives no id)")),
) -> None:
    """Check contract versions against the registry, as publishing them would: a registered version must be
    unchanged (else it prints how it differs), a new one must pass the registry's checks and be compatible under
    the contract's mode (else it prints the incompatible changes). Exit 1 if any is not."""
    from gateway.registry import DEFAULT_MODE
    from gateway.version_check import check_versions

    grouped = _documents(files or [], contract)
    failures = 0
    with _registry() as registry:
        registered = registry.contracts()
        for contract_id, documents in grouped.items():
            known = registered.get(contract_id)
            schemas = {v: registry.schema(contract_id, v) for v in (known.versions if known else [])}
            for verdict in check_versions(documents, schemas, known.mode if known else DEFAULT_MODE):
                failures += not verdict.standing.passes
                for line in verdict.lines:
                    typer.echo(line)
    raise typer.Exit(1 if failures else 0)


@contracts_cli.command("publish")
def publish(
    files: list[Path] | None = typer.Argument(None, metavar="[FILE.json ...]", help=FILES_HELP),
    contract: str | None = typer.Option(None, "--contract", metavar="ID", help=(
        "only this contract; with files, the contract they are versions of")),
    token: str | None = TokenOption,
) -> None:
    """Register contract versions the token's department owns (every such version in contracts/, or the files
    given), in version order. A version already registered with the same content is left as it is; a file that
    names no version becomes the next free one. Exit 1 if the registry refuses any."""
    if not token:
        raise CommandFailed("no token: give --token TOKEN or set CONCORD_TOKEN to the owning department's "
                            "http_token (`concord credentials issue DEPT` prints one; on the local stack "
                            ".stack/secrets/credentials/DEPT.json holds the stack's)")
    grouped = _documents(files or [], contract)
    failures = 0
    with _registry(token) as registry:
        department = registry.whoami()
        owned = {cid: documents for cid, documents in grouped.items() if cid.partition(".")[0] == department}
        others = sorted(set(grouped) - set(owned))
        if not owned and not files and not contract:
            owners = sorted({cid.partition(".")[0] for cid in grouped})
            raise CommandFailed(f"{department} owns none of the contracts in contracts/ (their owners: "
                                f"{', '.join(owners)}): publish with the owning department's token")
        if others and (files or contract):
            raise CommandFailed(f"{department} does not own {', '.join(others)}: only a contract's owner (the "
                                "department its id begins with) registers its versions; use the owner's token")
        for contract_id, documents in owned.items():
            for document in documents:
                answer = registry.register(contract_id, document.schema)
                failures += answer.refusal is not None
                for line in _registration_lines(document, answer):
                    typer.echo(line)
    raise typer.Exit(1 if failures else 0)


def _registration_lines(document: ContractDocument, answer: Registration) -> list[str]:
    from gateway.registry import Refusal

    named, label = document.version, document.label
    if answer.refusal is None:
        if answer.created:
            said = "registered" if named is not None else f"registered as v{answer.version}"
        elif named in (None, answer.version):
            said = "already registered" + ("" if named is not None else f" as v{answer.version}")
        else:
            said = f"the same content is registered as v{answer.version}: nothing registered"
        return [f"{label}: {said}"]
    if answer.refusal in (Refusal.VERSION_TAKEN, Refusal.VERSION_SKIPPED, Refusal.NOT_OWNER):
        return [f"{label}: refused: {'; '.join(answer.problems)}"]
    if answer.refusal is Refusal.INCOMPATIBLE:
        mode = f" under {answer.mode.value}" if answer.mode else ""
        return [f"{label}: refused, incompatible{mode}:", *(f"  {line}" for line in answer.problems)]
    return [f"{label}: refused, the registry cannot take it:", *(f"  {line}" for line in answer.problems)]


def _documents(files: Sequence[Path], contract: str | None) -> dict[str, list[ContractDocument]]:
    """The versions to check or publish, by contract (in id order), each contract's in version order (those that
    name none last, in the order given): the files, or every version declared in contracts/."""
    if files:
        documents = []
        for path in files:
            try:
                documents.append(contract_document(_read_json(path), contract))
            except DocumentError as exc:
                raise CommandFailed(f"{path} {exc}") from exc
    else:
        from contracts.catalogue import CATALOGUE

        documents = [ContractDocument(cid, version, declared.json_schema)
                     for (cid, version), declared in CATALOGUE.items() if contract in (None, cid)]
        if not documents:
            raise CommandFailed(f"no contract {contract} in contracts/: give its versions' files")
    grouped: dict[str, list[ContractDocument]] = {}
    for document in documents:
        grouped.setdefault(document.contract_id, []).append(document)
    return {cid: sorted(grouped[cid], key=lambda d: d.version or float("inf")) for cid in sorted(grouped)}


def _registry(token: str | None = None) -> RegistryClient:
    from base.settings import Settings
    from gateway.registry_client import RegistryClient

    return RegistryClient(Settings.from_environment().gateway_address, token)


@contracts_cli.command("docs")
def docs(out: Path = typer.Argument(..., help="folder to write the documents into")) -> None:
    """Write the consumers' view of the exchange: one AsyncAPI 3.0 document (asyncapi.json) for the whole
    exchange, one JSON Schema file per contract version (schemas/<id>/v<version>.json), and one Open Data Contract
    Standard v3 document per contract version (odcs/<id>/v<version>.odcs.yaml: classification per field, owner,
    purpose and limits, service levels)."""
    import yaml

    from contracts.asyncapi import asyncapi_document, schema_file
    from contracts.catalogue import CATALOGUE
    from contracts.odcs import odcs_document
    from gateway.sharing_catalogue import service_levels

    schemas = [c.json_schema for _, c in sorted(CATALOGUE.items())]
    levels = service_levels()
    try:
        for schema in schemas:
            meta = schema["x-contract"]
            path = out / schema_file(meta["id"], meta["version"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            odcs = out / odcs_file(meta["id"], meta["version"])
            odcs.parent.mkdir(parents=True, exist_ok=True)
            odcs.write_text(yaml.safe_dump(odcs_document(schema, levels), allow_unicode=True, sort_keys=False),
                            encoding="utf-8")
        out.mkdir(parents=True, exist_ok=True)
        (out / "asyncapi.json").write_text(
            json.dumps(asyncapi_document(schemas), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CommandFailed(f"cannot write under {out}: {exc.strerror or exc} ({exc.filename})") from exc
    typer.echo(f"wrote {out / 'asyncapi.json'}, {len(schemas)} JSON Schema files under {out / 'schemas'} and "
               f"{len(schemas)} ODCS documents under {out / 'odcs'}")


def odcs_file(contract_id: str, version: int) -> str:
    return f"odcs/{contract_id}/v{version}.odcs.yaml"
