"""Naming a face where it is shown: the photo page gives each face a
"Name" field (the names of people offered) and "Save", which makes it a
confirmed face of that person, creating them when the name is new; and
"Not <name>" for a face the index gives to someone; and "Add a face"
for one the detector missed, drawn as a box on the photo
(``application.drawing``). The same corrections
as the person pages (``application.people``), answered in place
(``service.ui.actions``)."""

from __future__ import annotations

from flask import request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from application import drawing, people, photos
from application.errors import PhotoNotFound
from indexer.model import Box
from service.context import actor, audited, served, state
from service.ui.actions import Outcome, admin, done, run_action
from service.ui.views import UiError, bp, page


@bp.route("/photos/<int:photo_id>", methods=["GET", "POST"])
def photo_page(photo_id: int) -> ResponseReturnValue:
    outcome = Outcome()
    if request.method == "POST":
        outcome = run_action({"name": lambda: _name(photo_id), "not": lambda: _not(photo_id),
                              "draw": lambda: _draw(photo_id)})
        if outcome.response is not None:
            return outcome.response
    st = state()
    try:
        photo = photos.photo_response(served().store, st.annotations, photo_id)
    except PhotoNotFound:
        raise UiError(404, f"There is no photo {photo_id} in the index "
                           "(it may have been removed or changed).") from None
    return page("photo.html", status=outcome.status, title=photo.path.rsplit("/", 1)[-1], photo=photo,
                names=sorted(p.name for p in st.annotations.people()),
                typed={int(request.form.get("face_id", "0") or 0): request.form.get("name", "")},
                drawing={k: request.form.get(k, "") for k in (*BOX_FIELDS, "drawn_name")}, errors=outcome.errors)


BOX_FIELDS = ("left", "top", "width", "height")  # the drawn box's fields, in the photo's pixels


def _draw(photo_id: int) -> Response:
    """A face the detector missed, drawn (or typed) as a box: added to the
    index, and named when a name is typed."""
    admin()
    values = [request.form.get(k, "").strip() for k in BOX_FIELDS]
    if not all(v.isdigit() for v in values):
        raise UiError(422, "Draw a box around the face on the photo first (or type its left, top, width and "
                           "height in pixels).")
    left, top, width, height = map(int, values)
    st = state()
    drawn = drawing.draw_face(st.index, st.annotations, st.model, st.settings, photo_id,
                              Box(top=top, right=left + width, bottom=top + height, left=left),
                              request.form.get("drawn_name", ""), actor())
    audited(params={"photo_id": photo_id, "action": "draw"}, face_ids=[drawn.face.face_id], results=1)
    rev = drawn.named.rev if drawn.named else None
    return done(url_for("ui.photo_page", photo_id=photo_id), rev, drawn=drawn.face.face_id)


def _face_of(photo_id: int) -> int:
    """The posted face, which must be one of this photo's."""
    face_id = request.form.get("face_id", "")
    record = served().store.photo(photo_id)
    if not face_id.isdigit() or record is None or int(face_id) not in {f.face_id for f in record.faces}:
        raise UiError(404, "That face is no longer in this photo: reload the page.")
    return int(face_id)


def _name(photo_id: int) -> Response:
    """The face becomes a confirmed face of the person typed (new: created)."""
    admin()
    return name_face(_face_of(photo_id), url_for("ui.photo_page", photo_id=photo_id))


def name_face(face_id: int, back: str) -> Response:
    """Any face shown on a page, named where it is: it becomes a confirmed
    face of the person typed (``name``; a new name: a new person), and the
    page at ``back`` says so, with Undo."""
    name = request.form.get("name", "").strip()
    if not name:
        raise UiError(422, "Type who this is first.")
    st = state()
    known = st.annotations.person_by_name(name)
    if known is None:
        fixed = people.create_person(served().store, st.annotations, name, [face_id], actor())
    else:
        fixed = people.assign(served().store, st.annotations, known.person_id, [face_id], actor())
    audited(params={"person_id": fixed.person.person_id, "action": "name"}, face_ids=[face_id],
            results=fixed.changed)
    return done(back, fixed.rev)


def _not(photo_id: int) -> Response:
    """The face is not the person the index gives it to."""
    admin()
    face_id = _face_of(photo_id)
    st = state()
    attributed = st.annotations.attributions([face_id]).get(face_id)
    if attributed is None:
        raise UiError(409, "Nobody is given this face now: there is nothing to say it is not.")
    fixed = people.reject(served().store, st.annotations, attributed.person_id, [face_id], actor())
    audited(params={"photo_id": photo_id, "person_id": attributed.person_id, "action": "reject"},
            face_ids=[face_id], results=fixed.changed)
    return done(url_for("ui.photo_page", photo_id=photo_id), fixed.rev)
