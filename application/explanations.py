"""Why a face is who it is: the evidence behind its person, or behind its
stranger flag, in numbers and plain words (``GET
/api/v1/faces/<id>/explanation``, the "Why?" page).

Nothing here decides anew: the explanation re-reads the decision that was
taken (the face's source, ``indexer.people.attribution``; its place in the
last grouping, ``cluster_faces``) and re-runs the rule that took it on
today's confirmed faces (``indexer.people.recognition.check_rule``, the
rule recognition itself calls). Where today's rule would now decide
otherwise (confirmed faces changed since the last recognition, which runs
after each index run), ``current`` says so.

**Rules** (``Explanation.rule``):

- ``confirmed``: a person named this face;
- ``cluster``: a member of a group of the last grouping that is named;
- ``recognised_close``, ``recognised_support``: suggested by recognition,
  by the rule's near-copy or its group branch (``recognised``: suggested
  earlier, and today's confirmed faces no longer support it);
- ``stranger``: the last grouping left it alone (too far from the nearest
  group's centre, no other face near, or its group too small);
- ``unnamed_group``: in a group nobody has named yet;
- ``not_grouped``: indexed after the last grouping, or none ran.

**Evidence**: for a face with a person, that person's nearest confirmed
faces and the runner-up person's nearest one; otherwise the nearest
confirmed faces of anyone, or, when nobody is named, the nearest indexed
faces. Every distance is Euclidean (face_recognition's ``tolerance``).
**Cost**: one face against every confirmed face (10,000 confirmed faces:
a few milliseconds) and one exact search of the index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from application.errors import FaceNotFound
from config.settings import Settings
from indexer.people.annotations import AnnotationsDB
from indexer.people.recognition import RuleCheck, check_rule, indexed_confirmed
from indexer.store import FaceStore

EVIDENCE_FACES = 5  # evidence faces at most: the attributed person's nearest, then the runner-up's
RULES = ("confirmed", "cluster", "recognised_close", "recognised_support", "recognised", "stranger", "unnamed_group",
         "not_grouped")


@dataclass(frozen=True)
class Evidence:
    """One face the decision rests on, its person (None: nobody) and its
    Euclidean distance from the explained face."""

    face_id: int
    person_id: int | None
    person: str | None
    distance: float


@dataclass(frozen=True)
class Nearest:
    """A person and the Euclidean distance from the face to their nearest confirmed face."""

    person_id: int
    person: str
    distance: float


@dataclass(frozen=True)
class GroupPlace:
    """Where the last grouping put the face: its group (None: a stranger),
    the nearest group and the distance to its centre, the stranger rule's
    limits, and the distance to the nearest other face of the index now."""

    run_id: int
    method: str
    group: int | None
    nearest_group: int | None
    centre_distance: float | None
    stranger_distance: float | None
    neighbour_distance: float | None
    nearest_face_distance: float | None


@dataclass(frozen=True)
class Explanation:
    """Why ``face_id`` is ``person`` (or nobody), in numbers and words."""

    face_id: int
    person_id: int | None
    person: str | None
    source: str | None
    stranger: bool
    rule: str
    because: list[str]
    evidence: list[Evidence]
    nearest: Nearest | None  # the person with the nearest confirmed face (the face itself left out)
    runner_up: Nearest | None  # the next person
    margin: float | None  # runner_up - nearest, Euclidean
    recognition: RuleCheck | None  # what the recognition rule says today
    current: bool  # today's rule still gives the face's suggested person
    group: GroupPlace | None
    would_change: list[str] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)


def explain_face(store: FaceStore, annotations: AnnotationsDB, face_id: int, settings: Settings) -> Explanation:
    """The explanation of one indexed face (``FaceNotFound``)."""
    record = store.faces([face_id]).get(face_id)
    if record is None:
        raise FaceNotFound(f"no face with id {face_id} in the index")
    rule = settings.recognition
    x = store.vectors_of(np.array([face_id], dtype=np.int64))[0]
    attribution = annotations.attributions([face_id]).get(face_id)
    snapshot = annotations.recognition_input()
    ids, owners = indexed_confirmed(snapshot.confirmed, store.face_ids())
    others = ids != face_id  # the face itself is no evidence
    ids, owners = ids[others], owners[others]
    names: dict[int, str] = {}

    def name(person_id: int) -> str:
        if person_id not in names:
            names[person_id] = annotations.person(person_id).name
        return names[person_id]

    nearest = runner_up = None
    check: RuleCheck | None = None
    per_face = np.zeros(0, dtype=np.float64)
    if len(ids):
        vectors = store.vectors_of(ids).astype(np.float64)
        per_face = np.linalg.norm(vectors - x.astype(np.float64), axis=1)
        people = np.unique(owners)
        best = np.array([per_face[owners == p].min() for p in people])
        order = np.argsort(best, kind="stable")
        nearest = Nearest(int(people[order[0]]), name(int(people[order[0]])), float(best[order[0]]))
        if len(order) > 1:
            runner_up = Nearest(int(people[order[1]]), name(int(people[order[1]])), float(best[order[1]]))
        mine = owners == nearest.person_id
        check = check_rule(x.astype(np.float64), nearest.distance, runner_up.distance if runner_up else np.inf,
                           per_face[mine], vectors[mine], rule)
    margin = runner_up.distance - nearest.distance if nearest and runner_up else None
    place = _group_place(store, annotations, face_id, x)
    stranger = attribution is None and place is not None and place.group is None
    evidence = _evidence(store, face_id, x, ids, per_face, owners, attribution.person_id if attribution else None,
                         runner_up, name)
    thresholds = {"close_distance": rule.close_distance, "close_margin": rule.close_margin,
                  "max_distance": rule.max_distance, "margin": rule.margin,
                  **({f"support_distance_{check.k}": rule.support_distance[check.k - 1]}
                     if check is not None and check.k else {})}
    if place is not None:
        thresholds.update({k: v for k, v in (("stranger_distance", place.stranger_distance),
                                             ("neighbour_distance", place.neighbour_distance)) if v is not None})
    rejected = attribution is None and nearest is not None and (face_id, nearest.person_id) in snapshot.rejections
    words = _Words(settings, nearest, runner_up, check, place, rejected)
    if attribution is not None:
        current = attribution.source != "suggested" or (
            check is not None and check.branch is not None and nearest is not None
            and nearest.person_id == attribution.person_id)
        rule_name = {"confirmed": "confirmed", "cluster": "cluster"}.get(
            attribution.source, f"recognised_{check.branch}" if current and check is not None else "recognised")
        because, change = words.attributed(attribution.source, attribution.name, current, place)
    else:
        rule_name = ("not_grouped" if place is None else "stranger" if place.group is None else "unnamed_group")
        current = True
        because, change = words.unattributed(rule_name)
    return Explanation(
        face_id=face_id, person_id=attribution.person_id if attribution else None,
        person=attribution.name if attribution else None, source=attribution.source if attribution else None,
        stranger=stranger, rule=rule_name, because=because, evidence=evidence, nearest=nearest, runner_up=runner_up,
        margin=None if margin is None else round(margin, 4), recognition=check, current=current, group=place,
        would_change=change, thresholds=thresholds,
    )


def _group_place(store: FaceStore, annotations: AnnotationsDB, face_id: int, x: np.ndarray) -> GroupPlace | None:
    placed = annotations.place_in_last_run(face_id)
    if placed is None:
        return None
    info, cluster, nearest, distance = placed
    params = info.params
    sq, ids = store.search(x[None, :].astype(np.float32), 2, exact=True)
    others = [float(np.sqrt(max(d, 0.0))) for d, i in zip(sq[0], ids[0]) if i >= 0 and i != face_id]
    return GroupPlace(
        run_id=info.run_id, method=info.method, group=cluster if cluster >= 0 else None,
        nearest_group=nearest if nearest >= 0 else None, centre_distance=distance,
        stranger_distance=params.get("stranger_distance"), neighbour_distance=params.get("neighbour_distance"),
        nearest_face_distance=others[0] if others else None,
    )


def _evidence(store: FaceStore, face_id: int, x: np.ndarray, ids: np.ndarray, per_face: np.ndarray,
              owners: np.ndarray, person_id: int | None, runner_up: Nearest | None,
              name: Callable[[int], str]) -> list[Evidence]:
    """The attributed person's nearest confirmed faces and the runner-up's
    nearest; without a person, anyone's nearest confirmed faces (``ids`` of
    ``owners`` at ``per_face``), or the nearest indexed faces when nobody is
    named. Nearest first."""
    if len(ids):
        if person_id is not None and (owners == person_id).any():
            rows = list(np.flatnonzero(owners == person_id)[np.argsort(per_face[owners == person_id],
                                                                      kind="stable")][: EVIDENCE_FACES - 1])
            if runner_up is not None:
                theirs = np.flatnonzero(owners == runner_up.person_id)
                rows.append(theirs[np.argmin(per_face[theirs])])
        else:
            rows = list(np.argsort(per_face, kind="stable")[:EVIDENCE_FACES])
        rows.sort(key=lambda r: (per_face[r], ids[r]))
        return [Evidence(int(ids[r]), int(owners[r]), name(int(owners[r])), round(float(per_face[r]), 4)) for r in rows]
    sq, found = store.search(x[None, :].astype(np.float32), EVIDENCE_FACES + 1, exact=True)
    return [Evidence(int(i), None, None, round(float(np.sqrt(max(d, 0.0))), 4))
            for d, i in zip(sq[0], found[0]) if i >= 0 and i != face_id][:EVIDENCE_FACES]


class _Words:
    """The explanation's sentences: what decided, and what would change it."""

    def __init__(self, settings: Settings, nearest: Nearest | None, runner_up: Nearest | None,
                 check: RuleCheck | None, place: GroupPlace | None, rejected: bool) -> None:
        self.rule = settings.recognition
        self.nearest, self.runner_up, self.check, self.place, self.rejected = nearest, runner_up, check, place, rejected

    def _rivals(self) -> str:
        if self.runner_up is None:
            return "nobody else is named"
        return f"the nearest face of anyone else ({self.runner_up.person}) is {self.runner_up.distance:.2f} away"

    def attributed(self, source: str, person: str, current: bool, place: GroupPlace | None
                   ) -> tuple[list[str], list[str]]:
        rule, n, c = self.rule, self.nearest, self.check
        if source == "confirmed":
            because = [f"Someone said this face is {person}: a confirmed face, which no rule overrides."]
            if n is not None:
                because.append(f"Its nearest other confirmed face is {n.person}'s, {n.distance:.2f} away; "
                               f"{self._rivals()}.")
            return because, [f"Only a correction changes it: \"Not {person}\", or moving it to someone else."]
        if source == "cluster":
            where = (f"group {place.group + 1} of the last grouping" if place is not None and place.group is not None
                     else "a group of the last grouping")
            because = [f"It is in {where}, which is named {person}."]
            if place is not None and place.centre_distance is not None and place.stranger_distance is not None:
                because.append(f"It is {place.centre_distance:.2f} from the group's centre, within the "
                               f"{place.stranger_distance:.2f} that keeps a face in its group.")
            return because, [f"\"Not {person}\" takes it out; a new grouping may place it elsewhere."]
        because = [f"Recognition suggested {person}."]
        if n is not None and c is not None and current:
            if c.branch == "close":
                because.append(f"It is {c.d1:.2f} from one of {n.person}'s confirmed faces (a near copy: within "
                               f"{rule.close_distance:.2f}), and {self._rivals()}: at least {rule.close_margin:.2f} "
                               "farther.")
            elif c.branch == "support":
                because.append(f"Its nearest confirmed face is {n.person}'s, {c.d1:.2f} away (within "
                               f"{rule.max_distance:.2f}); the mean of {n.person}'s {c.k} nearest confirmed faces is "
                               f"{c.support:.2f} away (within {rule.support_distance[c.k - 1]:.2f}); and "
                               f"{self._rivals()}: at least {rule.margin:.2f} farther.")
        if not current:
            today = (f"today the rule would suggest {n.person}" if n is not None and c is not None and c.branch
                     else "today the rule would suggest nobody")
            because.append(f"The confirmed faces have changed since: {today}. The next recognition (after an index "
                           "run) takes the suggestion back.")
        change = [f"\"Not {person}\" takes it back for good; confirming it makes it {person}'s for good."]
        if self.runner_up is not None and c is not None:
            change.append(f"A confirmed face of someone else within {c.d1 + rule.margin:.2f} of it would make "
                          "recognition withhold it.")
        return because, change

    def unattributed(self, rule_name: str) -> tuple[list[str], list[str]]:
        place, because = self.place, []
        if rule_name == "not_grouped":
            because.append("No grouping has looked at it yet (it was indexed after the last one, or none ran).")
        elif rule_name == "unnamed_group" and place is not None and place.group is not None:
            because.append(f"It is in group {place.group + 1} of the last grouping, which nobody has named yet.")
        elif place is not None:
            reasons = []
            if (place.centre_distance is not None and place.stranger_distance is not None
                    and place.centre_distance > place.stranger_distance):
                reasons.append(f"it is {place.centre_distance:.2f} from the centre of the nearest group, farther "
                               f"than {place.stranger_distance:.2f}")
            if (place.nearest_face_distance is not None and place.neighbour_distance is not None
                    and place.nearest_face_distance > place.neighbour_distance):
                reasons.append(f"no other face is within {place.neighbour_distance:.2f} of it (the nearest is "
                               f"{place.nearest_face_distance:.2f} away)")
            if not reasons:
                reasons.append("its group was too small to keep, or the grouping method left it alone")
            because.append("The last grouping flagged it as a stranger: " + "; and ".join(reasons) + ".")
        because.append(self._recognition())
        return because, ["Naming it (\"This is …\") makes it that person's confirmed face; indexing more photos "
                         "of the same person can give it a group at the next grouping."]

    def _recognition(self) -> str:
        n, c, rule = self.nearest, self.check, self.rule
        if n is None or c is None:
            return "Recognition had nobody to compare it with: no one is named yet."
        if self.rejected:
            return f"Someone said it is not {n.person}, whose confirmed face is nearest ({n.distance:.2f})."
        if c.failed == "max_distance":
            return (f"Recognition names nobody: the nearest confirmed face ({n.person}'s) is {c.d1:.2f} away, "
                    f"farther than {rule.max_distance:.2f}.")
        if c.failed == "margin":
            return (f"Recognition names nobody: {n.person}'s nearest confirmed face is {c.d1:.2f} away but "
                    f"{self._rivals()}, less than {rule.margin:.2f} farther: too close to call.")
        if c.failed == "support_distance":
            return (f"Recognition names nobody: {n.person}'s nearest confirmed face is {c.d1:.2f} away, but the "
                    f"mean of their {c.k} nearest is {c.support:.2f} away, farther than "
                    f"{rule.support_distance[c.k - 1]:.2f}: one lookalike photo, not the person.")
        return (f"The rule would suggest {n.person} ({c.d1:.2f} away), but recognition has not done so: another "
                f"face of the photo may be {n.person}'s, or it runs again after the next index run.")
