"""datacontract-cli, which lints the ODCS documents (tests/integration/test_odcs_lint.py). It needs typer<0.28 while
the project pins a later one, so it lives in a virtual environment of its own, made from the pin in pyproject.toml
(the ``datacontract`` extra). `make test` makes it before the tests (`python -m tests.datacontract`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-datacontract"


def ensure() -> Path:
    """The `datacontract` command, installed at the version pyproject.toml pins (once)."""
    [pin] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["datacontract"]
    marker = VENV / f".installed-{pin}"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", pin], check=True, timeout=900)
        marker.touch()
    return VENV / "bin" / "datacontract"


# `datacontract lint PATH` for each path given, in one process (the CLI takes seconds to load, a lint well under
# one): the exit code and what it printed, by path, as JSON.
LINT_EACH = """
import json, sys
from typer.testing import CliRunner
from datacontract.cli import app
runner = CliRunner()
print(json.dumps({path: [(ran := runner.invoke(app, ["lint", path])).exit_code, ran.output] for path in sys.argv[1:]}))
"""


def lint(documents: list[Path]) -> dict[Path, tuple[int, str]]:
    """`datacontract lint` run on each document, by the CLI's own command: its exit code and output, by document
    (the documents shared among a process per core)."""
    python = ensure().parent / "python"
    workers = min(os.cpu_count() or 2, len(documents)) or 1
    shares = [documents[i::workers] for i in range(workers)]

    def run(share: list[Path]) -> dict[str, list[object]]:
        environment = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(VENV)}
        ran = subprocess.run([str(python), "-c", LINT_EACH, *map(str, share)], capture_output=True, text=True,
                             timeout=300, check=True, env=environment)
        return dict(json.loads(ran.stdout))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = [result for share in pool.map(run, shares) for result in share.items()]
    return {Path(path): (int(str(code)), str(output)) for path, (code, output) in results}


if __name__ == "__main__":
    print(ensure())
