""""Are these the same person?": pairs of people or unnamed groups of the
last clustering that may be one person, most likely first, and the answers.

**Units.** Each named person (their confirmed faces) and each group of the
last run that is nobody's yet (its members no one has confirmed).

**How likely two are one person**: the Euclidean distance between the
means of their faces. A unit's mean is steadier than any one face (one
wrong face in a group does not make it look like another), and the mean of
dlib embeddings of one person lies ~0.2-0.4 from another mean of the same
person, where different people's means lie 0.6 and more apart. Pairs within
``max_distance`` are offered, nearest first (equal distances: the pair
with more faces first, as its answer settles more).

**Answers.** "Same person" joins them (a person and a group: the group is
named; two people: the one with fewer confirmed faces is merged into the
other; two groups: the second joins the first). "Different people" is
remembered (``different``, ``different_sides``): a person's side as the
person (their faces whenever asked), a group's as its faces then. A pair is
not offered again when a remembered answer covers it: each unit holds at
least half its faces on one side (a person: is that side's person). The
same answers keep clustering (``cannot_links``) and recognition
(``vetoes``) from joining the sides."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from indexer.people import attribution, clustering_runs


@dataclass(frozen=True)
class Side:
    """A person (``person_id``) or an unnamed group of the last run (``cluster_id``)."""

    person_id: int | None = None
    cluster_id: int | None = None


@dataclass(frozen=True)
class Unit:
    """A side with its faces (confirmed, or a group's members no one has confirmed)."""

    side: Side
    face_ids: list[int]


@dataclass(frozen=True)
class Link:
    """A remembered "different people" answer: each side's person (None: a
    group) and faces (a person's: their confirmed faces now)."""

    people: tuple[int | None, int | None]
    faces: tuple[frozenset[int], frozenset[int]]


@dataclass(frozen=True)
class Pair:
    a: Unit
    b: Unit
    distance: float


def units(conn: sqlite3.Connection) -> list[Unit]:
    """Every named person with confirmed faces, then every group of the last
    run mapped to nobody, with the members no one has confirmed."""
    confirmed: dict[int, list[int]] = {}
    for face_id, person_id in conn.execute("SELECT face_id, person_id FROM face_people ORDER BY face_id"):
        confirmed.setdefault(person_id, []).append(face_id)
    out = [Unit(Side(person_id=p), faces) for p, faces in sorted(confirmed.items())]
    last = attribution.last_run_id(conn)
    if last is None:
        return out
    groups: dict[int, list[int]] = {}
    for face_id, cluster in conn.execute(
        "SELECT cf.face_id, cf.cluster FROM cluster_faces cf WHERE cf.run_id = ? AND cf.cluster >= 0 "
        "AND NOT EXISTS (SELECT 1 FROM cluster_people cp WHERE cp.run_id = cf.run_id AND cp.cluster = cf.cluster) "
        "AND NOT EXISTS (SELECT 1 FROM face_people fp WHERE fp.face_id = cf.face_id) ORDER BY cf.face_id",
        (last,),
    ):
        groups.setdefault(cluster, []).append(face_id)
    return out + [Unit(Side(cluster_id=c), faces) for c, faces in sorted(groups.items())]


def links(conn: sqlite3.Connection) -> list[Link]:
    """Every remembered "different people" answer not undone."""
    confirmed: dict[int, set[int]] = {}
    for face_id, person_id in conn.execute("SELECT face_id, person_id FROM face_people"):
        confirmed.setdefault(person_id, set()).add(face_id)
    sides: dict[int, tuple[list[int | None], list[set[int]]]] = {}
    for link_id, side, person_id, face_id in conn.execute(
        "SELECT s.link_id, s.side, s.person_id, s.face_id FROM different_sides s "
        "JOIN different d ON d.id = s.link_id WHERE d.active = 1 ORDER BY s.link_id"
    ):
        people, faces = sides.setdefault(link_id, ([None, None], [set(), set()]))
        if person_id is not None:
            people[side] = person_id
            faces[side] |= confirmed.get(person_id, set())
        elif face_id is not None:
            faces[side].add(face_id)
    return [Link((people[0], people[1]), (frozenset(faces[0]), frozenset(faces[1])))
            for people, faces in sides.values()]


def covers(link: Link, a: Unit, b: Unit) -> bool:
    """Whether the answer ``link`` settled the pair (a, b), either way round."""
    def on(unit: Unit, side: int) -> bool:
        if unit.side.person_id is not None and unit.side.person_id == link.people[side]:
            return True
        held = len(link.faces[side].intersection(unit.face_ids))
        return bool(unit.face_ids) and 2 * held >= len(unit.face_ids)

    return (on(a, 0) and on(b, 1)) or (on(a, 1) and on(b, 0))


def pairs(found: list[Unit], means: np.ndarray, answered: list[Link], max_distance: float,
          limit: int) -> list[Pair]:
    """The pairs of ``found`` (``means``: the mean embedding of each, (u, 128))
    within ``max_distance`` of each other, most likely one person first,
    less those an answer settled; at most ``limit``."""
    if len(found) < 2:
        return []
    sq = (means * means).sum(axis=1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * means @ means.T, 0.0))
    i, j = np.triu_indices(len(found), k=1)
    close = d[i, j] <= max_distance
    i, j = i[close], j[close]
    sizes = np.array([len(u.face_ids) for u in found])
    order = np.lexsort((-(sizes[i] + sizes[j]), d[i, j]))
    out: list[Pair] = []
    for a, b in zip(i[order].tolist(), j[order].tolist()):
        if any(covers(link, found[a], found[b]) for link in answered):
            continue
        out.append(Pair(found[a], found[b], float(d[a, b])))
        if len(out) >= limit:
            break
    return out


def remember_different(conn: sqlite3.Connection, rev: int, a: Unit, b: Unit) -> int:
    """Record that ``a`` and ``b`` are different people (by correction
    ``rev``); returns the answer's id."""
    link_id = int(conn.execute("INSERT INTO different (rev) VALUES (?)", (rev,)).lastrowid or 0)
    for side, unit in enumerate((a, b)):
        if unit.side.person_id is not None:
            conn.execute("INSERT INTO different_sides (link_id, side, person_id) VALUES (?,?,?)",
                         (link_id, side, unit.side.person_id))
        else:
            conn.executemany("INSERT INTO different_sides (link_id, side, face_id) VALUES (?,?,?)",
                             [(link_id, side, f) for f in unit.face_ids])
    return link_id


def unit_of(conn: sqlite3.Connection, side: Side) -> Unit:
    """The unit a side names now: a person's confirmed faces, or the members
    of a group of the last run no one has confirmed (``NoClusteringError``,
    ``ClusterNotFoundError``)."""
    if side.person_id is not None:
        faces = [f for (f,) in conn.execute(
            "SELECT face_id FROM face_people WHERE person_id = ? ORDER BY face_id", (side.person_id,))]
        return Unit(side, faces)
    assert side.cluster_id is not None
    members = clustering_runs.members(conn, side.cluster_id)
    confirmed = {f for (f,) in conn.execute("SELECT face_id FROM face_people")}
    return Unit(side, [f for f in members if f not in confirmed])


def vetoes(answered: list[Link]) -> set[tuple[int, int]]:
    """(face, person) pairs recognition never suggests: a face on one side
    of an answer, to the person on the other."""
    out: set[tuple[int, int]] = set()
    for link in answered:
        for side in (0, 1):
            person = link.people[1 - side]
            if person is not None:
                out.update((f, person) for f in link.faces[side])
    return out
