"""Who each face is, read from the annotations database: the read side of
people and their corrections (``indexer.people.corrections`` writes).

A face's person comes from one of three sources, in this order of
precedence:

- ``confirmed``: a person said so (named its cluster, assigned the face):
  a row of ``face_people``;
- ``cluster``: the face is a member of a cluster of the last clustering run
  that is mapped to a named person (``cluster_people``), and has not been
  rejected for that person;
- ``suggested``: recognised automatically (``indexer.people.recognition``), near
  the person's confirmed faces: a row of ``suggestions``.

A rejection ("not this person", ``rejections``) keeps a face from a person's
``cluster`` and ``suggested`` faces; recognition never writes a suggestion
that a rejection forbids. Every function takes an open connection inside a
transaction of the caller's (``AnnotationsDB._read``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

SOURCES = ("confirmed", "cluster", "suggested")
CHUNK = 500  # ids per SQL IN (...): under SQLite's variable limit

# A face that is a member of a cluster of the last run mapped to a person it
# is not rejected for. Parameters: the last run's id.
_CLUSTER_ATTRIBUTED = (
    "SELECT cf.face_id, cp.person_id FROM cluster_faces cf "
    "JOIN cluster_people cp ON cp.run_id = cf.run_id AND cp.cluster = cf.cluster "
    "WHERE cf.run_id = ? AND NOT EXISTS "
    "(SELECT 1 FROM rejections r WHERE r.face_id = cf.face_id AND r.person_id = cp.person_id)"
)


@dataclass(frozen=True)
class Attribution:
    """A face's person now. ``distance``: for a suggested face, the Euclidean
    distance to the person's nearest confirmed face (None otherwise)."""

    person_id: int
    name: str
    source: str
    distance: float | None = None


@dataclass(frozen=True)
class PersonFace:
    """One face attributed to a person, with its source (and the suggestion's distance)."""

    face_id: int
    source: str
    distance: float | None = None


def last_run_id(conn: sqlite3.Connection) -> int | None:
    return conn.execute("SELECT MAX(id) FROM cluster_runs WHERE undone = 0").fetchone()[0]


def chunks(ids: list[int]) -> Iterator[tuple[list[int], str]]:
    """``ids`` in slices of ``CHUNK``, each with its ``?,?,...`` placeholders."""
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        yield chunk, ",".join("?" * len(chunk))


def attributions(conn: sqlite3.Connection, face_ids: list[int]) -> dict[int, Attribution]:
    """The person of each given face that has one, with its source."""
    ids = sorted({int(i) for i in face_ids})
    out: dict[int, Attribution] = {}
    if not ids:
        return out
    last = last_run_id(conn)
    names = dict(conn.execute("SELECT id, name FROM people").fetchall())
    for chunk, marks in chunks(ids):
        # Lowest precedence first: each later source overwrites.
        for face_id, person_id, distance in conn.execute(
            f"SELECT face_id, person_id, distance FROM suggestions WHERE face_id IN ({marks})", chunk
        ):
            out[face_id] = Attribution(person_id, names[person_id], "suggested", distance)
        if last is not None:
            for face_id, person_id in conn.execute(
                f"{_CLUSTER_ATTRIBUTED} AND cf.face_id IN ({marks})", [last, *chunk]
            ):
                out[face_id] = Attribution(person_id, names[person_id], "cluster")
        for face_id, person_id in conn.execute(
            f"SELECT face_id, person_id FROM face_people WHERE face_id IN ({marks})", chunk
        ):
            out[face_id] = Attribution(person_id, names[person_id], "confirmed")
    return out


def person_faces(conn: sqlite3.Connection, person_id: int) -> list[PersonFace]:
    """Every face attributed to the person now, by source (confirmed, then
    cluster, then suggested), in face-id order within each."""
    faces = [
        PersonFace(face_id, "confirmed")
        for (face_id,) in conn.execute(
            "SELECT face_id FROM face_people WHERE person_id = ? ORDER BY face_id", (person_id,)
        )
    ]
    last = last_run_id(conn)
    clustered: set[int] = set()
    if last is not None:
        rows = conn.execute(
            f"{_CLUSTER_ATTRIBUTED} AND cp.person_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM face_people fp WHERE fp.face_id = cf.face_id) ORDER BY cf.face_id",
            (last, person_id),
        ).fetchall()
        faces += [PersonFace(face_id, "cluster") for face_id, _ in rows]
        clustered = _cluster_attributed_suggestions(conn, last, person_id)
    for face_id, distance in conn.execute(
        "SELECT s.face_id, s.distance FROM suggestions s WHERE s.person_id = ? AND NOT EXISTS "
        "(SELECT 1 FROM face_people fp WHERE fp.face_id = s.face_id) ORDER BY s.face_id",
        (person_id,),
    ):
        if face_id not in clustered:
            faces.append(PersonFace(face_id, "suggested", distance))
    return faces


def _cluster_attributed_suggestions(conn: sqlite3.Connection, last: int, person_id: int) -> set[int]:
    """The person's suggested faces, not confirmed, that a cluster attributes
    (to anyone): the cluster wins."""
    return {
        face_id
        for (face_id,) in conn.execute(
            "SELECT s.face_id FROM suggestions s JOIN cluster_faces cf ON cf.run_id = ? AND cf.face_id = s.face_id "
            "JOIN cluster_people cp ON cp.run_id = cf.run_id AND cp.cluster = cf.cluster "
            "WHERE s.person_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM rejections r WHERE r.face_id = s.face_id AND r.person_id = cp.person_id) "
            "AND NOT EXISTS (SELECT 1 FROM face_people fp WHERE fp.face_id = s.face_id)",
            (last, person_id),
        )
    }


def source_counts(conn: sqlite3.Connection, person_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per given person, how many faces each source attributes to them now
    (three grouped queries, whatever the number of people)."""
    counts = {int(p): dict.fromkeys(SOURCES, 0) for p in person_ids}
    last = last_run_id(conn)
    for chunk, marks in chunks(sorted(counts)):
        for person_id, n in conn.execute(
            f"SELECT person_id, COUNT(*) FROM face_people WHERE person_id IN ({marks}) GROUP BY person_id", chunk
        ):
            counts[person_id]["confirmed"] = n
        if last is not None:
            for person_id, n in conn.execute(
                f"SELECT person_id, COUNT(*) FROM ({_CLUSTER_ATTRIBUTED} AND cp.person_id IN ({marks}) AND NOT EXISTS "
                "(SELECT 1 FROM face_people fp WHERE fp.face_id = cf.face_id)) GROUP BY person_id",
                [last, *chunk],
            ):
                counts[person_id]["cluster"] = n
        clustered = (
            "AND NOT EXISTS (SELECT 1 FROM cluster_faces cf JOIN cluster_people cp "
            "ON cp.run_id = cf.run_id AND cp.cluster = cf.cluster WHERE cf.run_id = ? AND cf.face_id = s.face_id "
            "AND NOT EXISTS (SELECT 1 FROM rejections r WHERE r.face_id = s.face_id AND r.person_id = cp.person_id))"
            if last is not None else ""
        )
        for person_id, n in conn.execute(
            f"SELECT s.person_id, COUNT(*) FROM suggestions s WHERE s.person_id IN ({marks}) AND NOT EXISTS "
            f"(SELECT 1 FROM face_people fp WHERE fp.face_id = s.face_id) {clustered} GROUP BY s.person_id",
            [*chunk, *([last] if last is not None else [])],
        ):
            counts[person_id]["suggested"] = n
    return counts
