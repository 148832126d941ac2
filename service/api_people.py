"""The people endpoints: list and read people and their faces (read
scope); create, rename, forget, assign, reject, merge, undo a merge and
recognise now (admin scope). Thin views over ``application.people``; each
correction is one transaction and one audit line with its face ids."""

from __future__ import annotations

from flask import Response, request

from application import people
from application.schemas import (
    CreatePersonRequest,
    FaceIdsRequest,
    MergeRequest,
    MergesResponse,
    NameRequest,
    PeopleResponse,
    PersonFacesParams,
    RecogniseRequest,
)
from indexer.store.annotations import (
    MergeError,
    NameTakenError,
    NothingToUndoError,
    PersonNotFoundError,
)
from indexer.store.generations import IndexBusyError
from service.api import bp, json_body, ok, query_args
from service.context import actor, audited, served, state
from service.errors import ApiError


def _person_missing(exc: PersonNotFoundError) -> ApiError:
    return ApiError(404, "person_not_found", str(exc))


def _faces_missing(exc: people.FacesNotFound) -> ApiError:
    return ApiError(404, "face_not_found", str(exc))


@bp.get("/people")
def list_people() -> Response:
    return ok(PeopleResponse(people=[people.person_model(p) for p in state().annotations.people()]))


@bp.post("/people")
def create_person() -> Response:
    """A new person whose confirmed faces are the given ones."""
    req = json_body(CreatePersonRequest)
    st = state()
    try:
        made = people.create_person(served().store, st.annotations, req.name, req.face_ids, actor())
    except people.FacesNotFound as exc:
        raise _faces_missing(exc) from None
    except NameTakenError as exc:
        raise ApiError(409, "name_taken", f"{exc}: assign the faces to them, or choose another name") from None
    audited(params={"person_id": made.person.person_id}, face_ids=made.face_ids, results=made.changed)
    response = ok(people.correction_response(made).person)
    response.status_code = 201
    response.headers["Location"] = f"{bp.url_prefix}/people/{made.person.person_id}"
    return response


@bp.get("/people/<int:person_id>")
def get_person(person_id: int) -> Response:
    try:
        return ok(people.person_model(state().annotations.person(person_id)))
    except PersonNotFoundError as exc:
        raise _person_missing(exc) from None


@bp.patch("/people/<int:person_id>")
def rename_person(person_id: int) -> Response:
    req = json_body(NameRequest)
    try:
        person = state().annotations.rename_person(person_id, req.name, actor=actor())
    except PersonNotFoundError as exc:
        raise _person_missing(exc) from None
    except NameTakenError as exc:
        raise ApiError(409, "name_taken", f"{exc}: merge the two people instead (POST .../merge)") from None
    audited(params={"person_id": person_id})
    return ok(people.person_model(person))


@bp.delete("/people/<int:person_id>")
def delete_person(person_id: int) -> Response:
    """Forget the name, its confirmed faces, rejections and suggestions; the faces stay indexed."""
    try:
        state().annotations.delete_person(person_id, actor=actor())
    except PersonNotFoundError as exc:
        raise _person_missing(exc) from None
    audited(params={"person_id": person_id})
    return Response(status=204)


@bp.get("/people/<int:person_id>/faces")
def person_faces(person_id: int) -> Response:
    """A page of the person's faces with their sources."""
    params = PersonFacesParams.model_validate(query_args())
    try:
        return ok(people.person_faces(served().store, state().annotations, person_id, params))
    except PersonNotFoundError as exc:
        raise _person_missing(exc) from None


@bp.post("/people/<int:person_id>/faces")
def assign_faces(person_id: int) -> Response:
    """The faces become confirmed faces of the person, from whoever had them."""
    return _correct(person_id, people.assign)


@bp.post("/people/<int:person_id>/rejections")
def reject_faces(person_id: int) -> Response:
    """These faces are not the person."""
    return _correct(person_id, people.reject)


def _correct(person_id: int, correction) -> Response:
    req = json_body(FaceIdsRequest)
    try:
        done = correction(served().store, state().annotations, person_id, req.face_ids, actor())
    except PersonNotFoundError as exc:
        raise _person_missing(exc) from None
    except people.FacesNotFound as exc:
        raise _faces_missing(exc) from None
    audited(params={"person_id": person_id}, face_ids=done.face_ids, results=done.changed)
    return ok(people.correction_response(done))


@bp.post("/people/<int:person_id>/merge")
def merge_people(person_id: int) -> Response:
    """The other people's faces, rejections and suggestions become this
    person's; the others are gone (undo: ``.../merge/undo``)."""
    req = json_body(MergeRequest)
    try:
        merged = state().annotations.merge(person_id, req.people, actor=actor())
    except PersonNotFoundError as exc:
        raise _person_missing(exc) from None
    except MergeError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    audited(params={"person_id": person_id, "people": req.people}, face_ids=merged.face_ids, results=merged.changed)
    return ok(people.person_model(merged.person))


@bp.post("/people/<int:person_id>/merge/undo")
def undo_merge(person_id: int) -> Response:
    """Undo the person's last merge; faces changed since stay as they are (listed)."""
    st = state()
    try:
        report = st.annotations.undo_merge(person_id, actor=actor())
    except PersonNotFoundError as exc:
        raise _person_missing(exc) from None
    except NothingToUndoError as exc:
        raise ApiError(404, "merge_not_found", str(exc)) from None
    except NameTakenError as exc:
        raise ApiError(409, "name_taken", str(exc)) from None
    audited(params={"person_id": person_id, "merge_id": report.merge_id, "people": report.restored_people},
            face_ids=report.restored_face_ids, results=report.faces_restored)
    return ok(people.undo_response(st.annotations, report))


@bp.get("/people/<int:person_id>/merges")
def list_merges(person_id: int) -> Response:
    try:
        merges = state().annotations.merges(person_id)
    except PersonNotFoundError as exc:
        raise _person_missing(exc) from None
    return ok(MergesResponse(merges=[people.merge_model(m) for m in merges]))


@bp.post("/people/recognise")
def recognise() -> Response:
    """Recognition now: suggestions for new faces and for the people whose
    confirmed faces changed (``everything``: every face near a confirmed one)."""
    req = json_body(RecogniseRequest) if request.content_length else RecogniseRequest()
    st = state()
    st.index.check_now()  # the newest published generation
    try:
        result = people.recognise(st.index.data_dir, served().store, st.annotations, st.settings.recognition,
                                  everything=req.everything)
    except IndexBusyError as exc:
        raise ApiError(409, "index_busy", f"{exc} The reindex recognises new faces when it ends.") from None
    audited(params={"everything": req.everything}, results=result.suggested)
    return ok(result)
