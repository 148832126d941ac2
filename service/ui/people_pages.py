"""The people pages: ``/people`` (the named people, then the clusters of
the last run as rows of faces, named first, then unnamed, then strangers;
naming, a new clustering, the cost curve), ``/clusters/<id>`` (one cluster
whole, to take faces out of it before naming it) and ``/people/<id>`` (a
person's faces, least like them first, with the corrections and their
sightings over time). The same functions as the API (``application.people``,
``application.clustering``, ``indexer.erasure``); every change needs the
admin scope and answers on the page it came from (``service.ui.actions``)."""

from __future__ import annotations

import math

import numpy as np
from flask import Response, abort, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response as BaseResponse

from application import people
from application.clustering import cluster_params, cost_chart_png, cost_response, groups, run_clustering
from application.errors import FacesNotFound
from application.name_hints import face_hints, group_hint
from application.schemas import MAX_CORRECTION_FACES, ClusterRequest, CostParams, PersonFacesParams
from application.timeline import faces_timeline
from indexer.erasure import erase_faces
from indexer.people.annotations import ClusterNotFoundError, Correction, NoClusteringError, PersonNotFoundError
from indexer.store.generations import IndexBusyError
from service.context import actor, audited, served, state
from service.ui.actions import Ask, Outcome, admin, done, run_action, selected_faces
from service.ui.naming import name_face
from service.ui.views import UiError, bp, page

CLUSTERS_PER_PAGE = 50
FACES_PER_ROW = 12
FACES_PER_PAGE = 200
CLUSTER_FACES = 500  # shown on a cluster's page
MAX_STRANGERS = 100  # shown on the last page of clusters
ORDERS = {"farthest": "least like them first", "newest": "newest first"}


def _page_number() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isdigit() and int(value) >= 1 else 1


# -- /people: everyone, and the clusters of the last run ---------------------------


@bp.route("/people", methods=["GET", "POST"])
def people_page() -> ResponseReturnValue:
    outcome = Outcome()
    if request.method == "POST":
        outcome = run_action({"name": _name_cluster, "cluster": _cluster_again, "name_face": _name_stranger})
        if outcome.response is not None:
            return outcome.response
    st = state()
    store = served().store
    everyone = st.annotations.people()
    run = st.annotations.last_run()
    rows: list[dict] = []
    strangers: list[dict] = []
    pages = 1
    number = _page_number()
    stranger_count = 0
    if run is not None:
        named = np.array(sorted(st.annotations.confirmed()), dtype=np.int64)
        unnamed = (run.clusters < 0) & ~np.isin(run.face_ids, named)  # a stranger named is one no more
        rows, strangers, pages = _cluster_rows(store, st.annotations, run, number, unnamed)
        stranger_count = int(unnamed.sum())
        hints = face_hints(store, st.annotations, [s["face_id"] for s in strangers], st.settings.recognition)
        strangers = [{**s, "hint": hints.get(s["face_id"])} for s in strangers]
    return page("people.html", status=outcome.status, title="People", people=everyone, run=run, rows=rows,
                strangers=strangers, stranger_count=stranger_count, page_number=number, pages=pages,
                per_row=FACES_PER_ROW, names=sorted(p.name for p in everyone),
                errors=outcome.errors)


def _cluster_rows(store, annotations, run, number: int,
                  unnamed: np.ndarray) -> tuple[list[dict], list[dict], int]:
    """One page of the run's clusters (named first, then by size), each with
    the faces a row shows, and the strangers nobody has named
    (``unnamed``, a mask over the run's rows) on the last page. Only the
    shown faces are read from the index: a run of 2,000 clusters costs one
    page's worth."""
    members, stranger_rows = groups(run)
    people_of = annotations.cluster_people(run.info.run_id)
    order = sorted(range(len(members)), key=lambda c: (c not in people_of, -len(members[c]), c))
    pages = max(1, math.ceil(len(order) / CLUSTERS_PER_PAGE))
    shown = order[(number - 1) * CLUSTERS_PER_PAGE : number * CLUSTERS_PER_PAGE]
    wanted = [run.face_ids[members[c][:FACES_PER_ROW]].tolist() for c in shown]
    stranger_rows = stranger_rows[unnamed[stranger_rows]]
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


def _name_cluster() -> BaseResponse:
    admin()
    cluster = request.form.get("cluster", "")
    if not cluster.isdigit():
        raise UiError(422, "Choose the group to name.")
    named = _named(int(cluster))
    return done(url_for("ui.people_page", page=request.form.get("page") or None), named.rev)


def _named(cluster: int) -> Correction:
    """Name ``cluster`` of the last run with the posted name."""
    name = request.form.get("name", "").strip()
    if not name:
        raise UiError(422, "Type the name of the person in this group first.")
    try:
        named = state().annotations.name_cluster_faces(cluster, name, actor=actor())
    except (NoClusteringError, ClusterNotFoundError) as exc:
        raise UiError(404, f"{exc} (the faces were clustered again meanwhile: reload the page).") from None
    audited(params={"cluster_id": cluster, "person_id": named.person.person_id}, face_ids=named.face_ids,
            results=named.changed)
    return named


def _name_stranger() -> BaseResponse:
    """A stranger of the last run named where it is shown."""
    admin()
    face = request.form.get("face_id", "")
    if not face.isdigit() or int(face) not in served().store.faces([int(face)]):
        raise UiError(404, "That face is no longer in the index: reload the page.")
    return name_face(int(face), url_for("ui.people_page", page=request.form.get("page") or None) + "#strangers")


def _cluster_again() -> BaseResponse:
    """Run a new clustering (method, k) and show it."""
    admin()
    st = state()
    k_text = request.form.get("k", "").strip()
    try:
        req = ClusterRequest.model_validate({"method": request.form.get("method") or None,
                                             "k": int(k_text) if k_text else None})
        run = run_clustering(served().store, st.annotations, cluster_params(req, st.settings.clustering),
                             st.settings.clustering, actor())
    except ValueError as exc:  # pydantic's ValidationError too
        raise UiError(422, f"The clustering cannot run with these settings: {exc}") from None
    return done(url_for("ui.people_page"), st.annotations.run_correction(run.info.run_id), groups=run.info.k)


@bp.get("/people/cost.png")
def cost_chart() -> Response:
    st = state()
    last = st.annotations.last_run_info()
    try:
        response = cost_response(served().store, st.settings.clustering, CostParams(), last)
    except ValueError:
        abort(404)
    asked = last.params.get("k_requested") if last is not None else None
    if asked:  # the k this clustering was asked for is the one to mark
        response = response.model_copy(update={"chosen_k": asked})
    return Response(cost_chart_png(response), mimetype="image/png", headers={"Cache-Control": "private, no-store"})


# -- /clusters/<id>: one group, reviewed before it is named --------------------------


@bp.route("/clusters/<int:cluster_id>", methods=["GET", "POST"])
def cluster_page(cluster_id: int) -> ResponseReturnValue:
    outcome = Outcome()
    if request.method == "POST":
        outcome = run_action({"remove": lambda: _remove(cluster_id), "name": lambda: _name_here(cluster_id)})
        if outcome.response is not None:
            return outcome.response
    st = state()
    run = st.annotations.last_run()
    if run is None or not 0 <= cluster_id < run.info.k:
        raise UiError(404, f"There is no group {cluster_id} in the last clustering: it may have been run again.")
    members, _ = groups(run)
    rows = members[cluster_id]
    ids = run.face_ids[rows[:CLUSTER_FACES]].tolist()
    records = served().store.faces(ids)
    faces = [{"face_id": f, "photo_id": records[f].photo_id, "path": records[f].path, "time": records[f].time,
              "distance": float(d)} for f, d in zip(ids, run.distances[rows[:CLUSTER_FACES]].tolist())
             if f in records]
    person = st.annotations.cluster_people(run.info.run_id).get(cluster_id)
    everyone = st.annotations.people()
    hint = None if person else group_hint(served().store, st.annotations, ids, st.settings.recognition)
    return page("cluster.html", status=outcome.status, title=person.name if person else f"Group {cluster_id}",
                cluster_id=cluster_id, person=person, faces=faces, size=len(rows), run=run, hint=hint,
                names=sorted(p.name for p in everyone), selected=set(selected_faces()),
                errors=outcome.errors)


def _remove(cluster_id: int) -> BaseResponse:
    admin()
    face_ids = _chosen_faces()
    try:
        rev, removed = state().annotations.remove_from_cluster(cluster_id, face_ids, actor=actor())
    except (NoClusteringError, ClusterNotFoundError) as exc:
        raise UiError(404, f"{exc} (the faces were clustered again meanwhile: reload the page).") from None
    if not removed:
        raise UiError(409, "None of the selected faces is in this group any more: reload the page.")
    audited(params={"cluster_id": cluster_id, "action": "remove"}, face_ids=removed, results=len(removed))
    return done(url_for("ui.cluster_page", cluster_id=cluster_id), rev)


def _name_here(cluster_id: int) -> BaseResponse:
    """Named, the next group to name opens (largest first, as ``/people``
    lists them), saying what was named, with Undo; the last one named goes
    back to ``/people``."""
    admin()
    named = _named(cluster_id)
    following = _next_to_name(cluster_id)
    return done(url_for("ui.cluster_page", cluster_id=following) if following is not None
                else url_for("ui.people_page"), named.rev)


def _next_to_name(after: int) -> int | None:
    """The group that follows ``after`` among the unnamed groups of the
    last run in ``/people``'s order (by size), wrapping; None when every
    group is named."""
    st = state()
    run = st.annotations.last_run()
    if run is None:
        return None
    members, _ = groups(run)
    named = st.annotations.cluster_people(run.info.run_id)
    order = sorted(range(len(members)), key=lambda c: (-len(members[c]), c))
    unnamed = [c for c in order if c not in named and len(members[c])]
    if not unnamed:
        return None
    place = order.index(after) if after in order else -1
    later = [c for c in unnamed if order.index(c) > place]
    return (later or unnamed)[0]


# -- /people/<id>: one person's faces -----------------------------------------------


@bp.route("/people/<int:person_id>", methods=["GET", "POST"])
def person_page(person_id: int) -> ResponseReturnValue:
    outcome = Outcome()
    if request.method == "POST":
        outcome = run_action({
            "reject": lambda: _correct(person_id, "reject"), "confirm": lambda: _correct(person_id, "confirm"),
            "move": lambda: _correct(person_id, "move"), "erase": lambda: _erase(person_id),
            "merge": lambda: _merge(person_id), "cover": lambda: _cover(person_id),
        })
        if outcome.response is not None:
            return outcome.response
    st = state()
    number = _page_number()
    order = request.args.get("order", "farthest")
    order = order if order in ORDERS else "farthest"
    try:
        found = people.attributed_set(served().store, st.annotations, person_id)
    except PersonNotFoundError:
        raise UiError(404, f"There is no person {person_id} (they may have been merged or forgotten).") from None
    faces = people.person_faces(served().store, st.annotations, person_id, PersonFacesParams(
        limit=FACES_PER_PAGE, offset=(number - 1) * FACES_PER_PAGE, order=order), found=found)
    others = [p for p in st.annotations.people() if p.person_id != person_id]
    return page("person.html", status=outcome.status, title=found.person.name, person=found.person, faces=faces,
                others=others, page_number=number, pages=max(1, math.ceil(faces.total / FACES_PER_PAGE)),
                max_faces=MAX_CORRECTION_FACES, timeline=faces_timeline(served().store, found.times), order=order,
                orders=ORDERS, selected=set(selected_faces()), ask_merge=outcome.asked,
                errors=outcome.errors)


def _chosen_faces() -> list[int]:
    face_ids = selected_faces()
    if not face_ids:
        raise UiError(422, "Select one or more faces first: click a face to select it.")
    if len(face_ids) > MAX_CORRECTION_FACES:
        raise UiError(422, f"Select at most {MAX_CORRECTION_FACES:,} faces at a time.")
    return face_ids


def _correct(person_id: int, action: str) -> BaseResponse:
    """The selected faces: not this person, confirmed, or moved to another
    person (or a new one)."""
    admin()
    face_ids = _chosen_faces()
    st = state()
    store, who = served().store, actor()
    try:
        if action == "reject":
            fixed = people.reject(store, st.annotations, person_id, face_ids, who)
        elif action == "confirm":
            fixed = people.assign(store, st.annotations, person_id, face_ids, who)
        else:
            target = request.form.get("target", "").strip()
            new_name = request.form.get("new_name", "").strip()
            if new_name:
                fixed = people.create_person(store, st.annotations, new_name, face_ids, who)
            elif target.isdigit():
                fixed = people.assign(store, st.annotations, int(target), face_ids, who)
            else:
                raise UiError(422, "Choose the person to move the faces to, or type a new name.")
    except FacesNotFound as exc:
        raise UiError(404, f"{exc}: they were erased meanwhile (reload the page).") from None
    audited(params={"person_id": person_id, "action": action}, face_ids=fixed.face_ids, results=fixed.changed)
    return done(url_for("ui.person_page", person_id=person_id, order=request.args.get("order")), fixed.rev)


def _cover(person_id: int) -> BaseResponse:
    """Show the person with the one face selected."""
    admin()
    face_ids = _chosen_faces()
    if len(face_ids) != 1:
        raise UiError(422, "Select one face only: the one to show them with.")
    people.check_faces(served().store, face_ids)
    rev = state().annotations.set_cover(person_id, face_ids[0], actor=actor())
    audited(params={"person_id": person_id, "action": "cover"}, face_ids=face_ids, results=1)
    return done(url_for("ui.person_page", person_id=person_id, order=request.args.get("order")), rev)


def _erase(person_id: int) -> BaseResponse:
    admin()
    face_ids = _chosen_faces()
    if request.form.get("confirm_erase") != "yes":
        raise UiError(422, "Erasing is for good: tick “I understand the faces are erased for good” first.")
    st = state()
    try:
        report = erase_faces(st.index.data_dir, face_ids, st.annotations, settings=st.settings)
    except IndexBusyError as exc:
        raise UiError(409, f"{exc} Try again when it has finished.") from None
    st.index.check_now()
    audited(params={"person_id": person_id, "action": "erase"}, face_ids=report.face_ids,
            results=report.faces_erased)
    return done(url_for("ui.person_page", person_id=person_id), erased=report.faces_erased)


def _other() -> int:
    other = request.form.get("other", "")
    if not other.isdigit():
        raise UiError(422, "Choose the person to merge into this one.")
    return int(other)


def _merge(person_id: int) -> BaseResponse:
    """Merge the chosen person into this one, once the page has said who
    stays and who goes and the user said yes (``confirm``)."""
    admin()
    st = state()
    other = _other()
    if request.form.get("confirm") != "yes":
        raise Ask({"keep": st.annotations.person(person_id), "gone": st.annotations.person(other)})
    merged = st.annotations.merge(person_id, [other], actor=actor())
    audited(params={"person_id": person_id, "people": [other]}, face_ids=merged.face_ids, results=merged.changed)
    return done(url_for("ui.person_page", person_id=person_id), merged.rev)
