"""The sightings page, ``/recall``: every sighting of one person (recall
search, ``application.recall``), grouped by source file, with video time
ranges, filters by camera folder and time, a timeline, and "search again"
with the sightings one is sure of as extra probes.

The probe faces of a search travel with the page as a hidden field (their
float32 embeddings, base64), so that "Search again" works as a plain form,
without uploading the photos again."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import PurePosixPath

import numpy as np
from flask import request

from application.audit import hash_embeddings
from application.errors import NoFaceFound, TooManyHits
from application.probes import probe_face_of_photo
from application.recall import RecallFilters, merged_ranges, recall
from application.timeline import faces_timeline
from application.tradeoff import tradeoff_curve
from indexer.images import ImageError
from indexer.model import EMBEDDING_DIM
from service.context import audited, served, state
from service.ui.views import UiError, bp, page

MAX_SIGHTINGS = 1000  # matches read for one page (recall.max_limit)
FACES_PER_SOURCE = 12


def _probe_field(probes: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(probes, dtype="<f4").tobytes()).decode()


def _probes_from_field(text: str) -> np.ndarray:
    try:
        raw = base64.b64decode(text.encode(), validate=True)
    except ValueError:
        raise UiError(400, "The earlier probes could not be read: search with the photos again.") from None
    x = np.frombuffer(raw, dtype="<f4")
    if len(x) == 0 or len(x) % EMBEDDING_DIM or not np.isfinite(x).all():
        raise UiError(400, "The earlier probes could not be read: search with the photos again.")
    return x.reshape(-1, EMBEDDING_DIM).astype(np.float32)


def _time(text: str | None, name: str) -> float | None:
    """A ``datetime-local`` field (read as UTC, like EXIF times) as POSIX seconds."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise UiError(422, f"{name}: not a date and time.") from None


@bp.route("/recall", methods=["GET", "POST"])
def sightings_page():
    st = state()
    form = {k: v for k, v in request.form.items() if k != "csrf_token"}
    context: dict = {"title": "Sightings", "form": form, "sources": None,
                     "config_distance": st.settings.recall.max_distance,
                     "curve": tradeoff_curve(served().store, st.annotations)}
    if request.method != "POST":
        return page("recall.html", **context)
    index = served()
    probes: list[np.ndarray] = []
    if form.get("probes"):
        probes.append(_probes_from_field(form["probes"]))
    chosen = [int(f) for f in request.form.getlist("sure") if f.isdigit()]
    if chosen:
        known = [f for f in chosen if f in index.store.faces(chosen)]
        if known:
            probes.append(index.store.vectors_of(np.array(known)))
    uploads = [u for u in request.files.getlist("photo") if u.filename]
    if len(uploads) > st.settings.recall.max_probes:
        raise UiError(422, f"At most {st.settings.recall.max_probes} photos at a time.")
    detection = st.query_detection or index.detection
    shown: list[dict] = [{"src": None, "face_id": f} for f in chosen]
    for upload in uploads:
        try:
            vector, jpeg = probe_face_of_photo(st.model, upload.read(), st.settings, detection)
            probes.append(vector[None])
            shown.append({"src": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode(),
                          "name": upload.filename})
        except ImageError as exc:
            status = 413 if exc.code == "image_too_large" else 400
            raise UiError(status, f"{upload.filename} cannot be searched: {exc}.") from None
        except NoFaceFound:
            raise UiError(422, f"No face was found in {upload.filename}.") from None
    if not probes:
        raise UiError(400, "Choose one or more photos of the person.")
    x = np.vstack(probes)[: st.settings.recall.max_probes]
    try:
        max_distance = float(form["max_distance"]) if form.get("max_distance") else st.settings.recall.max_distance
    except ValueError:
        raise UiError(422, "Maximum distance: not a number.") from None
    if not 0 < max_distance <= 1:
        raise UiError(422, "Maximum distance: between 0 and 1.")
    filters = RecallFilters(form.get("path_prefix") or None, _time(form.get("time_from"), "From"),
                            _time(form.get("time_to"), "To"))
    try:
        found = recall(index.store, x, max_distance=max_distance, limit=MAX_SIGHTINGS, offset=0, filters=filters,
                       group_by=None, fusion="mean" if len(x) > 1 else "any", max_hits=st.settings.recall.max_hits,
                       people=st.annotations.attributions)
    except TooManyHits as exc:
        raise UiError(422, f"{exc}.") from None
    audited(query=hash_embeddings(x), params={k: v for k, v in form.items() if k != "probes"},
            results=len(found.matches), total=found.total)
    context.update(sources=_by_folder(found.matches), total=found.total, shown=len(found.matches),
                   files=len({m.path for m in found.matches}), probes=_probe_field(x), probe_count=len(x),
                   probe_faces=shown, apart=_apart(x, max_distance), max_distance=max_distance,
                   timeline=faces_timeline(index.store, {m.face_id: m.time for m in found.matches}),
                   per_source=FACES_PER_SOURCE)
    return page("recall.html", partial="recall_results.html", **context)


def _by_folder(matches) -> list[dict]:
    """Sightings grouped by folder (a camera's, an album's), in the order of
    their best match; in each, by file, with a video's time ranges
    (``merged_ranges``)."""
    folders: dict[str, dict] = {}
    for m in matches:
        folder = folders.setdefault(str(PurePosixPath(m.path).parent), {"folder": str(PurePosixPath(m.path).parent),
                                                                           "files": {}, "faces": 0})
        folder["files"].setdefault(m.path, {"path": m.path, "photo_id": m.photo_id, "matches": []})["matches"].append(m)
        folder["faces"] += 1
    for folder in folders.values():
        folder["files"] = list(folder["files"].values())
        for source in folder["files"]:
            source["ranges"] = merged_ranges([m for m in source["matches"] if m.timestamp is not None])
    return list(folders.values())


def _apart(probes: np.ndarray, max_distance: float) -> list[tuple[int, int, float]]:
    """Pairs of probes (numbered from 1) farther apart than ``max_distance``:
    they may be different people, whose sightings the page mixes."""
    d = np.linalg.norm(probes[:, None, :] - probes[None, :, :], axis=2)
    return [(i + 1, j + 1, float(d[i, j])) for i in range(len(probes)) for j in range(i + 1, len(probes))
            if d[i, j] > max_distance]
