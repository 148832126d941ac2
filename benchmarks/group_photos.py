"""Two faces of one photo: siblings side by side. How the cannot-link
constraint inside the clustering does on photos of look-alike people,
against the rule before it (the face farther from the shared centre always
dropped to the strangers) and against no photo rule at all.

The case, built from LFW DevTrain (``--data-dir``: an index of it, e.g.
``benchmarks.identification --data-dir .bench-index`` leaves one): the
people with at least ``--min-photos`` photos, paired with their nearest
look-alike (the other person whose mean face is nearest: "siblings"); for
each pair, ``--groups`` group photos each holding one face of both (their
faces given one photo id: the embeddings of the two photos, as pasting
the two crops side by side into one image would give them, up to the
crop), plus the rest of their photos alone and ``--strangers`` people seen
once. Every face is labelled with its person; clustered with the default
settings (k-means, automatic k, and threshold); pairwise precision, recall
and F over pairs of faces put together (strangers: groups of one), and
how many sibling pairs share a group.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.group_photos --data-dir .bench-index [--groups 3] [--strangers 200]

Results: ``benchmarks/results/group_photos.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.clustering import load_faces, pairwise
from benchmarks.common import DEFAULT_LFW, LFW_HINT, print_table, require_dir, write_results
from config.settings import ClusteringSettings
from indexer.clustering import ClusterParams, cluster_faces

VARIANTS = {
    "no photo rule": "every face its own photo",
    "before: the other face a stranger": "displaced_reach = 0",
    "constraint: the other face to its own group": "displaced_reach = stranger_distance",
}


def build(x: np.ndarray, person: np.ndarray, min_photos: int, groups: int, strangers: int,
          seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """The faces, their people, their photo ids (group photos share one) and
    the sibling pairs."""
    names, counts = np.unique(person[person != ""], return_counts=True)
    family = names[counts >= min_photos]
    means = np.stack([x[person == p].mean(axis=0) for p in family])
    d = np.linalg.norm(means[:, None] - means[None], axis=2)
    np.fill_diagonal(d, np.inf)
    pairs, used = [], set()
    for i in np.argsort(d.min(axis=1)).tolist():  # the closest look-alikes first
        j = int(np.argmin(d[i]))
        if i in used or j in used:
            continue
        used |= {i, j}
        pairs.append((str(family[i]), str(family[j])))
    rng = np.random.default_rng(seed)
    once = names[counts == 1]
    alone = rng.choice(once, size=min(strangers, len(once)), replace=False)
    rows = np.flatnonzero(np.isin(person, [*family[sorted(used)], *alone]))
    photo = np.arange(len(rows), dtype=np.int64)
    where = {int(r): i for i, r in enumerate(rows.tolist())}
    for a, b in pairs:
        first = np.flatnonzero(person == a)[:groups]
        second = np.flatnonzero(person == b)[:groups]
        for ra, rb in zip(first.tolist(), second.tolist()):
            photo[where[rb]] = photo[where[ra]]  # one group photo holding both
    return x[rows], person[rows], photo, pairs


def scored(x: np.ndarray, person: np.ndarray, photo: np.ndarray, pairs: list[tuple[str, str]],
           method: str, variant: str) -> dict:
    settings = ClusteringSettings()
    photos = np.arange(len(x)) if variant == "no photo rule" else photo
    reach = 0.0 if variant.startswith("before") else None
    result = cluster_faces(x, photos, ClusterParams(method=method), settings, displaced_reach=reach)
    truth = np.unique(person, return_inverse=True)[1]
    precision, recall, f = pairwise(truth, result.labels)
    merged = sum(bool(set(result.labels[person == a]) & set(result.labels[person == b]) - {-1}) for a, b in pairs)
    same_photo = sum(len(result.labels[(photo == p) & (result.labels >= 0)])
                     - len(set(result.labels[(photo == p) & (result.labels >= 0)].tolist()))
                     for p in np.unique(photo))
    return {"method": method, "variant": variant, "precision": precision, "recall": recall, "f": f,
            "siblings_merged": merged, "photos_twice_in_a_group": int(same_photo),
            "strangers": int((result.labels < 0).sum()), "groups": result.k}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="an index of LFW DevTrain")
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    parser.add_argument("--min-photos", type=int, default=8)
    parser.add_argument("--groups", type=int, default=3, help="group photos per sibling pair")
    parser.add_argument("--strangers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lfw = require_dir(args.lfw, "the LFW DevTrain photos", LFW_HINT)
    faces = load_faces(args.data_dir, lfw)
    labelled = faces.labelled
    x, person, photo, pairs = build(faces.x[labelled], faces.person[labelled], args.min_photos, args.groups,
                                    args.strangers, args.seed)
    shared = int(len(photo) - len(np.unique(photo)))
    print(f"{len(x)} faces of {len(np.unique(person))} people: {len(pairs)} sibling pairs, {shared} group photos")
    rows = [scored(x, person, photo, pairs, method, variant)
            for method in ("kmeans", "threshold") for variant in VARIANTS]
    print_table(["method", "photo rule", "precision", "recall", "pairwise F", "siblings merged", "photo twice",
                 "strangers"],
                [[r["method"], r["variant"], round(r["precision"], 4), round(r["recall"], 4), round(r["f"], 4),
                  f"{r['siblings_merged']}/{len(pairs)}", r["photos_twice_in_a_group"], r["strangers"]]
                 for r in rows],
                title="Look-alike people in group photos (LFW DevTrain, pairwise over faces)")
    write_results("group_photos", {"faces": len(x), "sibling_pairs": len(pairs), "group_photos": shared,
                                   "min_photos": args.min_photos, "groups_per_pair": args.groups,
                                   "strangers": args.strangers, "results": rows})


if __name__ == "__main__":
    main()
