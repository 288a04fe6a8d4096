"""Every ODCS document `concord contracts docs` writes is accepted by `datacontract lint` (datacontract-cli, in a
virtual environment of its own: tests/datacontract.py)."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from contracts.catalogue import CATALOGUE
from tests import datacontract as linter
from tests.tools import run_concord


@pytest.fixture(scope="module")
def datacontract() -> Path:
    return linter.ensure()


def lint(command: Path, document: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(command), "lint", str(document)], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(linter.VENV)})


async def test_datacontract_lint_accepts_every_generated_odcs_document(datacontract: Path, tmp_path: Path) -> None:
    ran = await run_concord("contracts", "docs", str(tmp_path))
    assert ran.code == 0, ran.err
    documents = sorted((tmp_path / "odcs").glob("*/*.odcs.yaml"))
    assert {(d.parent.name, int(d.name.split(".")[0][1:])) for d in documents} == set(CATALOGUE)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # a process each: the CLI takes seconds to load
        results = list(pool.map(lambda document: (document, lint(datacontract, document)), documents))
    for document, linted in results:
        assert linted.returncode == 0 and "Data contract is valid" in linted.stdout, (document, linted.stdout)


def test_datacontract_lint_refuses_a_document_that_is_not_odcs(datacontract: Path, tmp_path: Path) -> None:
    """The linter judges: a document that breaks the standard is refused (else the test above proves nothing)."""
    wrong = tmp_path / "wrong.odcs.yaml"
    wrong.write_text("apiVersion: v3.0.2\nkind: DataContract\nid: x\nversion: 1.0.0\nstatus: active\n"
                     "schema:\n  - name: A\n    properties:\n      - name: a\n        logicalType: text\n")
    assert lint(datacontract, wrong).returncode != 0
