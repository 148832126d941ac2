"""The people pages: ``/people`` (the clusters of the last run as rows of
faces, named first, then unnamed, then strangers; naming, a new
clustering, the cost curve) and ``/people/<id>`` (a person's faces by
source, with the corrections and their sightings over time). The same functions as the API
(``application.people``, ``application.clustering``, ``indexer.erasure``); every
change needs the admin scope."""

from __future__ import annotations

import math

from flask import Response, abort, g, redirect, request, url_for
from flask.typing import ResponseReturnValue

from application import people
from application.clustering import cluster_params, cost_chart_png, cost_response, groups, run_clustering
from application.errors import FacesNotFound
from application.schemas import MAX_CORRECTION_FACES, ClusterRequest, CostParams, PersonFacesParams
from application.timeline import timeline
from indexer.erasure import erase_faces
from indexer.people.annotations import (
    ClusterNotFoundError,
    MergeError,
    NameTakenError,
    NoClusteringError,
    NothingToUndoError,
    PersonNotFoundError,
)
from indexer.store.generations import IndexBusyError
from service.context import actor, audited, served, state
from service.ui import security
from service.ui.views import UiError, bp, page

CLUSTERS_PER_PAGE = 50
FACES_PER_ROW = 12
FACES_PER_PAGE = 200
MAX_STRANGERS = 100  # shown on the last page of clusters


def _admin() -> None:
    if not security.may(g.get("scope"), "admin"):
        raise UiError(403, "This key may only read: changing people needs an administrator key.")


def _page_number() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isdigit() and int(value) >= 1 else 1


@bp.get("/people")
def people_page():
    st = state()
    store = served().store
    everyone = st.annotations.people()
    run = st.annotations.last_run()
    rows: list[dict] = []
    strangers: list[dict] = []
    pages = 1
    number = _page_number()
    if run is not None:
        rows, strangers, pages = _cluster_rows(store, st.annotations, run, number)
    stranger_count = int((run.clusters < 0).sum()) if run is not None else 0
    return page("people.html", title="People", people=everyone, run=run, rows=rows, strangers=strangers,
                stranger_count=stranger_count, page_number=number, pages=pages, per_row=FACES_PER_ROW,
                names=sorted(p.name for p in everyone))


def _cluster_rows(store, annotations, run, number: int) -> tuple[list[dict], list[dict], int]:
    """One page of the run's clusters (named first, then by size), each with
    the faces a row shows, and the strangers on the last page. Only the
    shown faces are read from the index: a run of 2,000 clusters costs one
    page's worth."""
    members, stranger_rows = groups(run)
    people_of = annotations.cluster_people(run.info.run_id)
    order = sorted(range(len(members)), key=lambda c: (c not in people_of, -len(members[c]), c))
    pages = max(1, math.ceil(len(order) / CLUSTERS_PER_PAGE))
    shown = order[(number - 1) * CLUSTERS_PER_PAGE : number * CLUSTERS_PER_PAGE]
    wanted = [run.face_ids[members[c][:FACES_PER_ROW]].tolist() for c in shown]
    strange = run.face_ids[stranger_rows[:MAX_STRANGERS]].tolist() if number == pages else []
    records = store.faces([f for ids in wanted for f in ids] + strange)

    def listed(ids: list[int]) -> list[dict]:
        return [{"face_id": f, "path": records[f].path} for f in ids if f in records]

    rows = []
    for cluster, ids in zip(shown, wanted):
        person = people_of.get(cluster)
        rows.append({"id": cluster, "size": len(members[cluster]), "members": listed(ids),
                     "name": person.name if person else None, "person_id": person.person_id if person else None})
    return rows, listed(strange), pages


@bp.post("/people/clusters/<int:cluster_id>/name")
def name_cluster(cluster_id: int):
    _admin()
    name = request.form.get("name", "").strip()
    try:
        named = state().annotations.name_cluster_faces(cluster_id, name, actor=actor())
    except ValueError as exc:
        raise UiError(422, f"Name: {exc}.") from None
    except (NoClusteringError, ClusterNotFoundError) as exc:
        raise UiError(404, f"{exc}.") from None
    audited(params={"cluster_id": cluster_id, "person_id": named.person.person_id},
            face_ids=named.face_ids, results=named.changed)
    return redirect(url_for("ui.people_page", page=request.form.get("page") or None) + f"#cluster-{cluster_id}")


@bp.post("/people/cluster")
def cluster_again():
    """Run a new clustering (method, k) and show it."""
    _admin()
    st = state()
    k_text = request.form.get("k", "").strip()
    try:
        req = ClusterRequest.model_validate({"method": request.form.get("method") or None,
                                             "k": int(k_text) if k_text else None})
        run_clustering(served().store, st.annotations, cluster_params(req, st.settings.clustering),
                       st.settings.clustering)
    except ValueError as exc:  # pydantic's ValidationError too
        raise UiError(422, f"The clustering cannot run with these settings: {exc}") from None
    return redirect(url_for("ui.people_page"))


@bp.get("/people/cost.png")
def cost_chart():
    st = state()
    try:
        response = cost_response(served().store, st.settings.clustering, CostParams(), st.annotations.last_run_info())
    except ValueError:
        abort(404)
    return Response(cost_chart_png(response), mimetype="image/png", headers={"Cache-Control": "private, no-store"})


@bp.get("/people/<int:person_id>")
def person_page(person_id: int):
    st = state()
    number = _page_number()
    try:
        found = people.attributed_set(served().store, st.annotations, person_id)
    except PersonNotFoundError:
        raise UiError(404, f"There is no person {person_id} (they may have been merged or forgotten).") from None
    faces = people.person_faces(served().store, st.annotations, person_id, PersonFacesParams(
        limit=FACES_PER_PAGE, offset=(number - 1) * FACES_PER_PAGE, order="newest"), found=found)
    others = [p for p in st.annotations.people() if p.person_id != person_id]
    return page("person.html", title=found.person.name, person=found.person, faces=faces, others=others,
                page_number=number, pages=max(1, math.ceil(faces.total / FACES_PER_PAGE)),
                max_faces=MAX_CORRECTION_FACES, timeline=timeline(found.times.values()))


@bp.post("/people/<int:person_id>/faces")
def correct_faces(person_id: int):
    """The selected faces: not this person, confirmed, moved to another
    person (or a new one), or erased for good."""
    _admin()
    st = state()
    action = request.form.get("action", "")
    face_ids = [int(f) for f in request.form.getlist("face_ids") if f.isdigit()]
    if not face_ids:
        raise UiError(422, "Select one or more faces first.")
    if len(face_ids) > MAX_CORRECTION_FACES:
        raise UiError(422, f"Select at most {MAX_CORRECTION_FACES:,} faces at a time.")
    store, who = served().store, actor()
    try:
        if action == "reject":
            done = people.reject(store, st.annotations, person_id, face_ids, who)
        elif action == "confirm":
            done = people.assign(store, st.annotations, person_id, face_ids, who)
        elif action == "move":
            target = request.form.get("target", "").strip()
            new_name = request.form.get("new_name", "").strip()
            if new_name:
                done = people.create_person(store, st.annotations, new_name, face_ids, who)
            elif target.isdigit():
                done = people.assign(store, st.annotations, int(target), face_ids, who)
            else:
                raise UiError(422, "Choose the person to move the faces to, or type a new name.")
        elif action == "erase":
            if request.form.get("confirm_erase") != "yes":
                raise UiError(422, "Erasing is for good: tick “I understand the faces are erased for good” first.")
            return _erase(person_id, face_ids)
        else:
            raise UiError(422, "Choose what to do with the selected faces.")
    except PersonNotFoundError as exc:
        raise UiError(404, f"{exc}.") from None
    except FacesNotFound as exc:
        raise UiError(404, f"{exc} (reload the page).") from None
    except NameTakenError as exc:
        raise UiError(409, f"{exc}: choose them in the list instead.") from None
    except ValueError as exc:
        raise UiError(422, f"{exc}.") from None
    audited(params={"person_id": person_id, "action": action}, face_ids=done.face_ids,
            results=done.changed)
    return redirect(url_for("ui.person_page", person_id=person_id))


def _erase(person_id: int, face_ids: list[int]) -> ResponseReturnValue:
    st = state()
    try:
        report = erase_faces(st.index.data_dir, face_ids, st.annotations, settings=st.settings)
    except IndexBusyError as exc:
        raise UiError(409, f"{exc} Try again when it has finished.") from None
    st.index.check_now()
    audited(params={"person_id": person_id, "action": "erase"}, face_ids=report.face_ids,
            results=report.faces_erased)
    return redirect(url_for("ui.person_page", person_id=person_id))


@bp.post("/people/<int:person_id>/merge")
def merge_person(person_id: int):
    _admin()
    other = request.form.get("other", "")
    if not other.isdigit():
        raise UiError(422, "Choose the person to merge into this one.")
    try:
        merged = state().annotations.merge(person_id, [int(other)], actor=actor())
    except PersonNotFoundError as exc:
        raise UiError(404, f"{exc}.") from None
    except MergeError as exc:
        raise UiError(422, f"{exc}.") from None
    audited(params={"person_id": person_id, "people": [int(other)]},
            face_ids=merged.face_ids, results=merged.changed)
    return redirect(url_for("ui.person_page", person_id=person_id))


@bp.post("/people/<int:person_id>/undo-merge")
def undo_merge(person_id: int):
    _admin()
    try:
        report = state().annotations.undo_merge(person_id, actor=actor())
    except (PersonNotFoundError, NothingToUndoError) as exc:
        raise UiError(404, f"{exc}.") from None
    except NameTakenError as exc:
        raise UiError(409, f"{exc}.") from None
    audited(params={"person_id": person_id, "merge_id": report.merge_id},
            face_ids=report.restored_face_ids, results=report.faces_restored)
    return redirect(url_for("ui.person_page", person_id=person_id))
