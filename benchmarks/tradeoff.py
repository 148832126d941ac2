"""How well the precision/recall estimate (``application.tradeoff``) knows
the truth: on LFW DevTrain, 20% of each person's faces named, the estimate
from the named faces against the true precision and recall of a search
within each threshold.

The index (``--data-dir``: an index of LFW DevTrain, e.g. the one
``benchmarks.identification --data-dir DIR`` keeps) holds every face found,
bystanders included. The labelled face of a photo is the one nearest its
centre (LFW's rule); its person the folder's name.

- **Truth**, pooled over every labelled face of a person with 2+ photos as
  a query against the whole index: recall(t) = same-person faces within t
  / same-person faces; precision(t) = same-person faces within t / all
  faces within t (bystanders count as others).
- **Estimate**: ``max(1, round(0.2 m))`` of each such person's m faces
  named (a draw per seed); recognition's rule (the settings' defaults)
  then attributes the rest it is sure of, as after an index run;
  ``application.tradeoff.estimate`` from the named faces, who each face
  of the index is attributed to, and the index (every face as the sample:
  the service samples 5,000).

Reported per threshold: both, and the absolute errors; the largest error
over 0.30-0.80 for each of ``--seeds`` draws.

Recognition's trade (``application.recognition_trade``), for the first
draw: the rule scaled stricter or looser, estimated by holding out folds of
the named faces, against what it truly does to the faces not named (found:
share of them named rightly, of people who have a named face; right: share
of the names given that are right; strangers named: share of the faces of
people with no named face that get a name).

``--write-curve`` also writes
the truth with every label known as the shipped fallback curve
(``application/data/lfw_curve.json``).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.tradeoff --data-dir DIR [--seeds 3] [--named 0.2] [--write-curve]

Results: ``benchmarks/results/tradeoff.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import faiss
import numpy as np

from application.recognition_trade import FACTORS, held_out, scaled
from application.tradeoff import LFW_CURVE, THRESHOLDS, estimate
from benchmarks.common import DEFAULT_LFW, LFW_HINT, now, print_table, require_dir, write_results
from benchmarks.identification import labelled_faces
from config.settings import RecognitionSettings
from indexer.people.recognition import suggest
from indexer.store import EmbeddedStore

SHOWN = (0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70)


def all_embeddings(data_dir: Path) -> np.ndarray:
    store = EmbeddedStore.open_published(data_dir)
    try:
        return store.all_embeddings()[2]
    finally:
        store.close()


def rows_in_index(x_labelled: np.ndarray, x_all: np.ndarray) -> np.ndarray:
    """The row of ``x_all`` holding each labelled face (the same embedding)."""
    row_of = {v.tobytes(): i for i, v in enumerate(x_all)}
    return np.array([row_of[v.astype(np.float32).tobytes()] for v in x_labelled], dtype=np.int64)


def truth(x_labelled: np.ndarray, persons: np.ndarray, x_all: np.ndarray,
          thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled (precision, recall) of searches by every labelled face of a
    person with 2+ labelled faces, against every face of the index."""
    counts = np.bincount(persons)
    queries = np.flatnonzero(counts[persons] >= 2)
    labelled = np.ascontiguousarray(x_labelled, dtype=np.float32)
    found_same = np.zeros(len(thresholds))
    found_all = np.zeros(len(thresholds))
    same_total = 0
    for lo in range(0, len(queries), 512):
        rows = queries[lo : lo + 512]
        q = labelled[rows]
        d_all = np.sqrt(np.maximum(faiss.pairwise_distances(q, x_all), 0.0))
        d_lab = np.sqrt(np.maximum(faiss.pairwise_distances(q, labelled), 0.0))
        d_lab[np.arange(len(rows)), rows] = np.inf  # not itself
        same = np.sort(np.where(persons[rows, None] == persons[None, :], d_lab, np.inf), axis=None)
        found_same += np.searchsorted(same, thresholds, side="right")
        # Every face within t, less the query itself (at distance 0 in the index).
        found_all += np.searchsorted(np.sort(d_all, axis=None), thresholds, side="right") - len(rows)
        same_total += int((counts[persons[rows]] - 1).sum())
    return found_same / np.maximum(found_all, 1), found_same / max(same_total, 1)


def draw_named(persons: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(named, the rest): ``max(1, round(share m))`` of each person's m
    labelled faces with 2+ of them, drawn with ``seed``; row numbers."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(persons)
    named = np.array(sorted(i for person in np.flatnonzero(counts >= 2)
                            for i in rng.choice(np.flatnonzero(persons == person),
                                                max(1, round(share * counts[person])), replace=False)))
    return named, np.setdiff1d(np.arange(len(persons)), named)


def named_estimate(x: np.ndarray, persons: np.ndarray, x_all: np.ndarray, where: np.ndarray, share: float,
                   seed: int, thresholds: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, dict]:
    """Name ``share`` of each person's labelled faces, let recognition
    attribute the rest it is sure of, and estimate from what is named
    (``where``: each labelled face's row in ``x_all``)."""
    named_rows, rest = draw_named(persons, share, seed)
    found = suggest(x[rest], x[named_rows], persons[named_rows], RecognitionSettings())
    owner = np.full(len(x_all), -1, dtype=np.int64)  # who each face of the index is attributed to
    owner[where[named_rows]] = persons[named_rows]
    sure = found.person >= 0
    owner[where[rest[sure]]] = found.person[sure]
    sizes = {int(p): int(n) for p, n in zip(*np.unique(owner[owner >= 0], return_counts=True))}
    precision, recall, same_pairs = estimate(x[named_rows], persons[named_rows], sizes, x_all, owner, len(x_all),
                                             thresholds)
    wrong = int((found.person[sure] != persons[rest][sure]).sum())
    return precision, recall, {"named_faces": len(named_rows), "people": len(np.unique(persons[named_rows])),
                               "same_pairs": same_pairs, "suggested": int(sure.sum()), "suggested_wrong": wrong}


def recognition_rows(x: np.ndarray, persons: np.ndarray, share: float, seed: int = 0) -> list[dict]:
    """The rule at each factor: held-out estimate over the named faces
    against what it does to the faces not named."""
    named, rest = draw_named(persons, share, seed)
    known = np.isin(persons[rest], persons[named])
    rows = []
    for factor in FACTORS:
        rule = scaled(RecognitionSettings(), factor)
        found_est, right_est, strangers_est = held_out(x[named], persons[named], rule)
        found = suggest(x[rest], x[named], persons[named], rule).person
        right = int((found[known] == persons[rest][known]).sum())
        rows.append({"factor": factor, "found_estimated": found_est, "found_true": right / int(known.sum()),
                     "right_estimated": right_est, "right_true": right / max(int((found >= 0).sum()), 1),
                     "strangers_estimated": strangers_est, "strangers_true": float((found[~known] >= 0).mean())})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    parser.add_argument("--data-dir", type=Path, required=True, help="an index of LFW DevTrain")
    parser.add_argument("--named", type=float, default=0.2, help="share of each person's faces named")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--write-curve", action="store_true", help=f"write the fallback curve to {LFW_CURVE}")
    args = parser.parse_args(argv)
    lfw = require_dir(args.lfw, "LFW DevTrain", LFW_HINT)
    started = now()
    faces = labelled_faces(args.data_dir, lfw)
    x_all = all_embeddings(args.data_dir)
    thresholds = np.asarray(THRESHOLDS)
    where = rows_in_index(faces.x, x_all)
    true_p, true_r = truth(faces.x, faces.persons, x_all, thresholds)
    print(f"{len(faces.paths)} labelled faces of {len(faces.names)} people; {len(x_all)} faces in the index "
          f"({now() - started:.1f} s)")
    runs = []
    for seed in range(args.seeds):
        est_p, est_r, info = named_estimate(faces.x, faces.persons, x_all, where, args.named, seed, THRESHOLDS)
        err_p, err_r = np.abs(est_p - true_p), np.abs(est_r - true_r)
        runs.append({"seed": seed, **info, "precision": est_p.round(4).tolist(), "recall": est_r.round(4).tolist(),
                     "max_error_precision": float(err_p.max()), "max_error_recall": float(err_r.max()),
                     "mean_error_precision": float(err_p.mean()), "mean_error_recall": float(err_r.mean())})
        if seed == 0:
            rows = [(t, f"{true_p[i]:.3f}", f"{est_p[i]:.3f}", f"{err_p[i]:.3f}", f"{true_r[i]:.3f}",
                     f"{est_r[i]:.3f}", f"{err_r[i]:.3f}")
                    for i, t in enumerate(THRESHOLDS) if round(t, 2) in SHOWN]
            print_table(("max distance", "precision true", "estimated", "error", "recall true", "estimated",
                         "error"), rows, title=f"seed 0: {info}")
    recognition = recognition_rows(faces.x.astype(np.float32), faces.persons, args.named)
    print_table(("rule distances x", "found, est.", "true", "right, est.", "true", "strangers named, est.", "true"),
                [(r["factor"], *(f"{r[k]:.3f}" for k in ("found_estimated", "found_true", "right_estimated",
                                                          "right_true", "strangers_estimated", "strangers_true")))
                 for r in recognition], title="recognition, seed 0")
    print_table(("seed", "named faces", "people", "same pairs", "max error P", "max error R", "mean error P",
                 "mean error R"),
                [(r["seed"], r["named_faces"], r["people"], r["same_pairs"], f"{r['max_error_precision']:.3f}",
                  f"{r['max_error_recall']:.3f}", f"{r['mean_error_precision']:.3f}",
                  f"{r['mean_error_recall']:.3f}") for r in runs], title="errors over 0.30-0.80")
    if args.write_curve:
        LFW_CURVE.parent.mkdir(exist_ok=True)
        LFW_CURVE.write_text(json.dumps({
            "source": "LFW DevTrain, every label known (benchmarks/tradeoff.py --write-curve)",
            "thresholds": list(THRESHOLDS), "precision": true_p.round(4).tolist(),
            "recall": true_r.round(4).tolist()}, indent=1) + "\n")
        print(f"wrote {LFW_CURVE}")
    path = write_results("tradeoff", {
        "command": "python -m benchmarks.tradeoff " + " ".join(argv or []),
        "labelled_faces": len(faces.paths), "index_faces": len(x_all), "named_share": args.named,
        "thresholds": list(THRESHOLDS), "true_precision": true_p.round(4).tolist(),
        "true_recall": true_r.round(4).tolist(), "runs": runs, "recognition": recognition,
        "seconds": round(now() - started, 1)})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
