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

import hashlib
import importlib.util
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from config.settings import Settings, load_settings
from indexer import model
from indexer.model import EMBEDDING_DIM, Box

DATA = Path(__file__).parent / "data"
LFW_PEOPLE = ["George_W_Bush", "Colin_Powell", "Tony_Blair", "Serena_Williams", "Vladimir_Putin"]


def lfw_photo(person: str, n: int) -> Path:
    return DATA / "lfw" / person / f"{person}_{n:04d}.jpg"


def fake_vector(seed_bytes: bytes) -> np.ndarray:
    """A fixed 128-d vector for the given bytes, scaled like a dlib embedding."""
    seed = int.from_bytes(hashlib.blake2b(seed_bytes, digest_size=8).digest(), "little")
    return (np.random.default_rng(seed).normal(0.0, 0.12, EMBEDDING_DIM)).astype(np.float32)


class FakeModel:
    """Stands in for ``indexer.model``: one face per image unless the image is
    uniform (no face), or ``faces_per_image`` side-by-side faces. Embeddings
    depend only on the face crop's pixels, so the same crop gives the same vector."""

    def __init__(self) -> None:
        self.faces_per_image = 1
        self.calls = 0

    def face_boxes(self, rgb: np.ndarray, *, model: str = "hog", upsample: int = 1) -> list[Box]:
        self.calls += 1
        if rgb.min() == rgb.max():
            return []
        h, w = rgb.shape[:2]
        n = self.faces_per_image
        step = w // n
        return [Box(0, (i + 1) * step, h, i * step) for i in range(n)]

    def face_embeddings(self, rgb: np.ndarray, boxes: list[Box], *, jitters: int = 1) -> np.ndarray:
        out = [fake_vector(np.ascontiguousarray(rgb[b.top : b.bottom, b.left : b.right]).tobytes()) for b in boxes]
        return np.asarray(out, dtype=np.float32).reshape(len(boxes), EMBEDDING_DIM)


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> FakeModel:
    fake = FakeModel()
    monkeypatch.setattr(model, "face_boxes", fake.face_boxes)
    monkeypatch.setattr(model, "face_embeddings", fake.face_embeddings)
    monkeypatch.setattr(model, "load", lambda: None)
    return fake


@pytest.fixture
def coded(fake_model, monkeypatch):
    """The fake model, encoding each face as the vector registered for its
    pixels (``registry[crop bytes] = vector``): embeddings the test chooses."""
    registry: dict[bytes, np.ndarray] = {}

    def embeddings(rgb, boxes, *, jitters=1):
        return np.stack([registry[np.ascontiguousarray(rgb[b.top:b.bottom, b.left:b.right]).tobytes()]
                         for b in boxes]).astype(np.float32)

    monkeypatch.setattr(model, "face_embeddings", embeddings)
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


def store_at(path: Path, **kwargs):
    """The store in ``path`` with the backend the environment selects."""
    from indexer.store import open_store

    return open_store(path, load_settings(), **kwargs)


def published_store(data_dir: Path):
    """The published generation of ``data_dir``, read-only, with the backend
    the environment selects."""
    from indexer.store import open_published

    return open_published(data_dir, load_settings())


def drop_collection(data_dir: Path) -> None:
    """Drop the Milvus collection of ``data_dir`` (the environment's)."""
    from indexer.store.milvus import open_collection

    collection, _ = open_collection(load_settings().milvus, data_dir, create=False)
    try:
        collection.client.drop_collection(collection.name)
    finally:
        collection.conn.release()


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
def real_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tests/data`` indexed once with the real dlib model and 2 workers."""
    from indexer.indexing import index_paths

    data_dir = tmp_path_factory.mktemp("real-index")
    report = index_paths([DATA], load_settings(data_dir=data_dir, indexer={"workers": 2}), progress=False)
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


def client_of(data_dir: Path, **settings):
    """A test client of the app over ``data_dir`` with these settings."""
    from service import create_app

    app = create_app(load_settings(data_dir=data_dir, **settings))
    app.config["TESTING"] = True
    return app.test_client()


def csrf_token_of(html: str) -> str:
    """The CSRF token of a page's forms."""
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# -- a synthetic index of well-separated people, for clustering -------------

PEOPLE_SIZES = {"anna": 7, "ben": 6, "carl": 5, "dora": 4}


def person_faces(name: str, n: int, first: int = 0) -> list[np.ndarray]:
    """``n`` embeddings of one made-up person: a centre drawn like a dlib
    embedding (people ~1.9 apart) plus a little noise (~0.2 from the centre)."""
    centre = fake_vector(name.encode())
    rng = np.random.default_rng(int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "little"))
    noise = rng.normal(0.0, 0.015, (first + n, EMBEDDING_DIM)).astype(np.float32)[first:]
    return [centre + row for row in noise]


def put_person(store, name: str, n: int, first: int = 0) -> None:
    """Index ``n`` one-face photos of ``name`` (paths /photos/<name>/<i>.jpg)
    with a small solid-colour JPEG thumbnail each."""
    import io

    from PIL import Image

    from indexer.store import FileRecord

    colour = tuple(int(b) for b in hashlib.blake2b(name.encode(), digest_size=3).digest())
    out = io.BytesIO()
    Image.new("RGB", (40, 48), colour).save(out, format="JPEG")
    for i, vector in enumerate(person_faces(name, n, first), start=first):
        record = FileRecord(path=f"/photos/{name}/{i}.jpg", size=1, mtime_ns=1, content_hash=f"{name}{i}",
                            width=100, height=100, detection="{}", model="fake")
        store.put_file(record, [(Box(10, 60, 70, 10), vector, out.getvalue())])


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
