"""Every ODCS document `concord contracts docs` writes is accepted by `datacontract lint` (datacontract-cli, in a
virtual environment of its own: tests/datacontract.py)."""

from __future__ import annotations

from pathlib import Path

from contracts.catalogue import CATALOGUE
from tests.datacontract import lint
from tests.tools import run_concord


async def test_datacontract_lint_accepts_every_generated_odcs_document(tmp_path: Path) -> None:
    ran = await run_concord("contracts", "docs", str(tmp_path))
    assert ran.code == 0, ran.err
    documents = sorted((tmp_path / "odcs").glob("*/*.odcs.yaml"))
    assert {(d.parent.name, int(d.name.split(".")[0][1:])) for d in documents} == set(CATALOGUE)
    linted = lint(documents)
    assert set(linted) == set(documents)
    for document, (code, output) in linted.items():
        assert code == 0 and "Data contract is valid" in output, (document, output)


def test_datacontract_lint_refuses_a_document_that_is_not_odcs(tmp_path: Path) -> None:
    """The linter judges: a document that breaks the standard is refused (else the test above proves nothing)."""
    wrong = tmp_path / "wrong.odcs.yaml"
    wrong.write_text("apiVersion: v3.0.2\nkind: DataContract\nid: x\nversion: 1.0.0\nstatus: active\n"
                     "schema:\n  - name: A\n    properties:\n      - name: a\n        logicalType: text\n")
    [(code, output)] = lint([wrong]).values()
    assert code != 0 and "Data contract is valid" not in output, output
