"""The pages that show the evidence: ``/faces/<id>/why`` (why a face is
who it is), ``/compare/<a>/<b>`` (two faces side by side with their
similarity maps), ``/people/<id>/lookalikes`` ("Looks like": the nearest
other people) and ``/lookalikes`` (the strangers and people seen once in
rows of faces that look alike). Read-only: the same functions as the API
(``application.explanations``, ``application.compare``,
``application.lookalikes``)."""

from __future__ import annotations

from flask import Response
from flask.typing import ResponseReturnValue

from application.compare import compare_faces, comparison_png, strongest_cells
from application.errors import FaceNotFound, PhotoUnavailable
from application.explanations import explain_face
from application.lookalikes import LIKENESS_DISTANCE, likeness_rows, lookalikes
from indexer.people.annotations import PersonNotFoundError
from service.context import audited, served, state
from service.ui.views import UiError, bp, page

LOOKALIKES_SHOWN = 10


def _face_missing(face_id: int) -> UiError:
    return UiError(404, f"There is no face {face_id} in the index (it may have been removed).")


@bp.get("/faces/<int:face_id>/why")
def why_page(face_id: int) -> ResponseReturnValue:
    st = state()
    store = served().store
    try:
        explanation = explain_face(store, st.annotations, face_id, st.settings)
    except FaceNotFound:
        raise _face_missing(face_id) from None
    records = store.faces([face_id, *[e.face_id for e in explanation.evidence]])
    return page("why.html", title=f"Why this face is {explanation.person or 'nobody yet'}", e=explanation,
                records=records)


def _comparison(face_a: int, face_b: int):
    st = state()
    try:
        return compare_faces(served().store, st.model.encoder, face_a, face_b,
                             max_pixels=st.settings.indexer.max_image_pixels)
    except FaceNotFound as exc:
        raise UiError(404, f"{exc}: it may have been removed.") from None
    except PhotoUnavailable as exc:
        raise UiError(404, f"These faces cannot be compared now: {exc}.") from None


@bp.get("/compare/<int:face_a>/<int:face_b>")
def compare_page(face_a: int, face_b: int) -> ResponseReturnValue:
    """The distance in words and numbers; the picture is fetched by its own URL."""
    st = state()
    store = served().store
    records = store.faces([face_a, face_b])
    for face_id in (face_a, face_b):
        if face_id not in records:
            raise _face_missing(face_id)
    result = _comparison(face_a, face_b)
    people = st.annotations.attributions([face_a, face_b])
    return page("compare.html", title="Are these the same person?", c=result, records=records, people=people,
                strongest=strongest_cells(result), same_distance=st.settings.recognition.max_distance)


@bp.get("/compare/<int:face_a>/<int:face_b>.png")
def compare_picture(face_a: int, face_b: int) -> Response:
    return Response(comparison_png(_comparison(face_a, face_b)), mimetype="image/png")


@bp.get("/people/<int:person_id>/lookalikes")
def lookalikes_page(person_id: int) -> ResponseReturnValue:
    st = state()
    try:
        person = st.annotations.person(person_id)
        found = lookalikes(served().store, st.annotations, person_id, LOOKALIKES_SHOWN)
    except PersonNotFoundError:
        raise UiError(404, f"There is no person {person_id} (they may have been merged or forgotten).") from None
    audited(results=len(found))
    records = served().store.faces([f for x in found for f in (x.face_id, x.other_face_id)])
    return page("lookalikes.html", title=f"Who looks like {person.name}", person=person, found=found,
                records=records)


@bp.get("/lookalikes")
def likeness_page() -> ResponseReturnValue:
    rows, alone = likeness_rows(served().store, state().annotations)
    audited(results=sum(len(r.face_ids) for r in rows))
    records = served().store.faces([f for r in rows for f in r.face_ids])
    return page("likeness.html", title="Strangers who look alike", rows=rows, alone=alone, records=records,
                cut=LIKENESS_DISTANCE)
