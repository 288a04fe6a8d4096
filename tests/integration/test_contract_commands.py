"""`concord contracts check | publish | compat` as a contract developer runs them: on JSON Schema files, against
the real gateway's registry, and failing in one line when they cannot do their work."""

from __future__ import annotations

import copy
import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest

from base.settings import Settings
from deploy.processes import AppProcesses
from tests.integration.test_registry_api import gateway_url, licence_schema
from tests.tools import Ran, bearer, http_client, run_concord


@pytest.fixture
def contract_id() -> str:
    return f"market.licence-{uuid.uuid4().hex[:8]}"


def write(folder: Path, name: str, content: Any) -> str:
    path = folder / name
    path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    return str(path)


def versioned(schema: dict[str, Any], version: int | None) -> dict[str, Any]:
    numbered = copy.deepcopy(schema)
    numbered["x-contract"].pop("version", None)
    if version is not None:
        numbered["x-contract"]["version"] = version
    return numbered


def one_line_error(ran: Ran) -> str:
    """What a command that failed said: one line on stderr, nothing on stdout, no traceback, exit 2."""
    assert (ran.code, ran.out) == (2, ""), ran
    assert len(ran.err.splitlines()) == 1 and ran.err.startswith("error: "), ran.err
    return ran.err.strip()


async def test_check_and_publish_a_file_then_see_how_a_changed_version_differs(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str], contract_id: str, tmp_path: Path
) -> None:
    market = {"CONCORD_TOKEN": tokens["market"]}
    v1 = write(tmp_path, "v1.json", versioned(licence_schema(contract_id), 1))
    ran = await run_concord("contracts", "check", v1)
    assert (ran.code, ran.out) == (0, f"{contract_id} v1: new, compatible under BACKWARD\n"), ran

    ran = await run_concord("contracts", "publish", v1, env=market)
    assert (ran.code, ran.out) == (0, f"{contract_id} v1: registered\n"), ran
    ran = await run_concord("contracts", "publish", v1, env=market)
    assert (ran.code, ran.out) == (0, f"{contract_id} v1: already registered\n"), ran
    body = write(tmp_path, "body.json", {"schema": versioned(licence_schema(contract_id), 1)})
    ran = await run_concord("contracts", "check", body)  # the registration body reads as the schema it wraps
    assert (ran.code, ran.out) == (0, f"{contract_id} v1: registered\n"), ran

    edited = versioned(licence_schema(contract_id), 1)
    del edited["properties"]["credit_code"]["minLength"]
    edited["properties"]["scope"]["description"] = "business scope"  # the lines come in the order of the names
    changed = write(tmp_path, "v1-edited.json", edited)
    ran = await run_concord("contracts", "check", changed)
    assert ran.code == 1
    assert ran.out.splitlines() == [f"{contract_id} v1: differs from registered v1:",
                                    "  removed #/properties/credit_code/minLength: 18",
                                    '  added   #/properties/scope/description: "business scope"']

    ran = await run_concord("contracts", "publish", changed, env=market)
    assert ran.code == 1
    assert ran.out == (f"{contract_id} v1: refused: version 1 of {contract_id} is registered with other content; "
                       "the next free version is 2 (name version 2 in x-contract, or leave the version out)\n")
    unnumbered = write(tmp_path, "next.json", versioned(edited, None))
    ran = await run_concord("contracts", "check", unnumbered)
    assert (ran.code, ran.out) == (0, f"{contract_id}: new, would be v2, compatible under BACKWARD\n"), ran
    ran = await run_concord("contracts", "publish", unnumbered, env=market)
    assert (ran.code, ran.out) == (0, f"{contract_id}: registered as v2\n"), ran
    async with http_client(base_url=gateway_url(stack)) as http:
        assert (await http.get(f"/v1/contracts/{contract_id}/versions")).json() == [1, 2]

    breaking = versioned(edited, 3)
    breaking["required"].append("legal_person_id")
    ran = await run_concord("contracts", "check", write(tmp_path, "v3.json", breaking))
    assert ran.code == 1
    assert ran.out.splitlines() == [f"{contract_id} v3: new, incompatible under BACKWARD:",
                                    "  REQUIRED_ATTRIBUTE_ADDED #/required/legal_person_id"]


async def test_a_file_without_an_id_takes_the_contract_given(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str], contract_id: str, tmp_path: Path
) -> None:
    anonymous = versioned(licence_schema(contract_id), None)
    del anonymous["x-contract"]["id"]
    path = write(tmp_path, "licence.json", anonymous)
    error = one_line_error(await run_concord("contracts", "check", path))
    assert "names no contract: add x-contract.id, or give --contract ID" in error
    ran = await run_concord("contracts", "publish", path, "--contract", contract_id, "--token", tokens["market"])
    assert (ran.code, ran.out) == (0, f"{contract_id}: registered as v1\n"), ran
    named = write(tmp_path, "named.json", licence_schema(contract_id))
    error = one_line_error(await run_concord("contracts", "check", named, "--contract", "market.other"))
    assert error.endswith(f"is a version of {contract_id} (its x-contract.id), not of market.other (--contract)")


async def test_compat_says_its_verdict_and_takes_the_mode_and_versions_from_the_registry(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str], contract_id: str, tmp_path: Path
) -> None:
    v1 = versioned(licence_schema(contract_id), 1)
    v2 = versioned(v1, 2)
    del v2["properties"]["legal_person_id"]  # an optional field dropped: FORWARD compatible, not BACKWARD
    old, new = write(tmp_path, "v1.json", v1), write(tmp_path, "v2.json", v2)
    ran = await run_concord("contracts", "compat", "--mode", "backward", old, new)
    assert (ran.code, ran.out.splitlines()) == (1, [
        "incompatible (BACKWARD): v2 against v1",
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL #/properties/legal_person_id"]), ran
    ran = await run_concord("contracts", "compat", "--mode", "forward", old, new)
    assert (ran.code, ran.out) == (0, "compatible (FORWARD): v2 against v1\n"), ran

    async with http_client(base_url=gateway_url(stack), headers=bearer(tokens["market"])) as http:
        assert (await http.post(f"/v1/contracts/{contract_id}/versions", json={"schema": v1})).status_code == 201
        assert (await http.put(f"/v1/contracts/{contract_id}/config",
                               json={"compatibility": "FORWARD"})).status_code == 200
    ran = await run_concord("contracts", "compat", "--contract", contract_id, new)
    assert (ran.code, ran.out) == (
        0, f"compatible (FORWARD, {contract_id}'s mode in the registry): v2 against registered v1\n"), ran
    ran = await run_concord("contracts", "compat", "--contract", contract_id, "--mode", "BACKWARD", new)
    assert (ran.code, ran.out.splitlines()[0]) == (1, "incompatible (BACKWARD): v2 against registered v1"), ran
    ran = await run_concord("contracts", "check", new)  # check, too, judges under the contract's mode
    assert (ran.code, ran.out) == (0, f"{contract_id} v2: new, compatible under FORWARD\n"), ran

    anonymous = write(tmp_path, "anonymous.json", {"type": "object"})
    error = one_line_error(await run_concord("contracts", "compat", "--contract", "market.nothing-here", anonymous))
    assert "market.nothing-here is not registered" in error


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("command", [
    ("contracts", "check"),
    ("contracts", "publish", "--token", "cnc_anything"),
    ("contracts", "compat", "--contract", "bureau.case-submitted", "NEW"),
])
async def test_a_gateway_that_does_not_answer_is_one_line_naming_it_and_how_to_start_it(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    address = f"http://127.0.0.1:{closed_port()}"
    arguments = [write(tmp_path, "new.json", {"type": "object"}) if a == "NEW" else a for a in command]
    error = one_line_error(await run_concord(*arguments, env={"CONCORD_GATEWAY_URL": address}))
    assert error.startswith(f"error: cannot reach the gateway at {address}: start it with `concord gateway run`")


async def test_publishing_without_a_token_or_with_one_that_owns_nothing_is_one_line(
    stack: Settings, exchange: AppProcesses, tokens: dict[str, str]
) -> None:
    error = one_line_error(await run_concord("contracts", "publish", env={"CONCORD_TOKEN": ""}))
    assert error.startswith("error: no token: give --token TOKEN or set CONCORD_TOKEN")
    error = one_line_error(await run_concord("contracts", "publish", "--token", "cnc_forged.token"))
    assert "the gateway refused the token (401" in error
    error = one_line_error(await run_concord("contracts", "publish", "--token", tokens["planning"]))
    assert error == ("error: planning owns none of the contracts in contracts/ (their owners: bureau, coordination, "
                     "exchange, market): publish with the owning department's token")


async def test_a_file_that_is_no_contract_version_is_one_line(tmp_path: Path) -> None:
    for content, said in [("{not json", "is not valid JSON"), ("[1]", "does not hold a JSON object"),
                          ('{"type": "object"}', "has no x-contract object")]:
        path = tmp_path / "file.json"
        path.write_text(content, encoding="utf-8")
        assert said in one_line_error(await run_concord("contracts", "check", str(path)))
    assert "cannot read" in one_line_error(await run_concord("contracts", "check", str(tmp_path / "absent.json")))
