"""What the annotations database gives back: clustering runs, people,
merges and corrections, recognition's input, the places of faces, and the
errors of the clustering runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# face id -> (content hash of its file, (top, right, bottom, left), seconds into a video or None)
Places = dict[int, tuple[str, tuple[int, int, int, int], float | None]]


class NoClusteringError(LookupError):
    """No clustering run has been stored yet."""


class ClusterNotFoundError(LookupError):
    """The last run has no cluster with that id."""


@dataclass(frozen=True)
class RunInfo:
    """A stored clustering run without its faces."""

    run_id: int
    created_at: str
    method: str
    k: int
    params: dict[str, Any]
    face_count: int
    duration_s: float


@dataclass(frozen=True)
class StoredRun:
    """A stored clustering run with one entry per face, in face-id order.

    ``face_ids`` int64 (n,); ``clusters`` int64 (n,), 0..k-1 or -1 for a
    stranger; ``nearest`` int64 (n,), the own cluster or a stranger's nearest
    one (-1 for none); ``distances`` float32 (n,), Euclidean distance to the
    centre of ``nearest`` (NaN for none).
    """

    info: RunInfo
    face_ids: np.ndarray
    clusters: np.ndarray
    nearest: np.ndarray
    distances: np.ndarray


@dataclass(frozen=True)
class Person:
    """A named person. ``face_count``: their confirmed faces; ``counts``: the
    faces each source attributes to them now (``attribution.SOURCES``);
    ``clusters``: the clusters of the last run mapped to them; ``last_merge``:
    their last merge that can be undone, or None."""

    person_id: int
    name: str
    created_at: str
    face_count: int
    clusters: list[int]
    counts: dict[str, int] = field(default_factory=dict)
    last_merge: Merge | None = None
    cover_face_id: int | None = None  # a confirmed face to show for them (their first)


@dataclass(frozen=True)
class Merge:
    """A merge into a person: when, by whom (an API key id, ``cli``, or None
    without keys), the people merged away (id and name) and the confirmed
    faces moved; ``undone_at`` once undone; ``rev``, its correction."""

    merge_id: int
    person_id: int
    at: str
    actor: str | None
    people: list[tuple[int, str]]
    faces_moved: int
    undone_at: str | None
    rev: int = 0


@dataclass(frozen=True)
class Correction:
    """What a correction did: the person afterwards, and how many of the
    given faces it changed (the others already were so)."""

    person: Person
    face_ids: list[int]
    changed: int
    rev: int | None = None  # the correction (``AnnotationsDB.undo`` takes it back)


@dataclass(frozen=True)
class CorrectionRecord:
    """One correction of the journal, as a page says what it did: ``rev``,
    when (``at``), by whom, its ``action`` (create, name_cluster, assign,
    reject, merge, undo_merge, rename, delete, undo), its person (id and
    name, the name they had if they are gone), the faces it changed, the
    people it took faces from (``from_people``: id, name; for a merge, the
    people merged into its person), the correction
    it undid (``undoes``, with that one's action) and whether it can be
    undone now (``undoable``: not undone yet, and for a merge, the last one
    into its person)."""

    rev: int
    at: str
    actor: str | None
    action: str
    person_id: int | None
    person_name: str | None
    faces: int
    from_people: list[tuple[int, str]]
    undoes: int | None
    undoes_action: str | None
    undone_by: int | None
    undoable: bool


@dataclass(frozen=True)
class RecognitionInput:
    """What recognition reads in one snapshot: the last face id it looked
    at, the people whose confirmed faces changed since (with the last
    correction), every confirmed face and its person, and every rejection."""

    watermark: int
    dirty: dict[int, int]
    max_rev: int
    confirmed: list[tuple[int, int]]
    rejections: set[tuple[int, int]]
    suggested: dict[int, int]
    has_watermark: bool = True  # False before the first recognition of this data directory
