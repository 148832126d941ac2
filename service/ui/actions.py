"""How every page answers an action: a form posts to the page's own path
with an ``action``; done, the page is shown again (303) with a
``role="status"`` notice of what changed, and an "Undo" button for what can
be undone (``?done=<correction>``); not done, the same page is shown at
once with the reason in its ``role="alert"`` region and the user's choices
kept (``Outcome``). "Undo" itself is an action of every page."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from flask import g, redirect, request, url_for
from werkzeug.wrappers import Response

from application import drawing, people
from application.errors import classify, user_errors
from indexer.people.annotations import CorrectionRecord, PersonNotFoundError
from service.context import actor, audited, state
from service.errors import STATUS_OF_KIND
from service.ui import security
from service.ui.views import UiError, bp

# A part of a notice: text, or a person to link (id, name).
Part = str | tuple[int, str]


@dataclass
class Outcome:
    """What a posted action came to: a redirect (``response``), or the
    reason it could not be done (``message``) with its HTTP status."""

    response: Response | None = None
    message: str | None = None
    status: int = 200
    asked: object = None  # what the page asks before it does the action (``Ask``)

    @property
    def errors(self) -> list[str]:
        """For the page's alert region."""
        return [self.message] if self.message else []


class Ask(Exception):
    """The action needs the user's yes first: the page shows ``question``
    (its own data) with the buttons to go on or not."""

    def __init__(self, question: object) -> None:
        super().__init__("asked")
        self.question = question


@dataclass
class Notice:
    """What the last action changed, said in ``parts``, and what its "Undo"
    button posts (``undo``: the form's fields, ``action`` among them; None:
    nothing to undo)."""

    parts: list[Part] = field(default_factory=list)
    undo: dict[str, str] | None = None

    @classmethod
    def of_correction(cls, parts: list[Part], rev: int | None) -> Notice:
        return cls(parts, {"action": "undo", "rev": str(rev)} if rev is not None else None)


@bp.app_context_processor
def notice_context() -> dict[str, Notice | None]:
    """Every page's notice of what the last action changed (``notice``)."""
    return {"notice": notice()}


def admin() -> None:
    """``UiError`` 403 unless the signed-in key may change things."""
    if not security.may(g.get("scope"), "admin"):
        raise UiError(403, "This key may only read: changing people needs an administrator key.")


def run_action(actions: Mapping[str, Callable[[], Response]]) -> Outcome:
    """Run the posted ``action`` (one of ``actions``, or "undo"): its
    response, or why it could not be done. A domain error (a person gone,
    a name taken, nothing to undo) is said as the API says it."""
    name = request.form.get("action", "")
    run = {"undo": undo_action, "take_back": take_back_action}.get(name) or actions.get(name)
    try:
        if run is None:
            raise UiError(422, "Choose what to do.")
        return Outcome(response=run())
    except Ask as exc:
        return Outcome(asked=exc.question)
    except UiError as exc:
        return Outcome(message=exc.message, status=exc.status)
    except user_errors() as exc:
        kind = classify(exc)
        assert kind is not None
        return Outcome(message=f"{str(exc)[:1].upper()}{str(exc)[1:]}.", status=STATUS_OF_KIND[kind[0]])


def done(path: str, rev: int | None = None, **facts: int | str) -> Response:
    """Back to the page at ``path`` (303), saying what changed: correction
    ``rev`` and ``facts`` (``erased=3``, ``left=2``, ``groups=27``)."""
    query = {**({"done": rev} if rev is not None else {}), **facts}
    if not query:
        return redirect(path, code=303)
    page, hash_sign, fragment = path.partition("#")
    return redirect(page + ("&" if "?" in page else "?") + urlencode(query) + hash_sign + fragment, code=303)


def undo_action() -> Response:
    """Undo the correction the form names (``rev``) and come back to this
    page, whose notice then offers to undo the undo."""
    admin()
    rev = request.form.get("rev", "")
    if not rev.isdigit():
        raise UiError(422, "There is nothing to undo.")
    undone = people.undo(state().annotations, int(rev), actor())
    audited(params={"undo": int(rev)}, face_ids=undone.face_ids, results=len(undone.face_ids))
    left = {"left": len(undone.left_as_they_are)} if undone.left_as_they_are else {}
    path = request.path
    person_id = (request.view_args or {}).get("person_id")
    if isinstance(person_id, int) and not _exists(person_id):  # the undo took the page's person away
        path = url_for("ui.people_page")
    return done(path, undone.rev, **left)


def take_back_action() -> Response:
    """Take back a face drawn by hand (``face_id``), its naming (``rev``)
    undone first, and come back to this page."""
    admin()
    face_id, rev = request.form.get("face_id", ""), request.form.get("rev", "")
    if not face_id.isdigit():
        raise UiError(422, "There is nothing to take back.")
    st = state()
    if rev.isdigit():
        record = people.correction(st.annotations, int(rev))
        if record is not None and record.undoable:
            people.undo(st.annotations, int(rev), actor())
    taken = drawing.take_back(st.index, st.annotations, st.settings, int(face_id))
    audited(params={"action": "take_back"}, face_ids=[taken.face_id], results=1)
    return done(request.path, taken_back=taken.face_id)


def notice() -> Notice | None:
    """The notice of what the last action changed, from the page's query."""
    facts = request.args
    if facts.get("drawn", "").isdigit():
        return _drawn_notice(int(facts["drawn"]), facts.get("done", ""))
    if facts.get("taken_back", "").isdigit():
        return Notice(["Took back the face you drew: it is no longer in the index."])
    if facts.get("done", "").isdigit():
        record = people.correction(state().annotations, int(facts["done"]))
        if record is None:
            return None
        parts = describe(record)
        if facts.get("left", "").isdigit() and int(facts["left"]):
            parts += [f" {_faces(int(facts['left']))} changed since were left as they are."]
        return Notice.of_correction(parts, record.rev if record.undoable else None)
    if facts.get("erased", "").isdigit():
        return Notice([f"Erased {_faces(int(facts['erased']))} for good."])
    if facts.get("reindexing", "").isdigit():
        return Notice([f"Reindex started over {facts['reindexing']} folder(s): its progress is below, and the new "
                       "index is served as soon as it is done."])
    return None


def _drawn_notice(face_id: int, rev: str) -> Notice:
    """After drawing a face: added (and named); Undo takes it back."""
    record = people.correction(state().annotations, int(rev)) if rev.isdigit() else None
    named = _lower(describe(record)) if record is not None else ["."]
    parts: list[Part] = ["Added the face you drew to the index", *([": "] if record is not None else []), *named]
    undo = {"action": "take_back", "face_id": str(face_id), **({"rev": rev} if record is not None else {})}
    return Notice(parts, undo)


def describe(record: CorrectionRecord, *, nested: bool = False) -> list[Part]:
    """What a correction did, in words, its people as links."""
    who: Part = _person(record.person_id, record.person_name)
    n = _faces(record.faces)
    parts: list[Part]
    if record.action == "create":
        parts = [f"Made {n} the new person ", who, *_from(record)]
    elif record.action == "name_cluster":
        parts = [f"Named {n} ", who]
    elif record.action == "assign":
        parts = [f"Moved {n} to ", who, *_from(record)] if record.from_people else [f"Confirmed {n} as ", who]
    elif record.action == "reject":
        parts = [f"Marked {n} as not ", who]
    elif record.action == "merge":
        parts = ["Merged ", *_people(record.from_people), " into ", who]
    elif record.action == "remove":
        parts = [f"Took {n} out of ", who, "’s group"] if record.person_id is not None else [
            f"Took {n} out of the group: they are strangers now"]
    elif record.action == "cluster":
        groups = request.args.get("groups", "")
        parts = [f"Grouped {n} again" + (f": {int(groups):,} groups" if groups.isdigit() else "")]
    elif record.action == "cover":
        parts = ["Chose the face that shows ", who]
    elif record.action == "different":
        parts = ["Remembered: different people", *([" (", who, ")"] if record.person_id is not None else [])]
    elif record.action == "join":
        parts = [f"Joined two groups: {n} moved"]
    elif record.action == "undo_merge":
        parts = ["Undid the last merge into ", who]
    elif record.action == "rename":
        parts = ["Renamed to ", who]
    elif record.action == "delete":
        parts = ["Forgot ", who]
    elif record.action == "undo" and record.undoes is not None and not nested:
        target = people.correction(state().annotations, record.undoes)
        parts = ["Undone: ", *(_lower(describe(target, nested=True)) if target else ["a correction"])]
    else:
        parts = [f"{record.action.replace('_', ' ').capitalize()}: {n}"]
    return parts if nested else [*parts, "."]


def _person(person_id: int | None, name: str | None) -> Part:
    if person_id is None:
        return name or "someone"
    return (person_id, name) if _exists(person_id) and name else (name or "someone")


def _exists(person_id: int) -> bool:
    try:
        state().annotations.person(person_id)
    except PersonNotFoundError:
        return False
    return True


def _from(record: CorrectionRecord) -> list[Part]:
    return [" (taken from ", *_people(record.from_people), ")"] if record.from_people else []


def _people(listed: list[tuple[int, str]]) -> list[Part]:
    parts: list[Part] = []
    for i, (person_id, name) in enumerate(listed):
        parts += ([", "] if 0 < i < len(listed) - 1 else [" and "] if i else []) + [_person(person_id, name)]
    return parts


def _lower(parts: list[Part]) -> list[Part]:
    first = parts[0] if parts else ""
    return [first[:1].lower() + first[1:], *parts[1:]] if isinstance(first, str) else parts


def _faces(n: int) -> str:
    return f"{n:,} face" if n == 1 else f"{n:,} faces"


def selected_faces() -> list[int]:
    """The face ids the posted form selected (kept when the page is shown again)."""
    return [int(f) for f in request.form.getlist("face_ids") if f.isdigit()]
