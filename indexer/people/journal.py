"""What each correction changed, kept so that any correction can be undone
(``indexer.people.undo``): for every row of ``face_people``,
```rejections``, ``people``, ``cluster_people`` and ``cluster_faces`` it wrote, the row as it
was before and as the correction left it. A correction ``capture``s the
rows it is about to write (the first capture of a row for a correction is
its "before"), and ``seal`` reads them back as they are at the end (the
"after") and forgets the rows it did not change. An undo compares a row's
"after" with the row now: equal, nothing has touched it since, and the
"before" is put back; different, it is left as it is.

Each function runs inside the caller's write transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable


def capture_faces(conn: sqlite3.Connection, rev: int, face_ids: Iterable[int],
                  rejected_by: Iterable[int] = ()) -> None:
    """Before ``rev`` writes these faces' people, and their rejections for
    the people ``rejected_by``: their rows as they are now."""
    ids = json.dumps(sorted({int(f) for f in face_ids}))
    conn.execute(
        "INSERT OR IGNORE INTO correction_labels (rev, face_id, before_person, before_rev) "
        "SELECT ?, j.value, fp.person_id, fp.rev FROM json_each(?) j LEFT JOIN face_people fp ON fp.face_id = j.value",
        (rev, ids),
    )
    for person_id in sorted(set(rejected_by)):
        conn.execute(
            "INSERT OR IGNORE INTO correction_rejections (rev, face_id, person_id, before_rev) "
            "SELECT ?, j.value, ?, r.rev FROM json_each(?) j "
            "LEFT JOIN rejections r ON r.face_id = j.value AND r.person_id = ?",
            (rev, person_id, ids, person_id),
        )


def capture_person(conn: sqlite3.Connection, rev: int, person_id: int) -> None:
    """Before ``rev`` creates, renames or deletes the person: their name
    now (none: ``rev`` creates them)."""
    conn.execute(
        "INSERT OR IGNORE INTO correction_people (rev, person_id, before_name, created_at, before_cover) "
        "SELECT ?, ?, name, created_at, cover_face_id FROM (SELECT NULL) LEFT JOIN people ON id = ?",
        (rev, person_id, person_id),
    )


def capture_members(conn: sqlite3.Connection, rev: int, run_id: int, face_ids: Iterable[int]) -> None:
    """Before ``rev`` takes these faces out of their cluster of ``run_id``."""
    conn.execute(
        "INSERT OR IGNORE INTO correction_members (rev, run_id, face_id, before_cluster) "
        "SELECT ?, ?, cf.face_id, cf.cluster FROM cluster_faces cf JOIN json_each(?) j ON j.value = cf.face_id "
        "WHERE cf.run_id = ?",
        (rev, run_id, json.dumps(sorted({int(f) for f in face_ids})), run_id),
    )


def created_person(conn: sqlite3.Connection, rev: int, person_id: int) -> None:
    """``rev`` has just created the person: they did not exist before it."""
    conn.execute("INSERT OR IGNORE INTO correction_people (rev, person_id) VALUES (?, ?)", (rev, person_id))


def capture_cluster(conn: sqlite3.Connection, rev: int, run_id: int, cluster: int) -> None:
    """Before ``rev`` maps the cluster of ``run_id`` to a person."""
    conn.execute(
        "INSERT OR IGNORE INTO correction_clusters (rev, run_id, cluster, before_person) "
        "SELECT ?, ?, ?, cp.person_id FROM (SELECT NULL) "
        "LEFT JOIN cluster_people cp ON cp.run_id = ? AND cp.cluster = ?",
        (rev, run_id, cluster, run_id, cluster),
    )


def forget_person(conn: sqlite3.Connection, person_id: int) -> None:
    """An erased person: nothing of them stays in the journal (their names,
    the faces and clusters it gave them or took from them)."""
    conn.execute("DELETE FROM correction_people WHERE person_id = ?", (person_id,))
    conn.execute("DELETE FROM correction_labels WHERE before_person = ? OR after_person = ?", (person_id, person_id))
    conn.execute("DELETE FROM correction_rejections WHERE person_id = ?", (person_id,))
    conn.execute("DELETE FROM correction_clusters WHERE before_person = ? OR after_person = ?",
                 (person_id, person_id))


def seal(conn: sqlite3.Connection, rev: int) -> None:
    """At the end of ``rev``: each captured row as it is now, and the rows
    it did not change forgotten."""
    conn.execute(
        "UPDATE correction_labels SET "
        "after_person = (SELECT person_id FROM face_people fp WHERE fp.face_id = correction_labels.face_id), "
        "after_rev = (SELECT rev FROM face_people fp WHERE fp.face_id = correction_labels.face_id) WHERE rev = ?",
        (rev,),
    )
    conn.execute(
        "DELETE FROM correction_labels WHERE rev = ? AND before_person IS after_person AND before_rev IS after_rev",
        (rev,),
    )
    conn.execute(
        "UPDATE correction_rejections SET after_rev = (SELECT r.rev FROM rejections r "
        "WHERE r.face_id = correction_rejections.face_id AND r.person_id = correction_rejections.person_id) "
        "WHERE rev = ?",
        (rev,),
    )
    conn.execute("DELETE FROM correction_rejections WHERE rev = ? AND before_rev IS after_rev", (rev,))
    conn.execute(
        "UPDATE correction_people SET "
        "after_name = (SELECT name FROM people p WHERE p.id = correction_people.person_id), "
        "created_at = coalesce(created_at, "
        "(SELECT created_at FROM people p WHERE p.id = correction_people.person_id)), "
        "after_cover = (SELECT cover_face_id FROM people p WHERE p.id = correction_people.person_id) "
        "WHERE rev = ?",
        (rev,),
    )
    conn.execute("DELETE FROM correction_people WHERE rev = ? AND before_name IS after_name "
                 "AND before_cover IS after_cover", (rev,))
    conn.execute(
        "UPDATE correction_clusters SET after_person = (SELECT person_id FROM cluster_people cp "
        "WHERE cp.run_id = correction_clusters.run_id AND cp.cluster = correction_clusters.cluster) WHERE rev = ?",
        (rev,),
    )
    conn.execute("DELETE FROM correction_clusters WHERE rev = ? AND before_person IS after_person", (rev,))
    conn.execute(
        "UPDATE correction_members SET after_cluster = (SELECT cluster FROM cluster_faces cf "
        "WHERE cf.run_id = correction_members.run_id AND cf.face_id = correction_members.face_id) WHERE rev = ?",
        (rev,),
    )
    conn.execute("DELETE FROM correction_members WHERE rev = ? AND before_cluster IS after_cluster", (rev,))
