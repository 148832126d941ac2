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
it (people of the collection, seen again). With ``--faces-per-person N``
every synthetic person is seen N times (a CCTV-like collection of repeat
visitors) instead of LFW's counts. For each index, one query at a time on
one thread (the server's setting):

* build seconds (train + add, 2 threads) and bytes per face (serialised);
* p50 / p99 ms of ``search(x, 10)``;
* recall@10: the share of the exact 10 nearest it returns;
* match recall: of the exact 10 nearest that are the query's own person
  (the answers a user wants), the share it returns;
* range recall and range p50 ms: the share of the faces within the recall
  default radius (0.55, Euclidean) it returns (where the index has a range
  search), and its time.

Indexes: FAISS's flat scan (float32, exact); ours, exact: ``FlatL2Index``
(an 8-bit prescan re-ranked exactly, provably exact, also for range search);
ours, approximate: the same with a generation's approximate index
(``indexer.store.ann``, IVF + 4-bit PQ fast scan, 500 candidates re-ranked
exactly; range search stays exact) reading 1/16, 1/8 and 1/4 of its lists;
IVF-Flat (nlist 4 sqrt(n)) at several nprobe; HNSW-Flat (M 32,
``--hnsw-construction`` efConstruction) at several efSearch.

Run::

    .venv/bin/python -m benchmarks.ann --data-dir DIR [--faces 1000000] [--queries 1000]
        [--faces-per-person N] [--hnsw-construction 40] [--no-real]

Results: ``benchmarks/results/ann.json`` (``ann_N_per_person.json`` with
``--faces-per-person``).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from benchmarks.common import DEFAULT_LFW, percentile_ms, print_table, write_results
from benchmarks.synthetic import FaceModel
from config.settings import IndexSettings
from indexer.model import EMBEDDING_DIM
from indexer.store.ann import ANN_FILE, AnnIndex, AnnPlan
from indexer.store.ann import refresh as refresh_ann
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


class Truth:
    """Exact answers for the queries: the 10 nearest, those of them of the
    query's own person (the true matches), the rows within RADIUS."""

    def __init__(self, x: np.ndarray, q: np.ndarray, person_x: np.ndarray, person_q: np.ndarray) -> None:
        self.nearest, self.within = exact(x, q)
        labelled = person_q != ""
        self.matches = [set(row[(person_x[row] == person_q[i]) & labelled[i]].tolist())
                        for i, row in enumerate(self.nearest)]


def measure(name: str, search, range_search, q: np.ndarray, truth: Truth) -> dict:
    times, recall, matches, found_matches = [], [], 0, 0
    for i in range(len(q)):
        start = time.perf_counter()
        found = search(q[i : i + 1])
        times.append(time.perf_counter() - start)
        found = set(found.tolist())
        recall.append(len(found & set(truth.nearest[i].tolist())) / K)
        matches += len(truth.matches[i])
        found_matches += len(found & truth.matches[i])
    range_recall = range_ms = None
    if range_search is not None:
        shares, range_times = [], []
        for i in range(len(q)):
            start = time.perf_counter()
            hits = range_search(q[i : i + 1])
            range_times.append(time.perf_counter() - start)
            if truth.within[i]:
                shares.append(len(hits & truth.within[i]) / len(truth.within[i]))
        range_recall = float(np.mean(shares)) if shares else None
        range_ms = percentile_ms(range_times, 50)
    return {"index": name, "p50_ms": percentile_ms(times, 50), "p99_ms": percentile_ms(times, 99),
            "recall_at_10": float(np.mean(recall)), "match_recall": found_matches / matches if matches else None,
            "range_recall": range_recall, "range_p50_ms": range_ms}


def run(x: np.ndarray, q: np.ndarray, person_x: np.ndarray, person_q: np.ndarray, label: str,
        hnsw_construction: int) -> list[dict]:
    n = len(x)
    rows_ids = np.arange(n, dtype=np.int64)
    faiss.omp_set_num_threads(2)
    truth = Truth(x, q, person_x, person_q)
    print(f"{label}: {n:,} faces, {len(q)} queries, {np.mean([len(w) for w in truth.within]):.1f} faces within "
          f"{RADIUS} per query, {np.mean([len(m) for m in truth.matches]):.2f} true matches in the exact 10",
          flush=True)
    results = []

    def built(name: str, start: float, index) -> dict:
        return {"build_s": round(time.perf_counter() - start, 1),
                "bytes_per_face": round(len(faiss.serialize_index(index)) / n, 1), "name": name}

    faiss.omp_set_num_threads(1)
    flat = faiss.IndexFlatL2(x.shape[1])
    flat.add(x)
    entry = measure("flat float32 (exact)", lambda v: flat.search(v, K)[1][0],
                    lambda v: set(flat.range_search(v, RADIUS**2)[2].tolist()), q, truth)
    results.append({**entry, "build_s": 0.0, "bytes_per_face": 512.0})

    ours = FlatL2Index(EMBEDDING_DIM)
    start = time.perf_counter()
    ours.add(rows_ids, x)
    ours.prepare_search()
    entry = measure("ours, exact: 8-bit prescan + exact re-rank", lambda v: ours.search(v, K)[1][0],
                    lambda v: set(ours.range_search(v, RADIUS**2)[2].tolist()), q, truth)
    results.append({**entry, "build_s": round(time.perf_counter() - start, 1), "bytes_per_face": 512 + 128 + 8.0})

    # Ours, approximate: what a generation's faces.ann.faiss gives a server
    # (index.search = "approximate"); range searches stay on the exact path.
    faiss.omp_set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        entry_ann = refresh_ann(Path(tmp), rows_ids, x, AnnPlan(min_faces=1), None)
        build_s = round(time.perf_counter() - start, 1)
        ann_bytes = (Path(tmp) / ANN_FILE).stat().st_size / n
        faiss.omp_set_num_threads(1)
        nlist = int(entry_ann["factory"].split(",")[0][3:])
        for nprobe in (nlist // 16, nlist // 8, nlist // 4):
            ours.use_ann(AnnIndex.load(Path(tmp), nprobe), IndexSettings().candidates)
            entry = measure(f"ours, approximate: {ours.search_description[len('approximate: '):]}",
                            lambda v: ours.search(v, K)[1][0],
                            lambda v: set(ours.range_search(v, RADIUS**2)[2].tolist()), q, truth)
            results.append({**entry, "build_s": build_s, "bytes_per_face": round(512 + 128 + 8 + ann_bytes, 1)})
        ours.use_ann(None, 0)

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
                        lambda v: set(ivf.range_search(v, RADIUS**2)[2].tolist()), q, truth)
        results.append({**entry, "build_s": info["build_s"], "bytes_per_face": info["bytes_per_face"]})

    faiss.omp_set_num_threads(2)
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(x.shape[1], 32)
    hnsw.hnsw.efConstruction = hnsw_construction
    hnsw.add(x)
    info = built("HNSW32,Flat", start, hnsw)
    faiss.omp_set_num_threads(1)
    for ef in (64, 128, 256):
        hnsw.hnsw.efSearch = ef
        entry = measure(f"HNSW32,Flat efConstruction {hnsw_construction} efSearch {ef}",
                        lambda v: hnsw.search(v, K)[1][0], None, q, truth)
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
    parser.add_argument("--faces-per-person", type=int, default=0,
                        help="every synthetic person seen this many times (CCTV-like); 0: LFW's photo counts")
    parser.add_argument("--hnsw-construction", type=int, default=40, help="HNSW efConstruction")
    parser.add_argument("--no-real", action="store_true", help="skip the run on the real LFW embeddings")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    results = []
    if args.data_dir is not None:
        from benchmarks.clustering import load_faces

        faces = load_faces(args.data_dir, args.lfw)
        labelled = faces.person != ""
        model = FaceModel.fit(faces.x[labelled], faces.person[labelled])
        if not args.no_real:
            real = faces.x.astype(np.float32)
            order = rng.permutation(len(real))
            held, kept = order[: args.queries], order[args.queries :]
            results += run(np.ascontiguousarray(real[kept]), np.ascontiguousarray(real[held]), faces.person[kept],
                           faces.person[held], "LFW DevTrain (real)", args.hnsw_construction)
        source = "fitted to LFW DevTrain"
    else:
        model = FaceModel.fallback()
        source = "fallback model (no --data-dir)"
    if args.faces_per_person:
        model = dataclasses.replace(model, sizes=np.array([args.faces_per_person]))
        source += f", {args.faces_per_person} faces a person"
    x, person = model.generate(args.faces + args.queries, seed=1)
    x = x.astype(np.float32)
    person = person.astype(str)
    pick = rng.permutation(len(x))
    held, kept = pick[: args.queries], pick[args.queries :]
    results += run(np.ascontiguousarray(x[kept]), np.ascontiguousarray(x[held]), person[kept], person[held],
                   f"synthetic {len(kept):,} ({source})", args.hnsw_construction)
    print_table(
        ["data", "index", "build s", "bytes/face", "p50 ms", "p99 ms", "recall@10", "match recall", "range recall",
         "range p50 ms"],
        [[r["data"], r["index"], r["build_s"], r["bytes_per_face"], r["p50_ms"], r["p99_ms"], r["recall_at_10"],
          _or_dash(r["match_recall"]), _or_dash(r["range_recall"]), _or_dash(r["range_p50_ms"])] for r in results],
        title=f"One query at a time, one thread; range search at {RADIUS} (Euclidean)",
    )
    name = f"ann_{args.faces_per_person}_per_person" if args.faces_per_person else "ann"
    write_results(name, {"faces": args.faces, "queries": args.queries, "radius": RADIUS,
                         "faces_per_person": args.faces_per_person or None,
                         "hnsw_construction": args.hnsw_construction, "results": results})


def _or_dash(value: float | None) -> float | str:
    return "-" if value is None else value


if __name__ == "__main__":
    main()
