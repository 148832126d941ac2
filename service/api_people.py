"""The people endpoints: list and read people and their faces (read
scope); create, rename, forget, assign, reject, merge, undo a merge and
recognise now (admin scope). Thin views over ``application.people``; each
correction is one transaction and one audit line with its face ids."""

from __future__ import annotations

from flask import Response, request

from application import people
from application.explanation_schemas import LookalikeModel, LookalikesParams, LookalikesResponse
from application.lookalikes import lookalikes
from application.schemas import (
    CorrectionResponse,
    CorrectionsParams,
    CorrectionsResponse,
    CreatePersonRequest,
    FaceIdsRequest,
    MergeRequest,
    MergesResponse,
    NameRequest,
    PeopleResponse,
    PersonFacesParams,
    PersonFacesResponse,
    PersonModel,
    RecogniseRequest,
    RecogniseResponse,
    UndoMergeResponse,
    UndoneResponse,
)
from service.api import api, bp, json_body, ok, query_args
from service.context import actor, audited, served, state


@api.get("/people", operation_id="listPeople", scope="read", response=PeopleResponse,
         summary="Every named person, by name, with their faces counted by source")
def list_people() -> Response:
    return ok(PeopleResponse(people=[people.person_model(p) for p in state().annotations.people()]))


@api.post("/people", operation_id="createPerson", scope="admin", response=PersonModel, status=201,
          json=CreatePersonRequest, errors=(400, 404, 409),
          summary="Create a person from faces (they become the person's confirmed faces)")
def create_person() -> Response:
    """A new person whose confirmed faces are the given ones."""
    req = json_body(CreatePersonRequest)
    st = state()
    made = people.create_person(served().store, st.annotations, req.name, req.face_ids, actor())
    audited(params={"person_id": made.person.person_id}, face_ids=made.face_ids, results=made.changed)
    response = ok(people.correction_response(made).person)
    response.status_code = 201
    response.headers["Location"] = f"{bp.url_prefix}/people/{made.person.person_id}"
    return response


@api.get("/people/<int:person_id>", operation_id="getPerson", scope="read", response=PersonModel,
         summary="One person")
def get_person(person_id: int) -> Response:
    return ok(people.person_model(state().annotations.person(person_id)))


@api.get("/people/<int:person_id>/lookalikes", operation_id="getLookalikes", scope="read",
         response=LookalikesResponse, query=LookalikesParams,
         summary="The nearest other people, nearest first, with the nearest pair of their faces",
         description="Distance between two people (Euclidean, over confirmed faces): the mean of the 3 nearest pairs, "
         "at most one pair per face of the other person. A person with no confirmed face has none. "
         "`docs/explanations.md`.")
def get_lookalikes(person_id: int) -> Response:
    query = LookalikesParams.model_validate(query_args())
    found = lookalikes(served().store, state().annotations, person_id, query.limit)
    audited(results=len(found))
    return ok(LookalikesResponse(people=[LookalikeModel.of(f) for f in found]))


@api.patch("/people/<int:person_id>", operation_id="renamePerson", scope="admin", response=PersonModel,
           json=NameRequest, errors=(400, 409), summary="Rename a person")
def rename_person(person_id: int) -> Response:
    req = json_body(NameRequest)
    person = people.rename_person(state().annotations, person_id, req.name, actor())
    audited(params={"person_id": person_id})
    return ok(people.person_model(person))


@api.delete("/people/<int:person_id>", operation_id="deletePerson", scope="admin", status=204,
            summary="Forget a person: name, confirmed faces, rejections, suggestions (the faces stay indexed)")
def delete_person(person_id: int) -> Response:
    """Forget the name, its confirmed faces, rejections and suggestions; the faces stay indexed."""
    state().annotations.delete_person(person_id, actor=actor())
    audited(params={"person_id": person_id})
    return Response(status=204)


@api.get("/people/<int:person_id>/faces", operation_id="getPersonFaces", scope="read",
         response=PersonFacesResponse, query=PersonFacesParams,
         summary="A page of the person's faces, each with its source (confirmed, cluster, suggested)")
def person_faces(person_id: int) -> Response:
    """A page of the person's faces with their sources."""
    params = PersonFacesParams.model_validate(query_args())
    return ok(people.person_faces(served().store, state().annotations, person_id, params))


@api.post("/people/<int:person_id>/faces", operation_id="assignFaces", scope="admin", response=CorrectionResponse,
          json=FaceIdsRequest, errors=(400,),
          summary="Assign (move) faces to the person: they become confirmed faces of the person")
def assign_faces(person_id: int) -> Response:
    """The faces become confirmed faces of the person, from whoever had them."""
    return _correct(person_id, people.assign)


@api.post("/people/<int:person_id>/rejections", operation_id="rejectFaces", scope="admin",
          response=CorrectionResponse, json=FaceIdsRequest, errors=(400,),
          summary="Not this person: the faces are never attributed to the person again by a cluster or a "
          "suggestion")
def reject_faces(person_id: int) -> Response:
    """These faces are not the person."""
    return _correct(person_id, people.reject)


def _correct(person_id: int, correction) -> Response:
    req = json_body(FaceIdsRequest)
    done = correction(served().store, state().annotations, person_id, req.face_ids, actor())
    audited(params={"person_id": person_id}, face_ids=done.face_ids, results=done.changed)
    return ok(people.correction_response(done))


@api.post("/people/<int:person_id>/merge", operation_id="mergePeople", scope="admin", response=PersonModel,
          json=MergeRequest, errors=(400,),
          summary="Merge other people into this one (their faces, rejections and suggestions move; they are gone)")
def merge_people(person_id: int) -> Response:
    """The other people's faces, rejections and suggestions become this
    person's; the others are gone (undo: ``.../merge/undo``)."""
    req = json_body(MergeRequest)
    merged = state().annotations.merge(person_id, req.people, actor=actor())
    audited(params={"person_id": person_id, "people": req.people}, face_ids=merged.face_ids, results=merged.changed)
    return ok(people.person_model(merged.person))


@api.post("/people/<int:person_id>/merge/undo", operation_id="undoMerge", scope="admin",
          response=UndoMergeResponse, errors=(409,),
          summary="Undo the person's last merge (faces changed since stay as they are, and are listed)")
def undo_merge(person_id: int) -> Response:
    """Undo the person's last merge; faces changed since stay as they are (listed)."""
    st = state()
    report = st.annotations.undo_merge(person_id, actor=actor())
    audited(params={"person_id": person_id, "merge_id": report.merge_id, "people": report.restored_people},
            face_ids=report.restored_face_ids, results=report.faces_restored)
    return ok(people.undo_response(st.annotations, report))


@api.get("/people/<int:person_id>/merges", operation_id="getMerges", scope="read", response=MergesResponse,
         summary="The merges into the person, newest first")
def list_merges(person_id: int) -> Response:
    merges = state().annotations.merges(person_id)
    return ok(MergesResponse(merges=[people.merge_model(m) for m in merges]))


@api.post("/people/recognise", operation_id="recognise", scope="admin", response=RecogniseResponse,
          json=RecogniseRequest, body_required=False, errors=(400, 409),
          summary="Recognition now: suggest named people for new faces and for people whose confirmed faces "
          "changed")
def recognise() -> Response:
    """Recognition now: suggestions for new faces and for the people whose
    confirmed faces changed (``everything``: every face near a confirmed one)."""
    req = json_body(RecogniseRequest) if request.content_length else RecogniseRequest()
    st = state()
    st.index.check_now()  # the newest published generation
    result = people.recognise(st.index.data_dir, served().store, st.annotations, st.settings.recognition,
                              everything=req.everything)
    audited(params={"everything": req.everything}, results=result.suggested)
    return ok(result)


@api.get("/corrections", operation_id="listCorrections", scope="read", response=CorrectionsResponse,
         query=CorrectionsParams, summary="The last corrections of people, newest first",
         description="Each with whether it can be undone now (`undoable`); docs/people.md.")
def list_corrections() -> Response:
    params = CorrectionsParams.model_validate(query_args())
    return ok(people.corrections_response(state().annotations, params.limit))


@api.post("/corrections/<int:rev>/undo", operation_id="undoCorrection", scope="admin", response=UndoneResponse,
          errors=(404, 409), summary="Undo a correction (an undo undone redoes it)",
          description="What nothing has changed since goes back exactly; faces changed since are left as they are "
          "(`left_as_they_are`). 404 `merge_not_found` for a correction unknown, already undone, made before "
          "corrections were kept, or a merge before a later one; 409 `name_taken` when a person it brings back "
          "lost their name.")
def undo_correction(rev: int) -> Response:
    undone = people.undo(state().annotations, rev, actor())
    audited(params={"undo": rev}, face_ids=undone.face_ids, results=len(undone.face_ids))
    return ok(people.undone_response(undone))
