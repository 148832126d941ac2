"""Speed of the web pages on a large synthetic index: a person with 10,000
faces and a last clustering run of 2,000 clusters (issue 14's target: the
first page rendered by the server in at most 100 ms, p50).

Builds the index in a temporary folder (synthetic embeddings, one face a
photo, a small JPEG thumbnail each), then times requests through Flask's
test client (the server's own work: views, SQLite, templates; no network):
``GET /people/<id>`` (the first 200 faces, least like the person first:
the default), the same newest first, ``GET /clusters/0`` (the person's
group of 10,000 faces: the 500 nearest its centre), ``GET /people`` (the
first 50 clusters), ``GET /review`` (the questions over 2,000 groups and a
person) and a thumbnail
with its ETag (a second visit's 304).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.pages [--faces 12000] [--person 10000] [--clusters 2000] [--requests 20]

Results: ``benchmarks/results/pages.json``.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import percentile_ms, print_table, write_results
from config.settings import load_settings
from indexer.model import Box
from indexer.people.annotations import AnnotationsDB
from indexer.store import EmbeddedStore, FileRecord, NewFace
from service import create_app


def build(data_dir: Path, faces: int, person: int, clusters: int) -> int:
    """The index and annotations; returns the big person's id."""
    rng = np.random.default_rng(0)
    out = io.BytesIO()
    Image.new("RGB", (96, 96), (120, 110, 100)).save(out, format="JPEG")
    thumbnail = out.getvalue()
    x = rng.normal(0, 0.12, (faces, 128)).astype(np.float32)
    x[:person] = x[:person] * 0.2 + rng.normal(0, 0.12, 128).astype(np.float32)  # one person's faces, near
    store = EmbeddedStore.open(data_dir)
    for i in range(faces):
        record = FileRecord(path=f"/photos/{i // 1000}/{i}.jpg", size=1, mtime_ns=i, content_hash=f"h{i}",
                            width=640, height=480, detection="{}", model="synthetic", taken_at=1.6e9 + i * 60.0)
        store.put_file(record, [NewFace(Box(100, 300, 300, 100), x[i], thumbnail)])
    store.checkpoint()
    ids = store.face_ids()
    store.close()
    annotations = AnnotationsDB.open(data_dir)
    labels = np.concatenate([np.zeros(person, np.int64), rng.integers(1, clusters, faces - person)])
    annotations.store_run(method="kmeans", k=clusters, params={"k": clusters}, duration_s=1.0, face_ids=ids,
                          clusters=labels, nearest=labels, distances=np.full(faces, 0.3, np.float32))
    person_id = annotations.create_person("Big Person", ids[:person].tolist()).person.person_id
    annotations.close()
    return person_id


def timed(client, url: str, requests: int, headers: dict | None = None) -> dict:
    client.get(url, headers=headers)  # warm
    seconds, status = [], None
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        seconds.append(time.perf_counter() - started)
        status = response.status_code
    return {"url": url, "status": status, "p50_ms": percentile_ms(seconds, 50), "p90_ms": percentile_ms(seconds, 90),
            "bytes": len(response.data)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=12_000)
    parser.add_argument("--person", type=int, default=10_000)
    parser.add_argument("--clusters", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facesearch-pages-") as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        person_id = build(data_dir, args.faces, args.person, args.clusters)
        print(f"built {args.faces:,} faces, a person of {args.person:,}, {args.clusters:,} clusters "
              f"({time.perf_counter() - started:.1f} s)")
        app = create_app(load_settings(data_dir=data_dir, service={"audit_log": False}))
        client = app.test_client()
        thumb = client.get("/faces/1/thumbnail.jpg")
        rows = [
            timed(client, f"/people/{person_id}", args.requests),
            timed(client, f"/people/{person_id}?order=newest", args.requests),
            timed(client, "/clusters/0", args.requests),
            timed(client, "/people", args.requests),
            timed(client, "/review", args.requests),
            timed(client, "/faces/1/thumbnail.jpg", args.requests, {"If-None-Match": thumb.headers["ETag"]}),
        ]
    print_table(["page", "status", "p50 ms", "p90 ms", "bytes"],
                [[r["url"], r["status"], r["p50_ms"], r["p90_ms"], r["bytes"]] for r in rows],
                title=f"Pages over {args.faces:,} faces (person {args.person:,}, {args.clusters:,} clusters)")
    write_results("pages", {"faces": args.faces, "person_faces": args.person, "clusters": args.clusters,
                            "target_p50_ms": 100, "pages": rows})


if __name__ == "__main__":
    main()
