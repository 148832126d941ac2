"""Shared fixtures, in the manner of Flask's tutorial: a per-test data dir,
settings pointing at it, an app, its test client and a CLI runner.

Two kinds of face model:
- ``fake_model`` replaces the model seam (``indexer.model``) with a fake that
  "finds" one face per non-uniform image and encodes it as a fixed vector
  derived from the pixels: fast, deterministic, no dlib.
- the real dlib model, for the integration tests on ``tests/data`` photos
  (``real_index`` indexes them once per test session).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from config.settings import Settings, load_settings
from indexer.model import FaceModel, face_model
from tests.helpers import DATA, PEOPLE_SIZES, FakeEncoder, FakeModel, ModelRunner, put_person, store_at


@pytest.fixture
def fake_model() -> FakeModel:
    """The fake face model (``tests.helpers.FakeModel``), passed in to what
    the test runs: ``index_paths(..., model=fake_model)``,
    ``create_app(settings, model=fake_model)``, and the CLI through
    ``runner`` (a test that asks for both gets a runner that passes it)."""
    return FakeModel()


@pytest.fixture
def coded(fake_model: FakeModel) -> dict[bytes, np.ndarray]:
    """The fake model, encoding each face as the vector registered for its
    pixels (``registry[crop bytes] = vector``): embeddings the test chooses."""
    registry: dict[bytes, np.ndarray] = {}
    fake_model.encoder = FakeEncoder(registry)
    return registry


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that reads the index of ``tests/data`` made with the real
    model (``real_index``, through ``app`` and ``client`` too) is a model
    test, whether or not it says so."""
    for item in items:
        if "real_index" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.model)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FACESEARCH_* variable of the developer's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("FACESEARCH_"):
            monkeypatch.delenv(name)


# -- store backends -----------------------------------------------------------

# Milvus Lite starts a server process per test: left out by `make test-fast`.
BACKENDS = ["faiss", pytest.param("milvus", marks=pytest.mark.slow)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on each store backend: "milvus" sets
    FACESEARCH_STORE__BACKEND in the environment, so that the settings, the
    CLI and child processes all use it, with the default Milvus Lite file in
    each data directory. Modules opt in with ``pytestmark = pytest.mark.usefixtures("backend")``."""
    if request.param == "milvus":
        if importlib.util.find_spec("pymilvus") is None:
            pytest.skip("the Milvus client is not installed (make install SCALE=1)")
        monkeypatch.setenv("FACESEARCH_STORE__BACKEND", "milvus")  # milvus.uri: DATA_DIR/milvus.db
    return request.param


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "index"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    """In-process indexing (1 worker), so that fakes apply."""
    return load_settings(data_dir=data_dir, indexer={"workers": 1})


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A writable copy of the LFW test photos (5 people x 3)."""
    target = tmp_path / "photos"
    shutil.copytree(DATA / "lfw", target)
    return target


@pytest.fixture(scope="session")
def real_model() -> FaceModel:
    """dlib's model with the default encoder, loaded at first use."""
    return face_model(load_settings().encoding)


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tests/data`` indexed once with the real dlib model and 2 workers."""
    from indexer.indexing import index_paths

    data_dir = tmp_path_factory.mktemp("real-index")
    settings = load_settings(data_dir=data_dir, indexer={"workers": 2})
    report = index_paths([DATA], settings, progress=False, model=face_model(settings.encoding))
    assert report.errors == [], report.errors
    return data_dir


@pytest.fixture
def app(real_index: Path):
    from service import create_app

    app = create_app(load_settings(data_dir=real_index))
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(request: pytest.FixtureRequest) -> CliRunner:
    """A CLI runner; the commands get the fake model when the test uses it."""
    if "fake_model" in request.fixturenames:
        return ModelRunner(request.getfixturevalue("fake_model"))
    return CliRunner()


# -- a synthetic index of well-separated people, for clustering -------------


@pytest.fixture
def people_index(data_dir: Path) -> Path:
    """An index of the PEOPLE_SIZES people, one face a photo, plus one
    stranger far from everybody (/photos/stranger/0.jpg)."""
    store = store_at(data_dir)
    for name, n in PEOPLE_SIZES.items():
        put_person(store, name, n)
    put_person(store, "stranger", 1)
    store.checkpoint()
    store.close()
    return data_dir


@pytest.fixture
def people_client(people_index: Path):
    from service import create_app

    app = create_app(load_settings(data_dir=people_index))
    app.config["TESTING"] = True
    return app.test_client()
