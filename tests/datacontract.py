"""datacontract-cli, which lints the ODCS documents (tests/integration/test_odcs_lint.py). It needs typer<0.28 while
the project pins a later one, so it lives in a virtual environment of its own, made from the pin in pyproject.toml
(the ``datacontract`` extra). `make test` makes it before the tests (`python -m tests.datacontract`)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
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


if __name__ == "__main__":
    print(ensure())
