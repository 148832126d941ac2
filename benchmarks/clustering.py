"""Clustering quality on LFW DevTrain and clustering time at 100k faces.

Four parts, side by side in one run:

1. **All of LFW DevTrain** (every face of 9,525 photos clustered; each photo's
   face nearest the image centre is labelled with the photo's person, the
   others are clustered but not scored): pairwise precision/recall/F (over
   pairs of faces put together) and BCubed precision/recall/F for
   ``threshold`` and ``kmeans`` (automatic k and the true k), with the
   default settings. Strangers count as clusters of one.
2. **Robustness**: the threshold method's pairwise F as each of its
   parameters moves, beside average-linkage agglomerative clustering (scipy,
   all pairs) over its distance threshold.
3. **The family scenario** of the seed experiment: the 10 people with the
   most photos are the family, plus 200 people seen once as strangers
   (drawn at random, ``--draws`` times). Stranger flagging precision/recall/F
   (a flagged face of someone seen once is right) and pairwise F among the
   family's faces (a flagged family face is a cluster of one), for automatic
   k-means, k-means with the true k (10), threshold, and k-means with the k
   at the elbow of the cost curve (kneedle); then the grid of the two
   stranger distances the defaults were chosen from.
4. **Scale**: synthetic faces shaped like LFW's (``benchmarks/synthetic.py``)
   at 25k, 50k and 100k faces, seconds per method.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.clustering [--data-dir DIR] [--draws 5] [--scale 25000,50000,100000]

``--data-dir`` reuses an LFW index (``benchmarks.indexing --limit 0 --keep
DIR`` leaves one); without it LFW is indexed into a temporary folder first
(about 9 minutes with 2 workers). Results: ``benchmarks/results/clustering.json``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse import coo_matrix
from scipy.spatial.distance import pdist

from benchmarks.common import DEFAULT_LFW, LFW_HINT, print_table, require_dir, write_results
from benchmarks.identification import centre_distance, ensure_index
from benchmarks.synthetic import FaceModel, distance_summary
from config.settings import ClusteringSettings, load_settings
from indexer.clustering import ClusterParams, cluster_faces, cost_curve
from indexer.store import EmbeddedStore

FAMILY_SIZE = 10
STRANGERS = 200


@dataclass
class Faces:
    """Every indexed face; ``person`` is the photo's person for the face
    nearest the image centre, "" for the other faces of a photo."""

    x: np.ndarray
    photo: np.ndarray
    person: np.ndarray

    @property
    def labelled(self) -> np.ndarray:
        return self.person != ""


def load_faces(data_dir: Path, lfw: Path) -> Faces:
    store = EmbeddedStore.open_published(data_dir)
    try:
        ids, photos, x = store.all_embeddings()
        records = store.faces(ids.tolist())
    finally:
        store.close()
    person = np.full(len(ids), "", dtype=object)
    best: dict[int, tuple[float, int]] = {}
    root = str(lfw)
    for row, (face_id, photo) in enumerate(zip(ids.tolist(), photos.tolist())):
        record = records[face_id]
        if not record.path.startswith(root):
            continue
        offset = centre_distance(record)
        if photo not in best or offset < best[photo][0]:
            best[photo] = (offset, row)
    for _, row in best.values():
        person[row] = Path(records[int(ids[row])].path).parent.name
    return Faces(x=x, photo=photos, person=person.astype(str))


# -- metrics -----------------------------------------------------------------


def _codes(truth: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes; every -1 in ``predicted`` becomes a cluster of its own."""
    predicted = np.asarray(predicted).copy()
    alone = predicted < 0
    predicted[alone] = predicted.max(initial=0) + 1 + np.arange(alone.sum())
    return np.unique(truth, return_inverse=True)[1], np.unique(predicted, return_inverse=True)[1]


def pairwise(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F over the pairs of items put in one cluster."""
    t, p = _codes(truth, predicted)
    table = coo_matrix((np.ones(len(t)), (t, p))).tocsr()
    together = float((table.data * (table.data - 1) / 2).sum())
    truth_pairs = float((np.bincount(t) * (np.bincount(t) - 1) / 2).sum())
    predicted_pairs = float((np.bincount(p) * (np.bincount(p) - 1) / 2).sum())
    precision = together / predicted_pairs if predicted_pairs else 1.0
    recall = together / truth_pairs if truth_pairs else 1.0
    return precision, recall, _f(precision, recall)


def bcubed(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    """BCubed precision, recall and F (averaged over items)."""
    t, p = _codes(truth, predicted)
    table = coo_matrix((np.ones(len(t)), (t, p))).tocsr()
    table.sum_duplicates()
    cells = table.tocoo()
    precision = float((cells.data**2 / np.bincount(p)[cells.col]).sum() / len(t))
    recall = float((cells.data**2 / np.bincount(t)[cells.row]).sum() / len(t))
    return precision, recall, _f(precision, recall)


def flagging(is_stranger: np.ndarray, flagged: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F of stranger flagging."""
    hits = float((is_stranger & flagged).sum())
    precision = hits / flagged.sum() if flagged.sum() else 1.0
    recall = hits / is_stranger.sum() if is_stranger.sum() else 1.0
    return precision, recall, _f(precision, recall)


def _f(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def kneedle(ks: list[int], costs: list[float]) -> int:
    """The k at the elbow of a falling cost curve: the point farthest below
    the straight line from its first to its last point (both normalised)."""
    k = np.asarray(ks, dtype=np.float64)
    c = np.asarray(costs, dtype=np.float64)
    kn = (k - k[0]) / (k[-1] - k[0])
    cn = (c - c.min()) / (c.max() - c.min())
    return int(k[np.argmax((1 - kn) - cn)])


# -- parts -------------------------------------------------------------------


def score(faces: Faces, labels: np.ndarray) -> dict:
    m = faces.labelled
    p, r, f = pairwise(faces.person[m], labels[m])
    bp, br, bf = bcubed(faces.person[m], labels[m])
    return {"pairwise_precision": p, "pairwise_recall": r, "pairwise_f": f,
            "bcubed_precision": bp, "bcubed_recall": br, "bcubed_f": bf}


def whole_lfw(faces: Faces, settings: ClusteringSettings) -> list[dict]:
    people = len(np.unique(faces.person[faces.labelled]))
    runs = [("threshold", ClusterParams(method="threshold")),
            ("kmeans, automatic k", ClusterParams()),
            (f"kmeans, true k ({people:,})", ClusterParams(k=people))]
    out = []
    for name, params in runs:
        started = time.perf_counter()
        result = cluster_faces(faces.x, faces.photo, params, settings)
        out.append({"method": name, "k": result.k, "strangers": result.stranger_count,
                    "seconds": time.perf_counter() - started, **score(faces, result.labels)})
    return out


def robustness(faces: Faces, settings: ClusteringSettings) -> dict:
    """Pairwise F of the threshold method as each parameter moves from the
    default, and of average linkage over its threshold."""
    def f_with(**change) -> float:
        s = settings.model_copy(update=change)
        params = ClusterParams(method="threshold", threshold=change.get("threshold"))
        return score(faces, cluster_faces(faces.x, faces.photo, params, s).labels)["pairwise_f"]

    sweeps = {
        "min_cluster_size": [2, 3, 4, 5],
        "min_samples": [1, 2, 3, 4],
        "neighbour_distance": [0.4, 0.45, 0.5, 0.55, 0.6],
        "neighbours": [32, 64, 128],
        "max_cluster_radius": [0.35, 0.4, 0.45, 0.5, 0.6],
        "threshold": [0.5, 0.55, 0.6, 0.7],
    }
    ours = {name: [{"value": v, "pairwise_f": f_with(**{name: v})} for v in values] for name, values in sweeps.items()}
    m = faces.labelled
    tree = linkage(pdist(faces.x[m].astype(np.float64)), "average")
    average = []
    for t in [0.45, 0.5, 0.55, 0.6, 0.65]:
        labels = fcluster(tree, t, "distance")
        average.append({"value": t, "pairwise_f": pairwise(faces.person[m], labels)[2],
                        "bcubed_f": bcubed(faces.person[m], labels)[2]})
    return {"threshold_method": ours, "average_linkage": average}


def family_draws(faces: Faces, draws: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each draw: (rows, is_stranger, person) of the scenario's faces."""
    m = np.flatnonzero(faces.labelled)
    names, counts = np.unique(faces.person[m], return_counts=True)
    family = set(names[np.argsort(-counts, kind="stable")[:FAMILY_SIZE]])
    once = names[counts == 1]
    out = []
    for draw in range(draws):
        strangers = set(np.random.default_rng(draw).choice(once, STRANGERS, replace=False))
        rows = np.array([r for r in m if faces.person[r] in family or faces.person[r] in strangers])
        out.append((rows, np.array([faces.person[r] in strangers for r in rows]), faces.person[rows]))
    return out


def family_scenario(faces: Faces, settings: ClusteringSettings, draws: int) -> dict:
    scenarios = family_draws(faces, draws)
    methods: dict[str, list[dict]] = {}
    elbows = []
    for rows, is_stranger, person in scenarios:
        x, photo = faces.x[rows], faces.photo[rows]
        ks = list(range(1, 41))
        curve = cost_curve(x, ks, settings)
        elbow = kneedle(ks, [c for _, c in curve])
        elbows.append(elbow)
        for name, params in [("kmeans, automatic k", ClusterParams()),
                             ("kmeans, true k (10)", ClusterParams(k=FAMILY_SIZE)),
                             ("kmeans, k at the elbow", ClusterParams(k=elbow)),
                             ("threshold", ClusterParams(method="threshold"))]:
            result = cluster_faces(x, photo, params, settings)
            flagged = result.labels < 0
            sp, sr, sf = flagging(is_stranger, flagged)
            fam = ~is_stranger
            methods.setdefault(name, []).append({
                "k": result.k, "stranger_precision": sp, "stranger_recall": sr, "stranger_f": sf,
                "family_pairwise_f": pairwise(person[fam], result.labels[fam])[2]})
    summary = []
    for name, runs in methods.items():
        row = {"method": name}
        for key in ("k", "stranger_precision", "stranger_recall", "stranger_f", "family_pairwise_f"):
            values = np.array([r[key] for r in runs], dtype=np.float64)
            row[key] = float(values.mean())
            row[key + "_min"] = float(values.min())
        summary.append(row)
    grid = []
    for centre in [0.45, 0.5, 0.55, 0.6]:
        for neighbour in [0.4, 0.45, 0.5, 0.55]:
            fs, fams = [], []
            for rows, is_stranger, person in scenarios:
                params = ClusterParams(stranger_distance=centre, neighbour_distance=neighbour)
                result = cluster_faces(faces.x[rows], faces.photo[rows], params, settings)
                fs.append(flagging(is_stranger, result.labels < 0)[2])
                fams.append(pairwise(person[~is_stranger], result.labels[~is_stranger])[2])
            grid.append({"stranger_distance": centre, "neighbour_distance": neighbour,
                         "stranger_f": float(np.mean(fs)), "stranger_f_min": float(np.min(fs)),
                         "family_pairwise_f": float(np.mean(fams))})
    return {"draws": draws, "faces": int(np.mean([len(r) for r, _, _ in scenarios])), "elbow_k": elbows,
            "methods": summary, "stranger_distance_grid": grid}


def scale(faces: Faces, sizes: list[int], settings: ClusteringSettings) -> dict:
    m = faces.labelled
    model = FaceModel.fit(faces.x[m], faces.person[m])
    rows = []
    stats = None
    for n in sizes:
        x, person = model.generate(n, seed=n)
        if stats is None:
            stats = {"synthetic": distance_summary(x, person),
                     "lfw": distance_summary(faces.x[m], np.unique(faces.person[m], return_inverse=True)[1])}
        photo = np.arange(n)
        for method in ("threshold", "kmeans"):
            started = time.perf_counter()
            result = cluster_faces(x, photo, ClusterParams(method=method), settings)
            seconds = time.perf_counter() - started
            rows.append({"faces": n, "method": method, "seconds": seconds, "k": result.k,
                         "strangers": result.stranger_count, "pairwise_f": pairwise(person, result.labels)[2]})
    return {"runs": rows, "distance_statistics": stats}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW DevTrain folder (Person/Person_NNNN.jpg)")
    parser.add_argument("--data-dir", type=Path, default=None, help="LFW index to reuse or fill")
    parser.add_argument("--workers", type=int, default=2, help="indexing worker processes")
    parser.add_argument("--draws", type=int, default=5, help="random draws of the family scenario's strangers")
    parser.add_argument("--scale", default="25000,50000,100000", help="synthetic sizes, comma-separated ('' = skip)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    lfw = require_dir(args.lfw, "the LFW DevTrain photos", LFW_HINT)
    settings = load_settings().clustering
    with tempfile.TemporaryDirectory(prefix="facesearch-cluster-") as tmp:
        data_dir = (args.data_dir or Path(tmp) / "data").resolve()
        print(f"index folder: {data_dir}")
        ensure_index(lfw, data_dir, args.workers)
        faces = load_faces(data_dir, lfw)
    print(f"{len(faces.x):,} faces, {faces.labelled.sum():,} labelled, "
          f"{len(np.unique(faces.person[faces.labelled])):,} people")

    whole = whole_lfw(faces, settings)
    print_table(["method", "k", "strangers", "pair P", "pair R", "pair F", "BCubed F", "s"],
                [[r["method"], r["k"], r["strangers"], r["pairwise_precision"], r["pairwise_recall"],
                  r["pairwise_f"], r["bcubed_f"], r["seconds"]] for r in whole],
                title="All of LFW DevTrain, default settings (target: threshold pairwise F >= 0.95)")

    robust = robustness(faces, settings)
    rows = [[f"threshold method, {name}", ", ".join(f"{p['value']}: {p['pairwise_f']:.3f}" for p in points)]
            for name, points in robust["threshold_method"].items()]
    rows.append(["average linkage, threshold",
                 ", ".join(f"{p['value']}: {p['pairwise_f']:.3f}" for p in robust["average_linkage"])])
    print_table(["parameter", "pairwise F at each value"], rows, title="Robustness on all of LFW DevTrain")

    family = family_scenario(faces, settings, args.draws)
    print_table(["method", "k", "stranger P", "stranger R", "stranger F (min)", "family pair F (min)"],
                [[r["method"], r["k"], r["stranger_precision"], r["stranger_recall"],
                  f"{r['stranger_f']:.3f} ({r['stranger_f_min']:.3f})",
                  f"{r['family_pairwise_f']:.3f} ({r['family_pairwise_f_min']:.3f})"] for r in family["methods"]],
                title=f"Family scenario: 10 people + 200 seen once, mean of {args.draws} draws "
                      f"(targets, automatic k-means: family F >= 0.98, stranger F >= 0.98); "
                      f"elbow k: {family['elbow_k']}")
    print_table(["stranger_distance", "neighbour_distance", "stranger F (min)", "family pair F"],
                [[g["stranger_distance"], g["neighbour_distance"], f"{g['stranger_f']:.3f} ({g['stranger_f_min']:.3f})",
                  g["family_pairwise_f"]] for g in family["stranger_distance_grid"]],
                title="Automatic k-means: stranger flagging over its two distances")

    sizes = [int(s) for s in args.scale.split(",") if s.strip()]
    scaled = scale(faces, sizes, settings) if sizes else {"runs": []}
    if sizes:
        print_table(["faces", "method", "seconds", "k", "strangers", "pairwise F"],
                    [[r["faces"], r["method"], r["seconds"], r["k"], r["strangers"], r["pairwise_f"]]
                     for r in scaled["runs"]],
                    title="Synthetic faces shaped like LFW's (target: 100k faces in <= 30 s, both methods)")
    write_results("clustering", {"lfw": lfw, "faces": len(faces.x), "labelled": int(faces.labelled.sum()),
                                 "settings": settings.model_dump(), "whole_lfw": whole, "robustness": robust,
                                 "family": family, "scale": scaled})


if __name__ == "__main__":
    main()
