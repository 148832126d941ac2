"""Query-by-photo latency: ``POST /api/v1/search`` with a photo upload.

A small index is built from ``tests/data`` with the real model (17 photos).
The query photos are ``obama-1080p.jpg`` (1920x1080) from the shared photos
and a 640x480 version of it (centre crop to 4:3, resized with Pillow). Each
is sent through the Flask test client (``create_app``), once to warm up and
then ``--requests`` (20) times: p50 and p99 latency in milliseconds.

For the 1080p photo the time is also broken down by calling the pieces
directly, with the service's own model (median of ``--repeats`` (5) calls,
ms): decoding (``indexer.images.decode_rgb``), detection
(``indexer.faces.detect_boxes``) and encoding (the model's
``encoder.embeddings``).

Measured side by side with the default detection settings (YuNet, on a
copy downscaled to ``max_side`` 1600 px), with dlib's HOG instead (the
default before), and with YuNet at ``max_side=0`` (no downscale).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.query_photo [--requests 20] [--repeats 5]

Results: ``benchmarks/results/query_photo.json``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient
from PIL import Image, ImageOps

from benchmarks.common import (
    REPO_ROOT,
    SHARED_DATA,
    now,
    percentile_ms,
    print_table,
    require_dir,
    require_file,
    write_results,
)
from config.settings import DetectionSettings, load_settings
from indexer.faces import detect_boxes
from indexer.images import decode_rgb
from indexer.indexing import index_paths
from indexer.model import FaceModel, face_model
from service import create_app

DEFAULT_PHOTO = SHARED_DATA / "photos" / "face_recognition" / "examples" / "obama-1080p.jpg"
TEST_PHOTOS = REPO_ROOT / "tests" / "data"
VARIANTS = {"YuNet, max_side=1600 (default)": {}, "HOG, max_side=1600": {"model": "hog"},
            "YuNet, max_side=0 (no downscale)": {"max_side": 0}}


def query_photos(path: Path) -> dict[str, bytes]:
    """The photo as JPEG bytes at 640x480, then at its own size (1920x1080),
    by ``WIDTHxHEIGHT``."""
    original = Image.open(path).convert("RGB")
    small = ImageOps.fit(original, (640, 480), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=90)
    return {"640x480": out.getvalue(), f"{original.width}x{original.height}": path.read_bytes()}


def post_photo(client: FlaskClient, data: bytes) -> int:
    """Search with the photo; returns how many query faces the answer holds."""
    response = client.post("/api/v1/search", data={"image": (io.BytesIO(data), "q.jpg")},
                           content_type="multipart/form-data")
    if response.status_code != 200:
        raise RuntimeError(f"search answered {response.status_code}: {response.get_data(as_text=True)[:300]}")
    return len(response.get_json()["faces"])


def request_latency(client: FlaskClient, data: bytes, requests: int) -> dict:
    faces = post_photo(client, data)  # warm-up
    seconds = []
    for _ in range(requests):
        started = now()
        post_photo(client, data)
        seconds.append(now() - started)
    return {"faces": faces, "requests": requests, "p50_ms": percentile_ms(seconds, 50),
            "p99_ms": percentile_ms(seconds, 99), "mean_ms": 1000 * statistics.fmean(seconds)}


def median_ms(function: Callable[[], object], repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        started = now()
        function()
        seconds.append(now() - started)
    return 1000 * statistics.median(seconds)


def breakdown(model: FaceModel, data: bytes, detection: DetectionSettings, repeats: int) -> dict[str, float]:
    """Median ms of decoding, and of detection and encoding by ``model``, of one photo."""
    rgb = decode_rgb(data)
    boxes = detect_boxes(model, rgb, detection)
    return {
        "decode_ms": median_ms(lambda: decode_rgb(data), repeats),
        "detect_ms": median_ms(lambda: detect_boxes(model, rgb, detection), repeats),
        "encode_ms": median_ms(lambda: model.encoder.embeddings(rgb, boxes, jitters=detection.jitters), repeats),
        "faces": len(boxes),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO, help="the 1920x1080 query photo")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per photo and variant")
    parser.add_argument("--repeats", type=int, default=5, help="calls per piece in the 1080p breakdown")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    photos = query_photos(require_file(args.photo, "the 1080p query photo", " (give another with --photo FILE)"))
    large = list(photos)[-1]
    tests = require_dir(TEST_PHOTOS, "the test photos")
    rows, breakdown_rows, results = [], [], []
    with tempfile.TemporaryDirectory(prefix="facesearch-query-") as tmp:
        settings = load_settings(data_dir=tmp, indexer={"workers": 1})
        report = index_paths([tests], settings, progress=False, model=face_model(settings.encoding))
        print(f"index: {report.faces_total} faces from {report.photos_total} photos of {tests}")
        for variant, detection in VARIANTS.items():
            settings = load_settings(data_dir=tmp, detection=detection)
            app = create_app(settings)
            # The service finds query faces with the index's own detection
            # settings; this benchmark compares query-time variants on purpose.
            app.extensions["facesearch"].query_detection = settings.detection
            client = app.test_client()
            per_size = {size: request_latency(client, data, args.requests) for size, data in photos.items()}
            service_model = app.extensions["facesearch"].model  # the requests' model, loaded by now
            pieces = breakdown(service_model, photos[large], settings.detection, args.repeats)
            results.append({"variant": variant, "detection": settings.detection.model_dump(),
                            "requests": per_size, f"breakdown_{large}": pieces})
            rows += [[variant, size, r["faces"], r["p50_ms"], r["p99_ms"]] for size, r in per_size.items()]
            total = pieces["decode_ms"] + pieces["detect_ms"] + pieces["encode_ms"]
            breakdown_rows.append([variant, pieces["decode_ms"], pieces["detect_ms"], pieces["encode_ms"],
                                   pieces["faces"], total, per_size[large]["p50_ms"]])
            print(f"  {variant}: done", flush=True)

    print_table(["detection", "photo", "faces", "p50 ms", "p99 ms"], rows,
                title=f"POST /api/v1/search with a photo ({args.requests} requests each, Flask test client)")
    print_table(["detection", "decode ms", "detect ms", "encode ms", "faces", "sum ms", "request p50 ms"],
                breakdown_rows, title=f"Where the time goes, {large} (median of {args.repeats} calls each)")
    write_results("query_photo", {"photo": args.photo.resolve(), "variants": results})


if __name__ == "__main__":
    main()
