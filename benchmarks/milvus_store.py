"""The Milvus store on Milvus Lite beside the embedded FAISS store, in one run,
on synthetic faces (default 1M; fitted to LFW DevTrain with ``--data-dir``,
else ``FaceModel.fallback``), through the stores' own code paths:

1. build: a first generation of ``--faces`` faces, 10 faces a photo (SQLite
   metadata with a thumbnail per face on both sides), sealed and published;
2. open: the published generation opened read-only, ready to search;
3. top-10: single held-out queries one after the other, p50/p99;
4. range: every face within 0.55 of single queries (``range_search``), p50/
   p99, with the hits compared between the two backends;
5. reindex: the next generation with 1% of the photos removed and as many
   added, phase by phase (copy of the metadata, the writer's open, which on
   Milvus reconciles the rows with the metadata, the changes, seal, publish
   and Milvus's deletion of rows no generation sees);
6. erase: 1,000 faces erased for good (``indexer.erasure``; on Milvus Lite
   this includes stopping, vacuuming and restarting its file);
7. memory: this process's resident memory with the FAISS generation open,
   and Milvus Lite's server process's.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.milvus_store [--faces 1000000] [--data-dir LFW_INDEX]

Results: ``benchmarks/results/milvus_store.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import suppress
from pathlib import Path

import numpy as np

from benchmarks.common import DEFAULT_LFW, now, percentile_ms, print_table, write_results
from benchmarks.search_latency import tiny_jpeg
from benchmarks.synthetic import FaceModel
from config.settings import Settings, load_settings
from indexer.erasure import erase_faces
from indexer.model import MODEL_NAME, Box
from indexer.people.annotations import AnnotationsDB
from indexer.store import FileRecord, NewFace, after_publish, generations, open_published, open_store
from indexer.store.backends import connection_held

FACES_PER_PHOTO = 10
RADIUS = 0.55
CHECKPOINT_FACES = 50_000


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def photos(x: np.ndarray, first_photo: int) -> list[tuple[FileRecord, list[NewFace]]]:
    jpeg = tiny_jpeg()
    out = []
    for offset, start in enumerate(range(0, len(x), FACES_PER_PHOTO)):
        photo = first_photo + offset
        record = FileRecord(path=f"/cams/cam{photo % 20:02d}/{photo:08d}.jpg", size=1, mtime_ns=0,
                            content_hash=f"{photo:064x}", width=1920, height=1080, detection="{}",
                            model=MODEL_NAME, taken_at=1.7e9 + photo)
        out.append((record, [NewFace(Box(10, 100 * j + 90, 100, 100 * j + 10), v, jpeg)
                             for j, v in enumerate(x[start:start + FACES_PER_PHOTO])]))
    return out


def build(settings: Settings, x: np.ndarray) -> float:
    data_dir = settings.data_dir
    started = now()
    with connection_held(data_dir, settings):
        wip = generations.begin(data_dir, full=False, key={"benchmark": 1})
        store = open_store(wip.path, settings, repair=True)
        written = 0
        for record, faces in photos(x, 0):
            store.put_file(record, faces)
            written += len(faces)
            if written % CHECKPOINT_FACES < FACES_PER_PHOTO:
                store.checkpoint()
        store.seal()
        store.close()
        generations.publish(data_dir, wip)
        after_publish(data_dir, settings)
    return now() - started


def searches(settings: Settings, queries: np.ndarray, k: int = 10) -> dict:
    started = now()
    store = open_published(settings.data_dir, settings)
    store.prepare_search(settings.index)
    opened = now() - started
    top, top_ids = [], []
    for q in queries:
        t = now()
        _, ids = store.search(q[None, :], k)
        top.append(now() - t)
        top_ids.append(ids[0].tolist())
    ranged, hits = [], []
    for q in queries[: len(queries) // 3]:
        t = now()
        _, _, ids = store.range_search(q[None, :], RADIUS**2)
        ranged.append(now() - t)
        hits.append(sorted(ids.tolist()))
    memory = {"process_mb": rss_mb(os.getpid()),
              "milvus_lite_server_mb": sum(rss_mb(c) for c in children(os.getpid())) or None}
    result = {
        "open_s": opened, "faces": store.count(),
        "top10_p50_ms": percentile_ms(top, 50), "top10_p99_ms": percentile_ms(top, 99),
        "range_p50_ms": percentile_ms(ranged, 50), "range_p99_ms": percentile_ms(ranged, 99),
        "range_mean_hits": float(np.mean([len(h) for h in hits])), "memory": memory,
        "_top": top_ids, "_hits": hits,
    }
    store.close()
    return result


def reindex(settings: Settings, x: np.ndarray, change_photos: int, rng: np.random.Generator) -> dict:
    data_dir = settings.data_dir
    total_photos = len(x) // FACES_PER_PHOTO
    removed = rng.choice(total_photos, size=change_photos, replace=False)
    phases: dict[str, float] = {}
    started = now()
    with connection_held(data_dir, settings):
        t = now()
        wip = generations.begin(data_dir, full=False, key={"benchmark": 2})
        phases["copy_metadata_s"] = now() - t
        t = now()
        store = open_store(wip.path, settings, repair=True)
        phases["open_writer_s"] = now() - t
        t = now()
        for photo in removed.tolist():
            store.remove_file(f"/cams/cam{photo % 20:02d}/{photo:08d}.jpg")
        store.checkpoint()
        phases["remove_1pct_s"] = now() - t
        t = now()
        new = (x[rng.choice(len(x), size=change_photos * FACES_PER_PHOTO)] + 0.01).astype(np.float32)
        for record, faces in photos(new, total_photos):
            store.put_file(record, faces)
        store.checkpoint()
        phases["add_1pct_s"] = now() - t
        t = now()
        store.seal()
        store.close()
        phases["seal_s"] = now() - t
        t = now()
        generations.publish(data_dir, wip)
        phases["publish_s"] = now() - t
        t = now()
        after_publish(data_dir, settings)
        phases["old_rows_deleted_s"] = now() - t
    phases["total_s"] = now() - started
    return phases


def erase(settings: Settings, count: int) -> float:
    store = open_published(settings.data_dir, settings)
    ids = store.face_ids()[:count].tolist()
    store.close()
    annotations = AnnotationsDB.open(settings.data_dir)
    try:
        started = now()
        report = erase_faces(settings.data_dir, ids, annotations, settings=settings)
        assert report.faces_erased == count
        return now() - started
    finally:
        annotations.close()


def run_backend(backend: str, x: np.ndarray, queries: np.ndarray, work: Path) -> dict:
    root = work / backend
    shutil.rmtree(root, ignore_errors=True)
    settings = load_settings(data_dir=root, store={"backend": backend})
    rng = np.random.default_rng(3)
    started_mb = rss_mb(os.getpid())
    print(f"{backend}: building {len(x):,} faces ...", flush=True)
    seconds = build(settings, x)
    result = {"build_s": seconds, "build_faces_per_s": len(x) / seconds, "process_before_mb": started_mb}
    print(f"{backend}: {len(x) / seconds:,.0f} faces/s; searching ...", flush=True)
    result.update(searches(settings, queries))
    print(f"{backend}: reindexing 1% ...", flush=True)
    result["reindex_1pct"] = reindex(settings, x, max(1, len(x) // FACES_PER_PHOTO // 100), rng)
    print(f"{backend}: erasing 1,000 faces ...", flush=True)
    result["erase_1000_s"] = erase(settings, min(1_000, len(x) // 2))
    result["disk_mb"] = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20
    shutil.rmtree(root, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--data-dir", type=Path, default=None, help="an LFW index to fit the synthetic faces to")
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    parser.add_argument("--work-dir", type=Path, default=None, help="where the stores are built (a temp dir)")
    parser.add_argument("--backend", choices=["faiss", "milvus"], help=argparse.SUPPRESS)  # one side, in a child
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.data_dir is not None:
        from benchmarks.clustering import load_faces

        faces = load_faces(args.data_dir, args.lfw)
        labelled = faces.person != ""
        model, source = FaceModel.fit(faces.x[labelled], faces.person[labelled]), "fitted to LFW DevTrain"
    else:
        model, source = FaceModel.fallback(), "fallback model (no --data-dir)"
    if args.backend:  # a child: one backend, in a process of its own (its memory alone)
        x, _ = model.generate(args.faces + args.queries, seed=1)
        args.out.write_text(json.dumps(run_backend(args.backend, x[: args.faces], x[args.faces :], args.work_dir)))
        return
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="milvus-bench-"))
    results: dict[str, dict] = {}
    for backend in ("faiss", "milvus"):
        out = work / f"{backend}.json"
        command = [sys.executable, "-m", "benchmarks.milvus_store", "--faces", str(args.faces), "--queries",
                   str(args.queries), "--lfw", str(args.lfw), "--work-dir", str(work), "--backend", backend,
                   "--out", str(out)] + (["--data-dir", str(args.data_dir)] if args.data_dir else [])
        subprocess.run(command, check=True)
        results[backend] = json.loads(out.read_text())
    same_top = float(np.mean([a == b for a, b in zip(results["faiss"].pop("_top"), results["milvus"].pop("_top"))]))
    same_range = float(np.mean([a == b for a, b in zip(results["faiss"].pop("_hits"),
                                                       results["milvus"].pop("_hits"))]))
    f, m = results["faiss"], results["milvus"]
    rows = [
        ("build (faces/s)", f["build_faces_per_s"], m["build_faces_per_s"]),
        ("open published (s)", f["open_s"], m["open_s"]),
        ("top-10 p50 (ms)", f["top10_p50_ms"], m["top10_p50_ms"]),
        ("top-10 p99 (ms)", f["top10_p99_ms"], m["top10_p99_ms"]),
        (f"range {RADIUS} p50 (ms)", f["range_p50_ms"], m["range_p50_ms"]),
        (f"range {RADIUS} p99 (ms)", f["range_p99_ms"], m["range_p99_ms"]),
        ("range mean hits", f["range_mean_hits"], m["range_mean_hits"]),
        *[(f"reindex 1%: {k.removesuffix('_s')} (s)", f["reindex_1pct"][k], m["reindex_1pct"][k])
          for k in f["reindex_1pct"]],
        ("erase 1,000 faces (s)", f["erase_1000_s"], m["erase_1000_s"]),
        ("process memory, searching (MB)", f["memory"]["process_mb"], m["memory"]["process_mb"]),
        ("Milvus Lite server memory (MB)", float("nan"), m["memory"]["milvus_lite_server_mb"] or float("nan")),
        ("data on disk after (MB)", f["disk_mb"], m["disk_mb"]),
    ]
    print_table(["", "FAISS (embedded)", "Milvus Lite"], rows,
                title=f"{args.faces:,} synthetic faces ({source}); same top-10 {same_top:.3f}, "
                      f"same range hits {same_range:.3f}")
    write_results("milvus_store", {"faces": args.faces, "queries": args.queries, "source": source,
                                   "radius": RADIUS, "same_top10": same_top, "same_range_hits": same_range,
                                   **results})
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
