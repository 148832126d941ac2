"""Search at millions of faces: exact scans against FAISS's approximate
indexes, on embeddings that look like real ones.

Random vectors make every ANN index look broken, and a model of too-well
separated people makes every ANN index look perfect. The collection here is
drawn from ``benchmarks.synthetic.FaceModel`` fitted to the real LFW DevTrain
embeddings of an index (``--data-dir``; its own statistics otherwise:
``FaceModel.fallback``): same mean and spread of people and of faces around
their person, LFW's photo counts per person (most people once). Also run on
the real LFW embeddings themselves (``--data-dir``).

Queries are ``--queries`` faces drawn with the collection but left out of
it (people of the collection, seen again). For each index, one query at a
time on one thread (the server's setting):

* build seconds (train + add, 2 threads) and bytes per face (serialised);
* p50 / p99 ms of ``search(x, 10)``;
* recall@10: the share of the exact 10 nearest it returns;
* range recall: the share of the faces within the recall default radius
  (0.55, Euclidean) it returns (range search where the index has one).

Indexes: FAISS's flat scan (float32, exact); ours, ``FlatL2Index`` (an 8-bit
prescan re-ranked exactly, provably exact); IVF-Flat (nlist 4 sqrt(n)) at
several nprobe; HNSW-Flat (M 32) at several efSearch.

Run::

    .venv/bin/python -m benchmarks.ann --data-dir DIR [--faces 1000000] [--queries 1000]

Results: ``benchmarks/results/ann.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import faiss
import numpy as np

from benchmarks.common import DEFAULT_LFW, percentile_ms, print_table, write_results
from benchmarks.synthetic import FaceModel
from indexer.model import EMBEDDING_DIM
from indexer.store.vectors import FlatL2Index

RADIUS = 0.55
K = 10


def exact(x: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, list[set[int]]]:
    """The exact 10 nearest (row numbers) and the rows within RADIUS, per query."""
    flat = faiss.IndexFlatL2(x.shape[1])
    flat.add(x)
    _, nearest = flat.search(q, K)
    lims, _, rows = flat.range_search(q, RADIUS**2)
    return nearest, [set(rows[lims[i] : lims[i + 1]].tolist()) for i in range(len(q))]


def measure(name: str, search, range_search, q: np.ndarray, nearest: np.ndarray, within: list[set[int]]) -> dict:
    times, recall = [], []
    for i in range(len(q)):
        start = time.perf_counter()
        found = search(q[i : i + 1])
        times.append(time.perf_counter() - start)
        recall.append(len(set(found.tolist()) & set(nearest[i].tolist())) / K)
    range_recall = None
    if range_search is not None:
        shares = []
        for i in range(len(q)):
            if within[i]:
                shares.append(len(range_search(q[i : i + 1]) & within[i]) / len(within[i]))
        range_recall = float(np.mean(shares)) if shares else None
    return {"index": name, "p50_ms": percentile_ms(times, 50), "p99_ms": percentile_ms(times, 99),
            "recall_at_10": float(np.mean(recall)), "range_recall": range_recall}


def run(x: np.ndarray, q: np.ndarray, label: str) -> list[dict]:
    n = len(x)
    rows_ids = np.arange(n, dtype=np.int64)
    faiss.omp_set_num_threads(2)
    nearest, within = exact(x, q)
    print(f"{label}: {n:,} faces, {len(q)} queries, {np.mean([len(w) for w in within]):.1f} faces within "
          f"{RADIUS} per query", flush=True)
    results = []

    def built(name: str, start: float, index) -> dict:
        return {"build_s": round(time.perf_counter() - start, 1),
                "bytes_per_face": round(len(faiss.serialize_index(index)) / n, 1), "name": name}

    faiss.omp_set_num_threads(1)
    flat = faiss.IndexFlatL2(x.shape[1])
    flat.add(x)
    entry = measure("flat float32 (exact)", lambda v: flat.search(v, K)[1][0],
                    lambda v: set(flat.range_search(v, RADIUS**2)[2].tolist()), q, nearest, within)
    results.append({**entry, "build_s": 0.0, "bytes_per_face": 512.0})

    ours = FlatL2Index(EMBEDDING_DIM)
    start = time.perf_counter()
    ours.add(rows_ids, x)
    ours.prepare_search()
    entry = measure("ours: 8-bit prescan + exact re-rank", lambda v: ours.search(v, K)[1][0],
                    lambda v: set(ours.range_search(v, RADIUS**2)[2].tolist()), q, nearest, within)
    results.append({**entry, "build_s": round(time.perf_counter() - start, 1), "bytes_per_face": 512 + 128 + 8.0})

    faiss.omp_set_num_threads(2)
    nlist = int(4 * np.sqrt(n))
    start = time.perf_counter()
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(x.shape[1]), x.shape[1], nlist)
    ivf.cp.max_points_per_centroid = 64  # train on 64 faces a list
    ivf.train(x)
    ivf.add_with_ids(x, rows_ids)
    info = built(f"IVF{nlist},Flat", start, ivf)
    faiss.omp_set_num_threads(1)
    for nprobe in (16, 64, 256):
        ivf.nprobe = nprobe
        entry = measure(f"IVF{nlist},Flat nprobe {nprobe}", lambda v: ivf.search(v, K)[1][0],
                        lambda v: set(ivf.range_search(v, RADIUS**2)[2].tolist()), q, nearest, within)
        results.append({**entry, "build_s": info["build_s"], "bytes_per_face": info["bytes_per_face"]})

    faiss.omp_set_num_threads(2)
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(x.shape[1], 32)
    hnsw.hnsw.efConstruction = 40
    hnsw.add(x)
    info = built("HNSW32,Flat", start, hnsw)
    faiss.omp_set_num_threads(1)
    for ef in (64, 128, 256):
        hnsw.hnsw.efSearch = ef
        entry = measure(f"HNSW32,Flat efSearch {ef}", lambda v: hnsw.search(v, K)[1][0], None, q, nearest, within)
        results.append({**entry, "build_s": info["build_s"], "bytes_per_face": info["bytes_per_face"]})
    for entry in results:
        entry["data"] = label
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="an LFW index to fit the synthetic faces to")
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW DevTrain folder (person labels)")
    parser.add_argument("--faces", type=int, default=1_000_000, help="synthetic collection size")
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    results = []
    if args.data_dir is not None:
        from benchmarks.clustering import load_faces

        faces = load_faces(args.data_dir, args.lfw)
        labelled = faces.person != ""
        model = FaceModel.fit(faces.x[labelled], faces.person[labelled])
        real = faces.x.astype(np.float32)
        order = rng.permutation(len(real))
        held = order[: args.queries]
        results += run(np.ascontiguousarray(real[order[args.queries :]]), np.ascontiguousarray(real[held]),
                       "LFW DevTrain (real)")
        source = "fitted to LFW DevTrain"
    else:
        model = FaceModel.fallback()
        source = "fallback model (no --data-dir)"
    x, _ = model.generate(args.faces + args.queries, seed=1)
    x = x.astype(np.float32)
    pick = rng.permutation(len(x))
    q, x = np.ascontiguousarray(x[pick[: args.queries]]), np.ascontiguousarray(x[pick[args.queries :]])
    results += run(x, q, f"synthetic {len(x):,} ({source})")
    print_table(
        ["data", "index", "build s", "bytes/face", "p50 ms", "p99 ms", "recall@10", "range recall"],
        [[r["data"], r["index"], r["build_s"], r["bytes_per_face"], r["p50_ms"], r["p99_ms"], r["recall_at_10"],
          r["range_recall"] if r["range_recall"] is not None else "-"] for r in results],
        title=f"One query at a time, one thread; range recall at {RADIUS} (Euclidean)",
    )
    write_results("ann", {"faces": args.faces, "queries": args.queries, "radius": RADIUS, "results": results})


if __name__ == "__main__":
    main()
