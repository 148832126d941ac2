"""The recognition rule's trade, estimated on the index's own named people
(the "Is this them?" part of ``/review``): of faces like the confirmed
ones, how many would recognition name, and how many of those rightly, at
the rule as configured and made stricter or looser.

**How.** The confirmed faces are the ground truth. They are split into
``FOLDS`` folds (every person's faces spread over them); each fold in turn
is held out and recognised against the confirmed faces of the others, with
the same function recognition runs (``indexer.people.recognition.suggest``).
A held-out face is *named rightly* when it is suggested to its own person,
*wrongly* when to anyone else; a face of someone with no confirmed face
left in the other folds (a person named once) can only be named wrongly:
it stands for a stranger.

- **found**: named rightly / held-out faces whose person has other
  confirmed faces (recall);
- **right**: named rightly / named (precision);
- **strangers named**: faces of people named once that were named (anyone).

**Stricter and looser.** Every distance of the rule (``close_distance``,
``max_distance``, ``support_distance``) multiplied by a factor, the
margins kept: 0.8 (stricter) to 1.2 (looser). The rule itself is set in
``[recognition]``; this only shows what a change would do.

At most ``MAX_FACES`` confirmed faces (evenly spread) enter: 2,000 faces,
5 factors x 5 folds, ~0.2 s; kept until the index or the corrections change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from application.tradeoff import kept
from config.settings import RecognitionSettings
from indexer.people.annotations import AnnotationsDB
from indexer.people.recognition import evenly_spread, indexed_confirmed, suggest
from indexer.store import FaceStore

FOLDS = 5
FACTORS = (0.8, 0.9, 1.0, 1.1, 1.2)
MAX_FACES = 2000
MIN_FACES = 20  # confirmed faces below which nothing is estimated


@dataclass(frozen=True)
class RulePoint:
    """The rule scaled by ``factor``: its ``max_distance``, and what it did
    to the held-out faces (None: no face to measure it on)."""

    factor: float
    max_distance: float
    found: float | None
    right: float | None
    strangers_named: float | None


@dataclass(frozen=True)
class RecognitionTrade:
    faces: int  # confirmed faces held out
    people: int
    points: list[RulePoint]


def scaled(rule: RecognitionSettings, factor: float) -> RecognitionSettings:
    """``rule`` with every distance (not the margins) times ``factor``."""
    return rule.model_copy(update={
        "close_distance": rule.close_distance * factor, "max_distance": rule.max_distance * factor,
        "support_distance": [d * factor for d in rule.support_distance]})


def held_out(x: np.ndarray, labels: np.ndarray, rule: RecognitionSettings,
             folds: int = FOLDS) -> tuple[float | None, float | None, float | None]:
    """(found, right, strangers named) of ``rule`` over the faces ``x`` of
    people ``labels``, each fold held out against the others."""
    order = np.argsort(labels, kind="stable")
    fold = np.empty(len(labels), dtype=np.int64)
    fold[order] = np.arange(len(labels)) % folds  # each person's faces spread over the folds
    right = named = wanted = strangers = strangers_named = 0
    for k in range(folds):
        test, train = np.flatnonzero(fold == k), np.flatnonzero(fold != k)
        if not len(test) or not len(train):
            continue
        found = suggest(x[test], x[train], labels[train], rule).person
        known = np.isin(labels[test], labels[train])
        right += int((found[known] == labels[test][known]).sum())
        named += int((found >= 0).sum())
        wanted += int(known.sum())
        strangers += int((~known).sum())
        strangers_named += int((found[~known] >= 0).sum())
    return (right / wanted if wanted else None, right / named if named else None,
            strangers_named / strangers if strangers else None)


def recognition_trade(store: FaceStore, annotations: AnnotationsDB, rule: RecognitionSettings
                      ) -> RecognitionTrade | None:
    """The rule's trade on the index's confirmed faces; None with fewer than
    ``MIN_FACES``. Kept until the index or the corrections change."""
    return kept(f"recognition {rule.model_dump_json()}", store, annotations,
                lambda: _trade(store, annotations, rule))


def _trade(store: FaceStore, annotations: AnnotationsDB, rule: RecognitionSettings) -> RecognitionTrade | None:
    ids, labels = indexed_confirmed(annotations.recognition_input().confirmed, store.face_ids())
    if len(ids) < MIN_FACES:
        return None
    ids, labels = evenly_spread(ids, MAX_FACES), evenly_spread(labels, MAX_FACES)
    x = store.vectors_of(ids)
    points = []
    for factor in FACTORS:
        found, right, strangers = held_out(x, labels, scaled(rule, factor))
        points.append(RulePoint(factor, round(rule.max_distance * factor, 3), found, right, strangers))
    return RecognitionTrade(len(ids), len(set(labels.tolist())), points)
