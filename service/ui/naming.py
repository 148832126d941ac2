"""Naming a face where it is shown: the photo page gives each face a
"Name" field (the names of people offered) and "Save", which makes it a
confirmed face of that person, creating them when the name is new; and
"Not <name>" for a face the index gives to someone. The same corrections
as the person pages (``application.people``), answered in place
(``service.ui.actions``)."""

from __future__ import annotations

from flask import request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from application import people, photos
from application.errors import PhotoNotFound
from service.context import actor, audited, served, state
from service.ui.actions import Outcome, admin, done, run_action
from service.ui.views import UiError, bp, page


@bp.route("/photos/<int:photo_id>", methods=["GET", "POST"])
def photo_page(photo_id: int) -> ResponseReturnValue:
    outcome = Outcome()
    if request.method == "POST":
        outcome = run_action({"name": lambda: _name(photo_id), "not": lambda: _not(photo_id)})
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
                errors=outcome.errors)


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
