"""Recall search quality on LFW DevTrain: recall and precision over the
radius, one probe against several, plain against query expansion.

Over the index of ``benchmarks.indexing`` (every face of 9,525 photos; each
photo's face nearest its centre labelled with the photo's person, the other
faces count as other people). For each labelled face of a person with 2+
labelled faces, used as the probe (and left out of the results):

* recall: the share of that person's other labelled faces returned;
* precision: the share of the returned faces that are that person (1 when
  nothing is returned);

both averaged over the probes (each probe counts once), and precision also
pooled (all correct hits over all returned faces, so probes that return many
faces weigh more), at each radius, for these searches, all
through ``application.recall`` (the endpoint's own code) on the real store:

* ``one probe``: the contract's search (every face within the radius);
* ``one probe, expanded``: plus the mean of the probe and its faces within
  ``recall.expand_distance`` (``expand=true``);
* ``two probes`` (people with 3+ faces: a second photo of the person, also
  left out of the results): ``fusion=any`` and ``fusion=mean``.

Target at the default radius: recall >= 0.95 with precision >= 0.80.

Run::

    .venv/bin/python -m benchmarks.recall --data-dir DIR

Results: ``benchmarks/results/recall.json`` and ``recall.png``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from application.recall import RecallFilters, recall
from benchmarks.clustering import load_faces
from benchmarks.common import DEFAULT_LFW, LFW_HINT, RESULTS_DIR, print_table, require_dir, verdict, write_results
from benchmarks.identification import ensure_index
from config.settings import load_settings
from indexer.store import EmbeddedStore

RADII = [round(0.40 + 0.0125 * i, 4) for i in range(21)]  # 0.40 .. 0.65


def curves(store: EmbeddedStore, x: np.ndarray, ids: np.ndarray, person: np.ndarray, expand_distance: float) -> dict:
    """Mean recall and precision per radius for each search."""
    labelled = person != ""
    names, code = np.unique(person[labelled], return_inverse=True)
    who = np.full(len(x), -1)
    who[labelled] = code
    count = np.bincount(code)
    row_of = {int(face_id): row for row, face_id in enumerate(ids.tolist())}
    rng = np.random.default_rng(0)
    searches = {"one probe": [], "one probe, expanded": [], "two probes, any": [], "two probes, mean": []}
    probes = np.flatnonzero(labelled & (count[np.maximum(who, 0)] >= 2))
    top = max(RADII)
    for row in probes:
        mates = np.flatnonzero(who == who[row])
        others = mates[mates != row]
        searches["one probe"].append(_score(store, x[row][None], top, "any", None, row_of, who, row, others, {row}))
        searches["one probe, expanded"].append(
            _score(store, x[row][None], top, "any", expand_distance, row_of, who, row, others, {row}))
        if len(others) >= 2:
            second = int(rng.choice(others))
            rest = others[others != second]
            pair = x[[row, second]]
            for fusion in ("any", "mean"):
                searches[f"two probes, {fusion}"].append(
                    _score(store, pair, top, fusion, None, row_of, who, row, rest, {row, second}))
    out = {}
    for name, rows in searches.items():
        table = np.array(rows, dtype=np.float64)  # (probes, radii, [hits, returned, wanted])
        hits, returned, wanted = table[:, :, 0], table[:, :, 1], table[:, :, 2]
        precision = np.divide(hits, returned, out=np.ones_like(hits), where=returned > 0)
        out[name] = {"probes": len(rows), "recall": (hits / wanted).mean(axis=0).tolist(),
                     "precision": precision.mean(axis=0).tolist(),
                     "precision_pooled": (hits.sum(axis=0) / np.maximum(returned.sum(axis=0), 1)).tolist()}
    return out


def best_radius(curve: dict, min_recall: float = 0.95) -> tuple[float, float, float] | None:
    """(radius, recall, precision) at the smallest radius in RADII whose mean
    recall reaches ``min_recall``; None when none does."""
    for radius, r, p in zip(RADII, curve["recall"], curve["precision"]):
        if r >= min_recall:
            return radius, r, p
    return None


def _score(store, probes, top, fusion, expand, row_of, who, row, others, excluded) -> list[tuple[int, int, int]]:
    """(correct hits, returned faces, faces wanted) at each radius for one
    search, from one recall call at the largest radius (hits at smaller radii
    are its prefix)."""
    result = recall(store, probes, max_distance=top, limit=10**9, offset=0, filters=RecallFilters(),
                    group_by=None, fusion=fusion, max_hits=10**9, expand_distance=expand)
    rows = np.array([row_of[m.face_id] for m in result.matches], dtype=np.int64)
    dist = np.array([m.distance for m in result.matches])
    keep = ~np.isin(rows, list(excluded))
    rows, dist = rows[keep], dist[keep]
    same = who[rows] == who[row]
    scores = []
    for radius in RADII:
        inside = dist <= radius
        hits = int((inside & same).sum())
        returned = int(inside.sum())
        scores.append((hits, returned, len(others)))
    return scores


def chart(results: dict, default_radius: float, path: Path) -> None:
    """Precision against recall, one line per search, the default radius marked."""
    width, height, pad = 720, 520, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    colours = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]

    def xy(recall_value: float, precision_value: float) -> tuple[float, float]:
        return pad + (recall_value - 0.5) / 0.5 * (width - 2 * pad), height - pad - precision_value * (height - 2 * pad)

    draw.rectangle([pad, pad, width - pad, height - pad], outline="black")
    for tick in range(6):
        r = 0.5 + tick * 0.1
        px, _ = xy(r, 0)
        draw.text((px - 10, height - pad + 8), f"{r:.1f}", fill="black")
        _, py = xy(0.5, tick * 0.2)
        draw.text((pad - 30, py - 6), f"{tick * 0.2:.1f}", fill="black")
    draw.text((width / 2 - 20, height - 25), "recall", fill="black")
    draw.text((10, 20), "precision vs recall over the radius (0.40-0.65); dot: default radius", fill="black")
    marker = RADII.index(min(RADII, key=lambda r: abs(r - default_radius)))
    for i, (name, curve) in enumerate(results.items()):
        points = [xy(r, p) for r, p in zip(curve["recall"], curve["precision"]) if r >= 0.5]
        colour = colours[i % len(colours)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        mx, my = xy(curve["recall"][marker], curve["precision"][marker])
        draw.ellipse([mx - 4, my - 4, mx + 4, my + 4], fill=colour)
        draw.text((pad + 10, pad + 10 + 16 * i), name, fill=colour)
    image.save(path, format="PNG")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW DevTrain folder")
    parser.add_argument("--data-dir", type=Path, default=None, help="LFW index to reuse or fill")
    parser.add_argument("--workers", type=int, default=2, help="indexing worker processes")
    args = parser.parse_args()
    lfw = require_dir(args.lfw, "the LFW DevTrain photos", LFW_HINT)
    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="facesearch-recall-") as tmp:
        data_dir = (args.data_dir or Path(tmp) / "data").resolve()
        ensure_index(lfw, data_dir, args.workers)
        faces = load_faces(data_dir, lfw)
        store = EmbeddedStore.open_published(data_dir)
        try:
            ids, _, _ = store.all_embeddings()
            results = curves(store, faces.x, ids, faces.person, settings.recall.expand_distance)
        finally:
            store.close()
    default = settings.recall.max_distance
    at = RADII.index(min(RADII, key=lambda r: abs(r - default)))
    rows = []
    for name, curve in results.items():
        rows.append([name, curve["probes"]]
                    + [f"{r:.3f} / {p:.3f}" for r, p in zip(curve["recall"], curve["precision"])])
    print_table(["search", "probes"] + [f"r={r}" for r in RADII], rows,
                title="Recall / precision per radius (Euclidean), mean over probes, LFW DevTrain")
    rows = [[name] + [f"{p:.3f}" for p in curve["precision_pooled"]] for name, curve in results.items()]
    print_table(["search"] + [f"r={r}" for r in RADII], rows, title="Pooled precision per radius")
    rows = []
    for name, curve in results.items():
        best = best_radius(curve)
        rows.append([name] + ([f"{best[0]}", f"{best[1]:.3f}", f"{best[2]:.3f}"] if best else ["-", "-", "-"]))
    print_table(["search", "radius", "recall", "precision"], rows,
                title="Smallest radius with mean recall >= 0.95")
    plain = results["one probe"]
    ok = plain["recall"][at] >= 0.95 and plain["precision"][at] >= 0.80
    print(f"\ndefault radius {default}: one probe recall {plain['recall'][at]:.3f}, precision "
          f"{plain['precision'][at]:.3f} (target recall >= 0.95 with precision >= 0.80: {verdict(ok)})")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    chart(results, default, RESULTS_DIR / "recall.png")
    write_results("recall", {"lfw": lfw, "radii": RADII, "default_radius": default, "searches": results,
                             "recall_095": {name: best_radius(curve) for name, curve in results.items()}})


if __name__ == "__main__":
    main()
