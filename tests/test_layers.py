"""The layers point down: config <- indexer (model, images, store, pipeline)
<- service <- the command line (``facesearch``). Checked on the source, so
that an import added anywhere, even inside a function, is caught."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> the top-level packages of this project it may not import
FORBIDDEN = {
    "config": {"indexer", "service", "facesearch"},
    "indexer": {"service", "facesearch"},
    "service": {"facesearch"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level names ``path`` imports, at any depth of its code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_package_imports_a_layer_above_it(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {path: names for path, names in offenders.items() if names} == {}
