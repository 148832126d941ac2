"""Recall search: every indexed face within a radius of any probe face
(FAISS range search), filtered, sorted, paged or grouped by source. Plain
functions: a store and arrays in, response models out. Every distance is
Euclidean; times are POSIX seconds (a video face: the recording's start plus
its offset)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np

from application.errors import InvalidRequest, TooManyHits
from application.schemas import RecallMatch, RecallParams, RecallResponse, RecallSource
from application.searching import PeopleLookup, box_model, person_fields
from config.settings import Settings
from indexer.people.attribution import Attribution
from indexer.store import FaceFilter, FaceStore
from indexer.store.metadata import FaceRecord

# ``path_prefix`` (a camera's folder), ``time_from``/``time_to`` (POSIX
# seconds, inclusive): searched inside the store where it can (Milvus).
RecallFilters = FaceFilter


def probes_with_fusion(probes: np.ndarray, fusion: str) -> np.ndarray:
    """The probe set: with ``fusion="mean"`` and several probes, their mean
    is searched too (it sits nearer the person's centre than any one photo)."""
    probes = np.ascontiguousarray(probes, dtype=np.float32).reshape(-1, probes.shape[-1])
    if fusion == "mean" and len(probes) > 1:
        probes = np.vstack([probes, probes.mean(axis=0, keepdims=True)])
    return probes


def expanded_probe(store: FaceStore, probes: np.ndarray, expand_distance: float) -> np.ndarray | None:
    """Query expansion: the mean of the probes and of every indexed face
    within ``expand_distance`` of one (Euclidean; tight, so that they are
    almost surely the same person). Being an average of many photos, it lies
    nearer the person's centre than any single probe. None when nothing is
    that near."""
    lims, d2, ids = store.range_search(probes, expand_distance**2)
    if not len(ids):
        return None
    found = store.vectors_of(np.unique(ids))
    expanded: np.ndarray = np.vstack([probes, found]).mean(axis=0, keepdims=True).astype(np.float32)
    return expanded


def faces_within(
    store: FaceStore, probes: np.ndarray, max_distance: float, max_hits: int, where: FaceFilter | None = None
) -> dict[int, float]:
    """Face id -> smallest Euclidean distance to any probe, for every face
    within ``max_distance`` of one and matching ``where``. ``TooManyHits``
    past ``max_hits``."""
    lims, d2, ids = store.range_search(probes, max_distance**2, where or None)
    if len(ids) > max_hits * max(1, len(probes)):
        raise TooManyHits(
            f"{len(ids):,} faces lie within {max_distance} of the probes, more than recall.max_hits "
            f"({max_hits:,}): lower max_distance or narrow the search"
        )
    best: dict[int, float] = {}
    distances = np.sqrt(np.maximum(d2, 0.0))
    order = np.lexsort((ids, distances))  # nearest first: the first sighting of an id is its best
    for face_id, dist in zip(ids[order].tolist(), distances[order].tolist()):
        if face_id not in best:
            best[face_id] = dist
    if len(best) > max_hits:
        raise TooManyHits(
            f"{len(best):,} faces lie within {max_distance} of the probes, more than recall.max_hits "
            f"({max_hits:,}): lower max_distance or narrow the search"
        )
    return best


def recall(
    store: FaceStore,
    probes: np.ndarray,
    *,
    max_distance: float,
    limit: int,
    offset: int,
    filters: RecallFilters,
    group_by: str | None,
    fusion: str,
    max_hits: int,
    expand_distance: float | None = None,
    people: PeopleLookup | None = None,
) -> RecallResponse:
    """Every sighting of the probes' person: the faces within
    ``max_distance`` of any probe (``distance`` = the smallest), filtered,
    ascending by distance (then face id), and the page ``offset``/``limit``
    of them; ``total`` counts them all. ``group_by="source"``: one entry per
    photo or recording instead, ordered by its best distance, with its
    number of hits and, for a recording, the time ranges of its tracks.
    ``expand_distance``: query expansion (``expanded_probe``), searched as
    one more probe."""
    searched = probes_with_fusion(probes, fusion)
    if expand_distance is not None and store.count():
        extra = expanded_probe(store, np.ascontiguousarray(probes, dtype=np.float32), expand_distance)
        if extra is not None:
            searched = np.vstack([searched, extra])
    best = faces_within(store, searched, max_distance, max_hits, filters) if store.count() else {}
    records = store.faces(list(best))
    hits = sorted(
        ((dist, face_id) for face_id, dist in best.items() if face_id in records and filters.keep(records[face_id])),
    )
    if group_by == "source":
        sources = _by_source(hits, records)
        return RecallResponse(
            total=len(sources), max_distance=max_distance, probes=len(probes), matches=[],
            sources=sources[offset : offset + limit],
        )
    page = hits[offset : offset + limit]
    names = people([face_id for _, face_id in page]) if people is not None and page else {}
    matches = [_match(records[face_id], dist, names.get(face_id)) for dist, face_id in page]
    return RecallResponse(total=len(hits), max_distance=max_distance, probes=len(probes), matches=matches)


def _match(record: FaceRecord, distance: float, person: Attribution | None) -> RecallMatch:
    return RecallMatch.model_construct(
        face_id=record.face_id, distance=distance, path=record.path, box=box_model(record.box),
        timestamp=record.timestamp, time=record.time, track_start=record.track_start, track_end=record.track_end,
        photo_id=record.photo_id, **person_fields(person),
    )


class VideoFace(Protocol):
    """A face seen in a video (a ``FaceRecord``, a ``RecallMatch``): its
    time and its track's span, seconds into the video."""

    @property
    def timestamp(self) -> float | None: ...

    @property
    def track_start(self) -> float | None: ...

    @property
    def track_end(self) -> float | None: ...


def merged_ranges(faces: Iterable[VideoFace]) -> list[list[float]]:
    """The [start, end] time ranges (seconds into a video) of the tracks of
    these video faces (anything with ``timestamp``, ``track_start`` and
    ``track_end``), overlapping ones merged, in order."""
    spans = sorted(
        (f.track_start if f.track_start is not None else f.timestamp or 0.0,
         f.track_end if f.track_end is not None else f.timestamp or 0.0)
        for f in faces
    )
    ranges: list[list[float]] = []
    for start, end in spans:
        if ranges and start <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], end)
        else:
            ranges.append([start, end])
    return ranges


def _by_source(hits: list[tuple[float, int]], records: dict[int, FaceRecord]) -> list[RecallSource]:
    grouped: dict[str, list[tuple[float, FaceRecord]]] = {}
    for dist, face_id in hits:  # nearest first, so each source's first hit is its best
        record = records[face_id]
        grouped.setdefault(record.path, []).append((dist, record))
    sources = []
    for path, rows in grouped.items():
        best_distance, best = rows[0]
        ranges = merged_ranges([r for _, r in rows]) if best.kind == "video" else None
        sources.append(RecallSource.model_construct(
            path=path, kind=best.kind, best_distance=best_distance, best_face_id=best.face_id, hits=len(rows),
            time=best.taken_at, time_ranges=ranges,
        ))
    return sources


def sightings(store: FaceStore, probes: np.ndarray, params: RecallParams, settings: Settings,
              people: PeopleLookup | None = None) -> RecallResponse:
    """The recall use case: ``recall`` with a request's parameters, the
    settings' defaults and bounds (``InvalidRequest`` for a page past
    ``recall.max_limit`` or a time range backwards; ``TooManyHits`` past
    ``recall.max_hits``)."""
    limits = settings.recall
    limit = params.limit or limits.default_limit
    if limit > limits.max_limit:
        raise InvalidRequest(f"limit: must be at most {limits.max_limit} (recall.max_limit)")
    if params.time_from is not None and params.time_to is not None and params.time_from > params.time_to:
        raise InvalidRequest("time_from is after time_to")
    return recall(
        store, probes, max_distance=params.max_distance or limits.max_distance, limit=limit, offset=params.offset,
        filters=RecallFilters(params.path_prefix, params.time_from, params.time_to), group_by=params.group_by,
        fusion=params.fusion, max_hits=limits.max_hits,
        expand_distance=limits.expand_distance if params.expand else None, people=people,
    )
