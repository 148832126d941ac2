"""The precision/recall trade of a distance threshold, made visible: what a
search or a sightings search within ``max_distance`` can be expected to
find (recall) and how much of what it finds is the person (precision),
estimated from the index's own named people (``GET /api/v1/tradeoff``,
the controls beside "Maximum distance").

**How.** The confirmed faces are the ground truth; each is a query, held
out from its person's other confirmed faces. For a confirmed face of
person P, who has ``m`` faces attributed now (confirmed, group,
suggested):

- found (true): ``TPR(t) (m - 1)``, where ``TPR(t)`` is the share of P's
  other confirmed faces within ``t`` (pooled over everyone when P has one);
- found (wrong): the faces of the index within ``t`` that are not
  attributed to P, counted in a sample of ``SAMPLE_FACES`` faces and scaled
  to the index. Measured on the index itself, not modelled from the named
  faces: the faces nobody names (bystanders, blurred, side-on) come near
  other faces more often than named ones do; on LFW, a rate taken from
  the named faces alone overestimated precision by up to 0.09.

Each person's queries are weighted to stand for all ``m`` of their faces;
precision is the pooled share of true finds among all finds, recall the
pooled share of the person's other faces found.

**Fallback.** With fewer than ``MIN_SAME_PAIRS`` same-person pairs or
``MIN_PEOPLE`` people with confirmed faces, the curve measured on LFW
DevTrain (``data/lfw_curve.json``, ``benchmarks/tradeoff.py``) is shown
instead, and says so: its precision is LFW's mix of people, not this
collection's.

**Error.** Against the true pooled precision and recall on LFW DevTrain
with 20% of each person's faces named (``benchmarks/tradeoff.py``,
docs/explanations.md).

**Cost.** At most ``MAX_FACES`` confirmed faces (evenly spread) against
each other and against ``SAMPLE_FACES`` faces of the index: ~0.5 s on
one core for LFW DevTrain with everyone named (3,000 x 5,000; on LFW a
sample of 2,500, 5,000 or all 11,325 faces gave the same error); the curve
is kept until the corrections or the index change.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import faiss
import numpy as np

from indexer.people.annotations import AnnotationsDB
from indexer.people.recognition import evenly_spread, indexed_confirmed
from indexer.store import FaceStore

THRESHOLDS = tuple(round(0.30 + 0.01 * i, 2) for i in range(51))  # 0.30 to 0.80, Euclidean
MAX_FACES = 3000
SAMPLE_FACES = 5_000  # faces of the index the wrong finds are counted in (LFW: the same error as all 11,325)
MIN_SAME_PAIRS = 30
MIN_PEOPLE = 2
LFW_CURVE = Path(__file__).parent / "data" / "lfw_curve.json"


@dataclass(frozen=True)
class Curve:
    """Expected precision and recall of "the same person within t" for each
    of ``thresholds``. ``source``: ``"named"`` (this index's confirmed
    faces: ``people`` people, ``same_pairs`` same-person pairs) or
    ``"lfw"`` (the shipped LFW curve)."""

    source: str
    thresholds: list[float]
    precision: list[float]
    recall: list[float]
    people: int
    same_pairs: int
    faces: int  # faces in the index

    def at(self, max_distance: float) -> tuple[float, float]:
        """(precision, recall) at the threshold nearest ``max_distance``."""
        i = int(np.argmin(np.abs(np.asarray(self.thresholds) - max_distance)))
        return self.precision[i], self.recall[i]


def within(d: np.ndarray, mask: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(rows, len(t)): per row of the distances ``d``, how many of the
    entries ``mask`` keeps are at most each of the evenly spaced ascending
    thresholds ``t``: each entry's first threshold found by arithmetic,
    counted, then summed along; no row is sorted."""
    step = (t[-1] - t[0]) / (len(t) - 1) if len(t) > 1 else 1.0
    slot = np.clip(np.ceil((d - t[0]) / step - 1e-6), 0, len(t)).astype(np.int64)
    slot[~mask] = len(t)  # left out: past every threshold
    offsets = np.arange(len(d), dtype=np.int64)[:, None] * (len(t) + 1)
    counts = np.bincount((offsets + slot).ravel(), minlength=len(d) * (len(t) + 1)).reshape(len(d), len(t) + 1)
    return np.cumsum(counts[:, :-1], axis=1)


def estimate(x_named: np.ndarray, labels: np.ndarray, sizes: dict[int, int], x_sample: np.ndarray,
             sample_owner: np.ndarray, total: int,
             thresholds: tuple[float, ...] = THRESHOLDS) -> tuple[np.ndarray, np.ndarray, int]:
    """(precision, recall, same-person pairs) at ``thresholds``: the named
    faces ``x_named`` of people ``labels``, whose people hold ``sizes[p]``
    faces now; ``x_sample``, a sample of the index's ``total`` faces, whose
    ``sample_owner`` is the person each is attributed to (-1: nobody). Every
    distance Euclidean (the module docstring)."""
    t = np.asarray(thresholds, dtype=np.float64)
    named = np.ascontiguousarray(x_named, dtype=np.float32)
    sample = np.ascontiguousarray(x_sample, dtype=np.float32)
    labels = np.asarray(labels)
    people, named_count = np.unique(labels, return_counts=True)
    per_person = dict(zip(people.tolist(), named_count.tolist()))
    m = np.array([sizes.get(int(p), per_person[int(p)]) for p in labels], dtype=np.float64)  # their faces now
    weight = m / np.array([per_person[int(p)] for p in labels])  # a query stands for m / named of them
    rates = np.zeros((len(named), len(t)))
    has_rate = np.zeros(len(named), dtype=bool)
    wrong = np.zeros((len(named), len(t)))
    same_pairs = 0
    for lo in range(0, len(named), 256):
        rows = np.arange(lo, min(lo + 256, len(named)))
        d_named = np.sqrt(np.maximum(faiss.pairwise_distances(named[rows], named), 0.0))
        d_sample = np.sqrt(np.maximum(faiss.pairwise_distances(named[rows], sample), 0.0))
        same = (labels[rows][:, None] == labels[None, :]) & (rows[:, None] != np.arange(len(named))[None, :])
        others = same.sum(axis=1)
        same_pairs += int(others.sum())
        has_rate[rows] = others > 0
        rates[rows] = within(d_named, same, t) / np.maximum(others, 1)[:, None]
        not_theirs = sample_owner[None, :] != labels[rows][:, None]
        wrong[rows] = within(d_sample, not_theirs, t) / max(len(sample), 1) * total
    pooled = rates[has_rate].mean(axis=0) if has_rate.any() else np.zeros(len(t))
    rates[~has_rate] = pooled
    found_true = (weight[:, None] * rates * (m - 1)[:, None]).sum(axis=0)
    found_wrong = (weight[:, None] * wrong).sum(axis=0)
    wanted = float((weight * (m - 1)).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(found_true + found_wrong > 0, found_true / (found_true + found_wrong), 1.0)
    recall = found_true / wanted if wanted else np.zeros(len(t))
    return precision, recall, same_pairs // 2


def lfw_curve(total: int) -> Curve:
    data = json.loads(LFW_CURVE.read_text())
    return Curve("lfw", data["thresholds"], data["precision"], data["recall"], 0, 0, total)


_kept: dict[str, tuple[tuple[str, int], Any]] = {}
_lock = threading.Lock()
Value = TypeVar("Value")


def kept(name: str, store: FaceStore, annotations: AnnotationsDB, compute: Callable[[], Value]) -> Value:
    """``compute()``, kept under ``name`` until the served generation (a
    published generation never changes) or the corrections change: a
    page that shows it costs one query after the first."""
    last = annotations.corrections(1)
    key = (str(store.data_dir), last[0].rev if last else 0)
    with _lock:
        hit = _kept.get(name)
    if hit is not None and hit[0] == key:
        return cast(Value, hit[1])
    value = compute()
    with _lock:
        _kept[name] = (key, value)
    return value


def tradeoff_curve(store: FaceStore, annotations: AnnotationsDB) -> Curve:
    """The expected precision and recall of a search within each threshold,
    for this index and its named people (the LFW curve when too few); kept
    until the index or the corrections change."""
    return kept("tradeoff", store, annotations, lambda: _curve(store, annotations))


def _curve(store: FaceStore, annotations: AnnotationsDB) -> Curve:
    known = store.face_ids()
    ids, labels = indexed_confirmed(annotations.recognition_input().confirmed, known)
    ids, labels = evenly_spread(ids, MAX_FACES), evenly_spread(labels, MAX_FACES)
    people = np.unique(labels)
    if len(people) >= MIN_PEOPLE:
        sizes = {p.person_id: sum(p.counts.values()) for p in annotations.people()}
        sample_ids = evenly_spread(known, SAMPLE_FACES)
        owners = annotations.attributions(sample_ids.tolist())
        sample_owner = np.array([owners[f].person_id if f in owners else -1 for f in sample_ids.tolist()])
        precision, recall, same_pairs = estimate(store.vectors_of(ids), labels, sizes, store.vectors_of(sample_ids),
                                                 sample_owner, len(known))
        if same_pairs >= MIN_SAME_PAIRS:
            return Curve("named", list(THRESHOLDS), [round(float(v), 4) for v in precision],
                         [round(float(v), 4) for v in recall], len(people), same_pairs, len(known))
    return lfw_curve(len(known))
