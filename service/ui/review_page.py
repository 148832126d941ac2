"""``/review``: "Are these the same person?" Pairs of people and unnamed
groups that may be one person, most likely first, each answered with
"Same person" or "Different people" (``application.review``), in place
with Undo (``service.ui.actions``)."""

from __future__ import annotations

from flask import request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from application import people, review
from application.recognition_trade import recognition_trade
from application.schemas import ReviewSide
from service.context import actor, audited, served, state
from service.ui.actions import Outcome, admin, done, run_action
from service.ui.views import UiError, bp, page

QUESTIONS = 20


@bp.route("/review", methods=["GET", "POST"])
def review_page() -> ResponseReturnValue:
    outcome = Outcome()
    if request.method == "POST":
        outcome = run_action({"same": lambda: _answer(True), "different": lambda: _answer(False),
                              "is": lambda: _suggestion(True), "is_not": lambda: _suggestion(False)})
        if outcome.response is not None:
            return outcome.response
    st = state()
    found = review.review_pairs(served().store, st.annotations, st.settings.review, QUESTIONS)
    store = served().store
    doubtful = st.annotations.doubtful_suggestions(QUESTIONS)
    covers = {p.person_id: p.cover_face_id for p in st.annotations.people()}
    shown = store.faces([f for p in found.pairs for side in (p.a, p.b) for f in side.face_ids]
                        + [face for face, *_ in doubtful])
    return page("review.html", status=outcome.status, title="Are these the same person?", pairs=found.pairs,
                records=shown, max_distance=st.settings.review.max_distance, covers=covers,
                doubtful=[d for d in doubtful if d[0] in shown], errors=outcome.errors,
                trade=recognition_trade(store, st.annotations, st.settings.recognition))


def _side(prefix: str) -> ReviewSide:
    person, cluster = request.form.get(f"{prefix}_person", ""), request.form.get(f"{prefix}_cluster", "")
    if person.isdigit():
        return ReviewSide(person_id=int(person))
    if cluster.isdigit():
        return ReviewSide(cluster_id=int(cluster))
    raise UiError(422, "This question is out of date: reload the page.")


def _suggestion(right: bool) -> Response:
    """A suggestion answered: the face is the person (confirmed), or is not (rejected)."""
    admin()
    face, person = request.form.get("face_id", ""), request.form.get("person_id", "")
    if not (face.isdigit() and person.isdigit()):
        raise UiError(422, "This question is out of date: reload the page.")
    st = state()
    answer = people.assign if right else people.reject
    fixed = answer(served().store, st.annotations, int(person), [int(face)], actor())
    audited(params={"person_id": int(person), "action": "confirm" if right else "reject"}, face_ids=[int(face)],
            results=fixed.changed)
    return done(url_for("ui.review_page"), fixed.rev)


def _answer(same: bool) -> Response:
    admin()
    a, b = _side("a"), _side("b")
    answered = review.answer(served().store, state().annotations, a, b, same, actor())
    audited(params={"same": same, "a": a.model_dump(), "b": b.model_dump()}, face_ids=answered.face_ids,
            results=len(answered.face_ids))
    return done(url_for("ui.review_page"), answered.correction)
