"""The layers point one way: contracts/ at the bottom, base/ above it, gateway/ and services/ side by side above
that (neither imports the other), deploy/ composing the processes on top."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAY_IMPORT = {
    "contracts": {"contracts"},
    "base": {"contracts", "base"},
    "gateway": {"contracts", "base", "gateway"},
    "services": {"contracts", "base", "services"},
}
PROJECT = {"contracts", "base", "gateway", "services", "deploy", "tests", "bench"}


def imported(path: Path) -> set[str]:
    """The project packages a module imports, anywhere in it (lazy imports inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & PROJECT


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    modules = sorted((ROOT / layer).rglob("*.py"))
    assert modules
    wrong = {str(m.relative_to(ROOT)): sorted(imported(m) - MAY_IMPORT[layer]) for m in modules}
    assert {m: w for m, w in wrong.items() if w} == {}
