"""The layers point down: config <- indexer (model, images, store, pipeline)
<- application (the use cases, Flask-free) <- the adapters: the HTTP API and
the pages (``service``), the command line (``facesearch``). Checked on the
source, so that an import added anywhere, even inside a function, is
caught."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> the top-level packages of this project it may not import
FORBIDDEN = {
    "config": {"indexer", "application", "service", "facesearch"},
    "indexer": {"application", "service", "facesearch"},
    "application": {"service", "facesearch", "flask", "werkzeug", "gunicorn"},
    "service": {"facesearch"},
    "facesearch": {"indexer"},  # the command line is an adapter over the application
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


# The one seam to the model: only these modules touch the model's libraries
# (dlib_onnx builds the ONNX graph of dlib's weights with onnx, runs nothing).
MODEL_LIBRARIES = {"dlib": {"indexer/model/dlib_models.py"}, "face_recognition": {"indexer/model/dlib_models.py"},
                   "face_recognition_models": {"indexer/model/dlib_models.py"},
                   "onnxruntime": {"indexer/model/onnx_encoder.py"}, "onnx": {"indexer/dlib_onnx.py"}}


def test_only_the_model_seam_imports_the_model_libraries():
    found: dict[str, set[str]] = {name: set() for name in MODEL_LIBRARIES}
    for package in ("config", "indexer", "application", "service", "facesearch"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in imported_packages(path) & set(MODEL_LIBRARIES):
                found[name].add(str(path.relative_to(ROOT)))
    assert found == MODEL_LIBRARIES


def test_the_command_line_reaches_the_http_adapter_only_to_serve():
    importers = {str(path.relative_to(ROOT)) for path in sorted((ROOT / "facesearch").rglob("*.py"))
                 if "service" in imported_packages(path)}
    assert importers == {"facesearch/cli/serving.py"}


def imported_modules(path: Path) -> set[str]:
    """The full names of the modules ``path`` imports from."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_stores_are_below_the_people_rules():
    """indexer.store (the index's files) knows nothing of people; the
    people rules (indexer.people) use the store."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.startswith("indexer.people"))
        for path in sorted((ROOT / "indexer" / "store").rglob("*.py"))
    }
    assert {path: names for path, names in offenders.items() if names} == {}
