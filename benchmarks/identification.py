"""Identification quality on LFW DevTrain: leave-one-out top-1 accuracy of
our embeddings among the labelled faces.

The LFW folder is indexed into ``--data-dir`` with 2 workers (default: a
fresh temporary folder, printed). An index that already holds the folder,
e.g. ``benchmarks.indexing --limit 0 --keep DIR``, is brought up to date
instead: unchanged photos are not encoded again. Faces stored for photos
outside the LFW folder are ignored.

In each photo the labelled face is the one whose box centre is nearest the
image centre (LFW's rule); the person is the photo's folder name. Each
labelled face of a person with 2+ labelled photos is a query: is the nearest
*other* labelled face (exact Euclidean distance) the same person?

Reported: photos, photos with a face, labelled faces, queries, top-1 accuracy,
accuracy when a match counts only within ``--threshold`` (default 0.6, dlib's
same-person threshold; farther is "unknown", counted wrong), and the mean and
median distance (Euclidean, embedding units) from each query to its nearest
same-person face and to its nearest different-person face. Reference: plain
face_recognition defaults give about 0.97 on LFW.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.identification [--data-dir DIR] [--threshold 0.6]
        [--detector hog] [--yunet-box frame|landmarks|hog|raw] [--yunet-score 0.7]

(a fresh ``--data-dir`` for each detector or YuNet variant: an index keeps
the detector it was built with, and the YuNet variants share its signature).

Results: ``benchmarks/results/identification.json`` (with the missed queries).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import DEFAULT_LFW, LFW_HINT, now, print_table, require_dir, write_results
from config.settings import load_settings
from indexer.indexing import index_paths
from indexer.model import DETECTORS, FaceModel, face_model
from indexer.model.yunet import HAND_OVERS, SCORE_THRESHOLD, YunetDetector
from indexer.scanner import is_under
from indexer.store import EmbeddedStore, FaceRecord, StoreError

REFERENCE_ACCURACY = 0.97
QUERY_CHUNK = 1024


@dataclass
class Labelled:
    """One labelled face per photo that has a face."""

    paths: list[str]
    persons: np.ndarray  # int codes, one per face
    names: list[str]  # person name by code
    x: np.ndarray  # float64 (n, 128)
    face_ids: np.ndarray  # int64 (n,), in the index


@dataclass
class Neighbours:
    """For each query: nearest other labelled face, and nearest same/different-person distances."""

    queries: np.ndarray  # indices into Labelled
    nearest: np.ndarray  # indices into Labelled
    distance: np.ndarray
    same_distance: np.ndarray
    different_distance: np.ndarray


def ensure_index(lfw: Path, data_dir: Path, workers: int, detection: dict | None = None,
                 yunet: YunetDetector | None = None) -> int:
    """Index (or bring up to date) ``lfw`` in ``data_dir`` with the default
    detection settings, or ``detection``, and YuNet as ``yunet`` when given
    (its score threshold and hand-over); returns the number of LFW photos."""
    settings = load_settings(data_dir=data_dir, indexer={"workers": workers}, detection=detection or {})
    model = face_model(settings.encoding)
    if yunet is not None:
        model = FaceModel({**model.detectors, "yunet": yunet}, model.encoder)
    started = now()
    try:
        report = index_paths([lfw], settings, progress=None, model=model)
    except StoreError as exc:
        print(f"error: cannot use the index in {data_dir}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"index: {report.images_seen} photos, {report.images_indexed} encoded, "
          f"{report.images_unchanged} unchanged, {len(report.errors)} unreadable ({now() - started:.1f} s)")
    return report.images_seen


def centre_distance(record: FaceRecord) -> float:
    """Distance from the face box centre to the image centre, pixels."""
    box = record.box
    dy = (box.top + box.bottom) / 2 - record.height / 2
    dx = (box.left + box.right) / 2 - record.width / 2
    return float(np.hypot(dx, dy))


def labelled_faces(data_dir: Path, lfw: Path) -> Labelled:
    """The face nearest the image centre of every LFW photo in the store."""
    store = EmbeddedStore.open_published(data_dir)
    best: dict[str, tuple[float, np.ndarray, int]] = {}
    root = [str(lfw)]
    try:
        for ids, x in store.db.iter_embeddings():
            records = store.faces([int(i) for i in ids])
            for face_id, embedding in zip(ids, x):
                record = records[int(face_id)]
                if not is_under(record.path, root):
                    continue
                offset = centre_distance(record)
                if record.path not in best or offset < best[record.path][0]:
                    best[record.path] = (offset, embedding, int(face_id))
    finally:
        store.close()
    paths = sorted(best)
    person_of = [Path(p).parent.name for p in paths]
    names = sorted(set(person_of))
    code = {name: i for i, name in enumerate(names)}
    return Labelled(
        paths=paths,
        persons=np.array([code[n] for n in person_of], dtype=np.int64),
        names=names,
        x=np.array([best[p][1] for p in paths], dtype=np.float64).reshape(-1, 128),
        face_ids=np.array([best[p][2] for p in paths], dtype=np.int64),
    )


def leave_one_out(faces: Labelled) -> Neighbours:
    """Exact nearest neighbours of every face of a person with 2+ labelled faces."""
    counts = np.bincount(faces.persons)
    queries = np.flatnonzero(counts[faces.persons] >= 2)
    sq_norms = np.einsum("ij,ij->i", faces.x, faces.x)
    nearest, distance, same, different = [], [], [], []
    for start in range(0, len(queries), QUERY_CHUNK):
        rows = queries[start : start + QUERY_CHUNK]
        d2 = sq_norms[rows, None] + sq_norms[None, :] - 2.0 * faces.x[rows] @ faces.x.T
        d = np.sqrt(np.maximum(d2, 0.0))
        d[np.arange(len(rows)), rows] = np.inf  # not itself
        is_same = faces.persons[rows, None] == faces.persons[None, :]
        nearest.append(d.argmin(axis=1))
        distance.append(d.min(axis=1))
        same.append(np.where(is_same, d, np.inf).min(axis=1))
        different.append(np.where(is_same, np.inf, d).min(axis=1))
    if not len(queries):
        empty = np.zeros(0)
        return Neighbours(queries, empty.astype(np.int64), empty, empty, empty)
    return Neighbours(queries, np.concatenate(nearest), np.concatenate(distance), np.concatenate(same),
                      np.concatenate(different))


def summarise(faces: Labelled, found: Neighbours, threshold: float) -> dict:
    hit = faces.persons[found.nearest] == faces.persons[found.queries]
    within = hit & (found.distance <= threshold)
    n = len(found.queries)
    return {
        "labelled_faces": len(faces.paths),
        "people": len(faces.names),
        "people_with_2plus": int((np.bincount(faces.persons) >= 2).sum()),
        "queries": n,
        "top1_accuracy": float(hit.mean()) if n else float("nan"),
        "threshold": threshold,
        "accuracy_within_threshold": float(within.mean()) if n else float("nan"),
        "unknown_beyond_threshold": int((found.distance > threshold).sum()),
        "nearest_same_person": _stats(found.same_distance),
        "nearest_different_person": _stats(found.different_distance),
    }


def _stats(values: np.ndarray) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return {"mean": float("nan"), "median": float("nan")}
    return {"mean": float(finite.mean()), "median": float(np.median(finite))}


def misses(faces: Labelled, found: Neighbours, lfw: Path) -> list[dict]:
    """Queries whose nearest other face is someone else, for inspection."""
    out = []
    for q, j, dist, same in zip(found.queries, found.nearest, found.distance, found.same_distance):
        if faces.persons[j] != faces.persons[q]:
            out.append({
                "query": str(Path(faces.paths[q]).relative_to(lfw)),
                "nearest": str(Path(faces.paths[j]).relative_to(lfw)),
                "distance": float(dist),
                "nearest_same_person_distance": float(same),
            })
    return out


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    """``--lfw``, ``--data-dir`` and ``--workers``, as ``indexed_lfw`` takes them."""
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW DevTrain folder (Person/Person_NNNN.jpg)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="index folder to reuse or fill (default: a new temporary folder)")
    parser.add_argument("--workers", type=int, default=2, help="indexing worker processes")
    parser.add_argument("--detector", choices=DETECTORS, default=None, help="detection.model (default: the setting's)")
    parser.add_argument("--yunet-box", choices=HAND_OVERS, default=HAND_OVERS[0],
                        help="the box YuNet hands to dlib's landmarks: HOG's placed by its landmarks' frame (the "
                        "default), HOG's predicted from its landmarks by a linear fit, its box reshaped as HOG's, "
                        "or its own")
    parser.add_argument("--yunet-score", type=float, default=SCORE_THRESHOLD, help="YuNet's score threshold")


def indexed_lfw(args: argparse.Namespace, prefix: str) -> tuple[Path, Path, int, Labelled]:
    """LFW indexed in ``--data-dir`` (brought up to date) or in a temporary
    folder: (LFW folder, index folder, photos, the labelled faces)."""
    lfw = require_dir(args.lfw, "the LFW DevTrain photos", LFW_HINT)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        data_dir = (args.data_dir or Path(tmp) / "data").resolve()
        print(f"index folder: {data_dir}")
        detection = {"model": args.detector} if args.detector else None
        yunet = YunetDetector(score_threshold=args.yunet_score, hand_over=args.yunet_box)
        photos = ensure_index(lfw, data_dir, args.workers, detection, yunet)
        return lfw, data_dir, photos, labelled_faces(data_dir, lfw)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_index_arguments(parser)
    parser.add_argument("--threshold", type=float, default=0.6, help="largest distance that counts as a match")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    lfw, data_dir, photos, faces = indexed_lfw(args, "facesearch-ident-")
    found = leave_one_out(faces)
    summary = {"photos": photos, "photos_with_face": len(faces.paths), **summarise(faces, found, args.threshold)}

    same, diff = summary["nearest_same_person"], summary["nearest_different_person"]
    print_table(
        ["measure", "value"],
        [
            ["photos", photos],
            ["photos with a face", summary["photos_with_face"]],
            ["labelled faces (1 per photo)", summary["labelled_faces"]],
            ["people / with 2+ labelled photos", f"{summary['people']:,} / {summary['people_with_2plus']:,}"],
            ["queries", summary["queries"]],
            ["top-1 accuracy", summary["top1_accuracy"]],
            [f"accuracy, match within {args.threshold}", summary["accuracy_within_threshold"]],
            [f"queries with nothing within {args.threshold}", summary["unknown_beyond_threshold"]],
            ["nearest same-person distance mean / median", f"{same['mean']:.3f} / {same['median']:.3f}"],
            ["nearest other-person distance mean / median", f"{diff['mean']:.3f} / {diff['median']:.3f}"],
            ["reference: face_recognition on LFW", REFERENCE_ACCURACY],
        ],
        title="Identification on LFW DevTrain (leave-one-out, labelled faces)",
    )
    write_results("identification", {
        "lfw": lfw,
        "data_dir": str(data_dir) if args.data_dir else None,
        "reference_accuracy": REFERENCE_ACCURACY,
        **summary,
        "misses": misses(faces, found, lfw),
    })


if __name__ == "__main__":
    main()
