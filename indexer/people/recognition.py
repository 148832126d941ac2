"""Recognition: new faces attributed to named people (source ``suggested``)
without anyone clustering again.

**The rule** (``config.settings.RecognitionSettings``, ``[recognition]``; every
distance Euclidean). For a face,
take the named person P with the nearest confirmed face (distance d1) and
the nearest confirmed face of anyone else (d2). Suggest P when

- d1 <= ``close_distance`` (0.40) and d2 - d1 >= ``close_margin`` (0.04):
  a near copy of one of P's confirmed faces; or
- d1 <= ``max_distance`` (0.50), the mean of P's k nearest confirmed faces
  (k = 3, or fewer when P has fewer) is within ``support_distance[k - 1]``
  (0.50, 0.46, 0.44: the mean of more photos lies nearer the person's
  centre) of the face, and d2 - d1 >= ``margin`` (0.12): near P's faces as
  a group, not one lookalike photo, and clearly nearer P than anyone else.

Chosen on LFW DevTrain (``benchmarks/recognition.py``: tuned on families
of people with 10-48 photos, checked on the 10 people with the most photos
and 200 people seen once): the plain "nearest confirmed face within 0.5"
names a person seen once wrongly 3-7 times as often, and its precision
falls below 0.99 for small families. The measured figures are in
``docs/people.md``.

A face rejected for P is never suggested to P (nor to the next person: the
evidence pointed at P). Confirmed faces are never suggested.

**Cost.** Every candidate face is compared with every confirmed face,
never with the whole index: n x C distances (10k new faces against 1,000
people with 20 confirmed faces each: 2e8, 0.8 s). Which faces are
candidates (``recognise_index``): the faces added since the last
recognition (ids above its watermark; face ids are never reused), plus,
for each person whose confirmed faces changed since (a correction marks
them), every indexed face within ``max_distance`` of one of those
confirmed faces (an exact range search) and their current suggestions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import faiss
import numpy as np

from config.settings import RecognitionSettings
from indexer.people.annotations import AnnotationsDB
from indexer.store import FaceStore

log = logging.getLogger(__name__)

# The rule's defaults (config/settings.py's RecognitionSettings).
DEFAULT_RULE = RecognitionSettings()
QUERY_CHUNK = 256  # candidate faces per block of the distance matrix (256 x C float32)


@dataclass(frozen=True)
class Suggestions:
    """Per candidate face: the person suggested (-1: none) and the Euclidean
    distance to that person's nearest confirmed face (NaN: none)."""

    person: np.ndarray  # int64 (n,)
    distance: np.ndarray  # float32 (n,)


def suggest(
    x: np.ndarray,
    confirmed: np.ndarray,
    confirmed_person: np.ndarray,
    rule: RecognitionSettings = DEFAULT_RULE,
    rejected: set[tuple[int, int]] | None = None,
    face_ids: np.ndarray | None = None,
) -> Suggestions:
    """Apply ``rule`` to each row of ``x`` (n, 128) against the confirmed
    faces ``confirmed`` (c, 128) of people ``confirmed_person`` (c,).
    ``rejected``: (face id, person id) pairs never to suggest, with
    ``face_ids`` (n,) naming the rows of ``x``."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, confirmed.shape[1] if confirmed.size else 128)
    n = len(x)
    person_out = np.full(n, -1, dtype=np.int64)
    distance_out = np.full(n, np.nan, dtype=np.float32)
    if n == 0 or len(confirmed) == 0:
        return Suggestions(person_out, distance_out)
    order = np.argsort(confirmed_person, kind="stable")
    c = np.ascontiguousarray(confirmed[order], dtype=np.float32)
    owners = np.asarray(confirmed_person)[order]
    people, starts, sizes = np.unique(owners, return_index=True, return_counts=True)
    for lo in range(0, n, QUERY_CHUNK):
        q = x[lo : lo + QUERY_CHUNK]
        d = np.sqrt(np.maximum(faiss.pairwise_distances(q, c), 0.0))  # squared L2 -> Euclidean
        per_person = np.minimum.reduceat(d, starts, axis=1)  # (m, people)
        best = np.argmin(per_person, axis=1)
        rows = np.arange(len(q))
        d1 = per_person[rows, best]
        if len(people) > 1:
            per_person[rows, best] = np.inf
            d2 = per_person.min(axis=1)
        else:
            d2 = np.full(len(q), np.inf, dtype=d.dtype)
        for i in np.flatnonzero(d1 <= rule.max_distance):
            p, s, size = int(people[best[i]]), int(starts[best[i]]), int(sizes[best[i]])
            if rejected and face_ids is not None and (int(face_ids[lo + i]), p) in rejected:
                continue
            if not _accepted(q[i], float(d1[i]), float(d2[i]), d[i, s : s + size], c[s : s + size], rule):
                continue
            person_out[lo + i] = p
            distance_out[lo + i] = d1[i]
    return Suggestions(person_out, distance_out)


@dataclass(frozen=True)
class RuleCheck:
    """How the rule judged one face against its nearest named person P:
    ``branch`` "close" or "support" when it suggests P, None when not, with
    ``failed`` the condition that stopped it; the numbers it compared
    (Euclidean): ``d1`` to P's nearest confirmed face, ``d2`` to anyone
    else's, ``support`` from the face to the mean of P's ``k`` nearest
    confirmed faces (None when the support branch was not reached)."""

    branch: str | None
    failed: str | None
    d1: float
    d2: float
    support: float | None = None
    k: int = 0


def check_rule(
    face: np.ndarray, d1: float, d2: float, to_person: np.ndarray, person_faces: np.ndarray, rule: RecognitionSettings
) -> RuleCheck:
    """The rule for one face whose nearest named person is at ``d1``
    (``to_person``: distances to each of that person's confirmed faces,
    ``person_faces`` those faces): the one place the rule is written."""
    if d1 > rule.max_distance:
        return RuleCheck(None, "max_distance", d1, d2)
    if d1 <= rule.close_distance and d2 - d1 >= rule.close_margin:
        return RuleCheck("close", None, d1, d2)
    if d2 - d1 < rule.margin:
        return RuleCheck(None, "margin", d1, d2)
    k = min(rule.support_faces, len(to_person))
    nearest = np.argpartition(to_person, k - 1)[:k] if k < len(to_person) else np.arange(len(to_person))
    centre = person_faces[nearest].mean(axis=0)
    support = float(np.linalg.norm(face - centre))
    if support > rule.support_distance[k - 1]:
        return RuleCheck(None, "support_distance", d1, d2, support, k)
    return RuleCheck("support", None, d1, d2, support, k)


def _accepted(
    face: np.ndarray, d1: float, d2: float, to_person: np.ndarray, person_faces: np.ndarray, rule: RecognitionSettings
) -> bool:
    return check_rule(face, d1, d2, to_person, person_faces, rule).branch is not None


def indexed_confirmed(confirmed: list[tuple[int, int]], known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The confirmed (face, person) pairs whose face is among ``known`` (the
    index's face ids): (face ids, people), int64, in face-id order."""
    pairs = np.array(sorted(confirmed), dtype=np.int64).reshape(-1, 2)
    pairs = pairs[np.isin(pairs[:, 0], known)]
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def evenly_spread(items: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` of ``items``, taken evenly along them (all when
    there are no more): a bounded sample of faces in face-id order."""
    if len(items) <= limit:
        return items
    return items[np.linspace(0, len(items) - 1, limit).round().astype(np.int64)]


def one_face_a_photo(store: FaceStore, chosen: dict[int, tuple[int, float]],
                     confirmed: dict[int, int]) -> dict[int, tuple[int, float]]:
    """``chosen`` (face -> (person, distance)) less the suggestions that would
    give a person a second face of one photo: a photo where they have a
    confirmed face gets no suggestion of them, and of two suggestions of
    them in one photo the nearer stays."""
    records = store.faces(list(chosen) + list(confirmed))
    taken = {(records[f].photo_id, p) for f, p in confirmed.items() if f in records}
    kept: dict[int, tuple[int, float]] = {}
    nearest: dict[tuple[int, int], int] = {}
    for face, (person, distance) in sorted(chosen.items(), key=lambda item: (item[1][1], item[0])):
        record = records.get(face)
        key = (record.photo_id, person) if record is not None and record.photo_id is not None else None
        if key is not None and (key in taken or key in nearest):
            continue
        if key is not None:
            nearest[key] = face
        kept[face] = (person, distance)
    return kept


@dataclass
class RecognitionReport:
    """What one recognition did: faces evaluated, suggestions written,
    people re-evaluated, seconds."""

    evaluated: int = 0
    suggested: int = 0
    people_reevaluated: int = 0
    confirmed_faces: int = 0
    duration_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def recognise_index(
    store: FaceStore, annotations: AnnotationsDB, rule: RecognitionSettings = DEFAULT_RULE, *,
    everything: bool = False,
) -> RecognitionReport:
    """Bring the suggestions of ``annotations`` in line with ``store`` (the
    published index): evaluate the faces added since the last recognition
    and, for the people whose confirmed faces changed, the faces near those
    (see the module docstring). ``everything``: every face near any
    confirmed face, as if every person had changed. Call
    ``indexer.people.carry_over.carry_over`` first: it drops what is left of faces
    gone from the index."""
    started = time.perf_counter()
    report = RecognitionReport()
    known = store.face_ids()
    known_set = set(known.tolist())
    snapshot = annotations.recognition_input()
    top = int(known.max()) if len(known) else 0
    confirmed_ids, confirmed_people = indexed_confirmed(snapshot.confirmed, known)
    report.confirmed_faces = len(confirmed_ids)
    # Before the first recognition of this data directory every person counts as changed.
    people_with_faces = set(confirmed_people.tolist())
    dirty = people_with_faces if (everything or not snapshot.has_watermark) else set(snapshot.dirty)
    if not len(confirmed_ids):
        annotations.save_suggestions(list(snapshot.suggested), {}, max_rev=snapshot.max_rev, watermark=top)
        report.duration_s = round(time.perf_counter() - started, 3)
        return report
    confirmed_x = store.vectors_of(confirmed_ids)
    candidates = set(known[known > snapshot.watermark].tolist()) if snapshot.has_watermark else set()
    for person_id in sorted(dirty & people_with_faces):
        _, _, near = store.range_search(confirmed_x[confirmed_people == person_id], rule.max_distance**2)
        candidates.update(near.tolist())
    # Suggestions of changed people, and of people with no confirmed face left, are evaluated again.
    candidates.update(f for f, person in snapshot.suggested.items()
                      if person in dirty or person not in people_with_faces)
    candidates.difference_update(confirmed_ids.tolist())
    candidates &= known_set
    ids = np.array(sorted(candidates), dtype=np.int64)
    found = suggest(store.vectors_of(ids) if len(ids) else np.zeros((0, 128), np.float32), confirmed_x,
                    confirmed_people, rule, snapshot.rejections, ids)
    chosen = {
        int(face): (int(person), float(distance))
        for face, person, distance in zip(ids, found.person, found.distance)
        if person >= 0
    }
    chosen = one_face_a_photo(store, chosen, dict(zip(confirmed_ids.tolist(), confirmed_people.tolist())))
    report.suggested = annotations.save_suggestions(ids.tolist(), chosen, max_rev=snapshot.max_rev, watermark=top)
    report.evaluated = len(ids)
    report.people_reevaluated = len(dirty)
    report.duration_s = round(time.perf_counter() - started, 3)
    log.info("recognition: %s", report)
    return report
