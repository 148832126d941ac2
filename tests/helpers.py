"""What the tests share that is not a fixture (the fixtures are in
conftest.py): the test data, the fake model, stores and clients, made-up
people, real servers, videos, and the error body's check. Test modules
import these, never each other."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner
from PIL import Image

from application.runtime import Runtime
from config.settings import load_settings
from indexer.model import CHIP_SIZE, DETECTORS, EMBEDDING_DIM, Box, FaceModel
from indexer.people.annotations import AnnotationsDB
from indexer.store.checksums import FILES_KEY, SELF_KEY
from indexer.store.metadata import NewFace
from service import create_app

DATA = Path(__file__).parent / "data"
LFW_PEOPLE = ["George_W_Bush", "Colin_Powell", "Tony_Blair", "Serena_Williams", "Vladimir_Putin"]


def lfw_photo(person: str, n: int) -> Path:
    return DATA / "lfw" / person / f"{person}_{n:04d}.jpg"


def fake_vector(seed_bytes: bytes) -> np.ndarray:
    """A fixed 128-d vector for the given bytes, scaled like a dlib embedding."""
    seed = int.from_bytes(hashlib.blake2b(seed_bytes, digest_size=8).digest(), "little")
    return (np.random.default_rng(seed).normal(0.0, 0.12, EMBEDDING_DIM)).astype(np.float32)


class FakeDetector:
    """Finds one face per image unless the image is uniform (no face), or
    ``faces_per_image`` side-by-side faces; counts its ``calls``. ``delay_s``
    a call (a slow model, for the process tests)."""

    name = "fake"

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.faces_per_image = 1
        self.calls = 0
        self.delay_s = delay_s

    def boxes(self, rgb: np.ndarray, *, upsample: int) -> list[Box]:
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if rgb.min() == rgb.max():
            return []
        h, w = rgb.shape[:2]
        n = self.faces_per_image
        step = w // n
        return [Box(0, (i + 1) * step, h, i * step) for i in range(n)]

    def load(self) -> None:
        pass


class FakeEncoder:
    """Encodes a face as a fixed vector of its crop's pixels: the same crop
    gives the same vector. ``registry``: crops (their bytes) encoded as the
    vector the test chose instead. ``calls``: (image shape, number of faces)
    of each call."""

    name = "fake"

    def __init__(self, registry: dict[bytes, np.ndarray] | None = None) -> None:
        self.registry = registry
        self.calls: list[tuple[tuple[int, ...], int]] = []

    def embeddings(self, rgb: np.ndarray, boxes: list[Box], *, jitters: int = 1) -> np.ndarray:
        self.calls.append((rgb.shape, len(boxes)))
        crops = [np.ascontiguousarray(rgb[b.top : b.bottom, b.left : b.right]).tobytes() for b in boxes]
        out = [self.registry[c] if self.registry is not None else fake_vector(c) for c in crops]
        return np.asarray(out, dtype=np.float32).reshape(len(boxes), EMBEDDING_DIM)

    def chips(self, rgb: np.ndarray, boxes: list[Box]) -> np.ndarray:
        """Each crop stretched to a 150x150 chip."""
        from PIL import Image

        return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(rgb[b.top : b.bottom, b.left : b.right]))
                                    .resize((CHIP_SIZE, CHIP_SIZE))) for b in boxes])

    def encode_chips(self, chips: np.ndarray) -> np.ndarray:
        """A fixed random projection of the chips' 10x10-pixel block means:
        hiding part of a chip moves its vector, as the real network's does."""
        blocks = chips.astype(np.float32).reshape(len(chips), 15, 10, 15, 10, 3).mean(axis=(2, 4)) / 255.0
        projection = np.random.default_rng(7).normal(0.0, 0.02, (15 * 15 * 3, EMBEDDING_DIM)).astype(np.float32)
        return np.ascontiguousarray(blocks.reshape(len(chips), -1) @ projection, dtype=np.float32)

    def load(self) -> None:
        pass


class FakeModel(FaceModel):
    """The face model the tests pass in instead of dlib's: ``FakeDetector``
    under every detector name, and ``FakeEncoder``. Fast, deterministic,
    picklable (a worker process gets its own copy)."""

    def __init__(self, *, delay_s: float = 0.0, registry: dict[bytes, np.ndarray] | None = None) -> None:
        self.fake_detector = FakeDetector(delay_s=delay_s)
        super().__init__({name: self.fake_detector for name in DETECTORS}, FakeEncoder(registry))

    @property
    def faces_per_image(self) -> int:
        return self.fake_detector.faces_per_image

    @faces_per_image.setter
    def faces_per_image(self, value: int) -> None:
        self.fake_detector.faces_per_image = value

    @property
    def calls(self) -> int:
        """Images the detector was run on (in this process)."""
        return self.fake_detector.calls


class ScriptedDetector:
    """A detector whose boxes ``script(name, rgb, upsample)`` decides;
    each call's (name, upsample) is appended to ``calls``."""

    def __init__(self, name: str, script, calls: list[tuple[str, int]]) -> None:
        self.name, self.script, self.calls = name, script, calls

    def boxes(self, rgb: np.ndarray, *, upsample: int) -> list[Box]:
        self.calls.append((self.name, upsample))
        return self.script(self.name, rgb, upsample)

    def load(self) -> None:
        pass


def scripted_model(script, encoder=None) -> tuple[FaceModel, list[tuple[str, int]]]:
    """A model whose detectors ``script(name, rgb, upsample)`` decides (and
    ``encoder``, else ``FakeEncoder``), and the list of its detector calls."""
    calls: list[tuple[str, int]] = []
    detectors = {name: ScriptedDetector(name, script, calls) for name in DETECTORS}
    return FaceModel(detectors, encoder or FakeEncoder()), calls


class ModelRunner(CliRunner):
    """A ``CliRunner`` whose commands find and encode faces with ``model``
    (given to them as the Click context object, ``Runtime``)."""

    def __init__(self, model: FaceModel) -> None:
        super().__init__()
        self.model = model

    def invoke(self, cli, args=None, **kwargs):  # type: ignore[override]
        kwargs.setdefault("obj", Runtime(model=self.model))
        return super().invoke(cli, args, **kwargs)


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


def client_of(data_dir: Path, *, model: FaceModel | None = None, **settings):
    """A test client of the app over ``data_dir`` with these settings,
    finding query faces with ``model`` (None: dlib's)."""
    app = create_app(load_settings(data_dir=data_dir, **settings), model=model)
    app.config["TESTING"] = True
    return app.test_client()


def csrf_token_of(html: str) -> str:
    """The CSRF token of a page's forms."""
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


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

    from PIL import Image

    from indexer.store import FileRecord

    colour = tuple(int(b) for b in hashlib.blake2b(name.encode(), digest_size=3).digest())
    out = io.BytesIO()
    Image.new("RGB", (40, 48), colour).save(out, format="JPEG")
    for i, vector in enumerate(person_faces(name, n, first), start=first):
        record = FileRecord(path=f"/photos/{name}/{i}.jpg", size=1, mtime_ns=1, content_hash=f"{name}{i}",
                            width=100, height=100, detection="{}", model="fake")
        store.put_file(record, [NewFace(Box(10, 60, 70, 10), vector, out.getvalue())])


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@contextmanager
def serving(data_dir: Path, workers: int = 2, env: dict | None = None):
    """``facesearch serve`` on a free port until the block ends; yields
    ``(base url, output)``, the server's output list filled in at the end."""
    port = free_port()
    executable = Path(sys.executable).with_name("facesearch")
    server = subprocess.Popen(
        [str(executable), "serve", "--data-dir", str(data_dir), "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})},
    )
    base, output = f"http://127.0.0.1:{port}", []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/v1/health", timeout=10).close()
                break
            except urllib.error.HTTPError:
                break  # answering (a key is needed)
            except OSError as error:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {server.stdout.read()}") from error
                time.sleep(0.2)
        yield base, output
    finally:
        server.terminate()
        output.append(server.communicate(timeout=20)[0])


def upload(url: str, size: int, headers: dict | None = None, form: dict | None = None,
           opener=None) -> tuple[int, str]:
    """POST a ``size``-byte file as multipart form data the way a script does
    (urllib sends the whole body, then reads the answer)."""
    boundary = "facesearch-test-boundary"
    fields = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
                      for k, v in (form or {}).items())
    body = fields + (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.jpg\"\r\n"
                     "Content-Type: image/jpeg\r\n\r\n").encode() + b"\xff" * size + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})})
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def forget_checksums(generation: Path) -> None:
    """Make ``generation`` look published before checksums existed."""
    manifest = json.loads((generation / "manifest.json").read_text())
    del manifest[FILES_KEY], manifest[SELF_KEY]
    (generation / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))


BACKGROUND = 40  # grey level of the frames without anyone


def write_video(
    path: Path,
    scenes: list[tuple[float, Path | None]],
    *,
    size: tuple[int, int] = (320, 180),
    fps: float = 10,
    fourcc: str = "FFV1",
    face_side: int = 160,
) -> Path:
    """A video of ``scenes``: (seconds, photo pasted in the middle, resized
    to ``face_side`` pixels, or None for an empty grey frame)."""
    width, height = size
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened()
    for seconds, photo in scenes:
        frame = np.full((height, width, 3), BACKGROUND, np.uint8)
        if photo is not None:
            rgb = np.asarray(Image.open(photo).convert("RGB").resize((face_side, face_side)))
            top, left = (height - face_side) // 2, (width - face_side) // 2
            frame[top : top + face_side, left : left + face_side] = rgb[:, :, ::-1]
        for _ in range(round(seconds * fps)):
            writer.write(frame)
    writer.release()
    return path


A = lfw_photo("Tony_Blair", 1)


B = lfw_photo("Colin_Powell", 1)


A_GAP_B = [(3, A), (1, None), (3, B)]  # A for 0-3 s, nobody for 3-4 s, B for 4-7 s


def write_coded_photo(registry, folder: Path, name: str, vector: np.ndarray) -> Path:
    seed = int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "little")
    rgb = np.random.default_rng(seed).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    registry[rgb.tobytes()] = vector
    path = folder / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def face_of(data_dir: Path, path: Path) -> int:
    store = published_store(data_dir)
    try:
        return store.db.face_ids_of(str(path.resolve()))[0]
    finally:
        store.close()


def sources(annotations: AnnotationsDB, person_id: int) -> dict[int, str]:
    return {f.face_id: f.source for f in annotations.person_faces(person_id)}


def faces_of(client, name: str) -> list[int]:
    """The face ids of a made-up person, found by recall from their centre."""
    hits = client.post("/api/v1/recall", json={"embeddings": [person_faces(name, 1)[0].tolist()],
                                               "max_distance": 0.5}).get_json()
    return sorted(m["face_id"] for m in hits["matches"] if f"/{name}/" in m["path"])


def photo_id_of(data_dir: Path, path: Path) -> int:
    store = published_store(data_dir)
    try:
        face_id = store.db.face_ids_of(str(path))[0]
        return store.faces([face_id])[face_id].photo_id
    finally:
        store.close()


def store_run(db: AnnotationsDB, face_ids, clusters, nearest=None, distances=None, k=None):
    """Store a run given face ids and their clusters (-1 = stranger)."""
    clusters = np.asarray(clusters, dtype=np.int64)
    nearest = clusters.copy() if nearest is None else nearest
    distances = np.full(len(clusters), 0.25, np.float32) if distances is None else distances
    k = int(clusters.max()) + 1 if k is None else k
    return db.store_run(method="kmeans", k=k, params={"k": k}, duration_s=0.5, face_ids=np.asarray(face_ids),
                        clusters=clusters, nearest=nearest, distances=distances)


def layout_version(path: Path) -> int:
    """A SQLite file's ``PRAGMA user_version`` (``indexer.store.sqlite_db``)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
