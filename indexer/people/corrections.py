"""Corrections of people in the annotations database: the write side
(``indexer.people.attribution`` reads). Create a person from faces, assign
(move) faces, reject faces ("not this person"), merge people and undo a
merge.

Every correction is one row of ``corrections`` (when, who, what, how many
faces); the rows it writes in ``face_people`` and ``rejections`` carry that
row's id as ``rev``. An undo compares them: a row whose ``rev`` is still the
merge's has not been touched since. Each function runs inside the caller's
write transaction (``AnnotationsDB._write``), so a correction is all or
nothing. The people whose confirmed faces changed are marked for
recognition (``recognition_dirty``), which re-evaluates their suggestions
at its next run.

Face ids are not checked here against the index (this database does not
know it): the service checks them first.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from dataclasses import dataclass, field

from indexer.people import journal
from indexer.people.attribution import chunks
from indexer.people.records import CorrectionRecord
from indexer.store.metadata import utc_now
from indexer.store.sqlite_db import inserted_id

MAX_NAME_LENGTH = 100


class PersonNotFoundError(LookupError):
    """No person with that id (``missing``: every unknown id asked for)."""

    def __init__(self, message: str, missing: list[int] | None = None) -> None:
        super().__init__(message)
        self.missing = missing or []


class NameTakenError(ValueError):
    """Another person already has that name."""


class InvalidNameError(ValueError):
    """A name that cannot be a person's: empty, too long, or holding an unsafe character."""


class MergeError(ValueError):
    """A merge that cannot be: a person into itself, no one to merge."""


class NothingToUndoError(LookupError):
    """The person has no merge left to undo."""


def clean_name(name: str) -> str:
    """The name without surrounding whitespace; ValueError when empty, too
    long, or holding a character ``unsafe_character`` finds."""
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"a name must have 1 to {MAX_NAME_LENGTH} characters")
    found = unsafe_character(cleaned)
    if found is not None:
        raise InvalidNameError(f"a name may not hold {found}: type it without")
    return cleaned


# Invisible characters that reorder the text around them (bidi embeddings,
# overrides, isolates and marks): "\u202eevilgnp.exe" shows as "exe.pngneve".
CONTROL_NAMES = {"\0": "NUL", "\t": "TAB", "\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\x1b": "ESCAPE",
                 "\x7f": "DELETE", "\x9b": "CONTROL SEQUENCE INTRODUCER", "\x9d": "OPERATING SYSTEM COMMAND"}
TEXT_DIRECTION_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def unsafe_character(text: str) -> str | None:
    """The first character of ``text`` a name may not hold, described
    (``U+001B ESCAPE at position 3``), or None: control characters (NUL,
    newlines, terminal escapes: Unicode category Cc), line and paragraph
    separators, and text-direction controls. Joiners and emoji are fine."""
    for position, char in enumerate(text, start=1):
        if (unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in TEXT_DIRECTION_CONTROLS):
            label = unicodedata.name(char, CONTROL_NAMES.get(char, "a control character"))
            return f"U+{ord(char):04X} ({label}) at position {position}"
    return None


def begin(conn: sqlite3.Connection, action: str, person_id: int | None, actor: str | None) -> int:
    """Record a correction and return its id, the ``rev`` of what it writes."""
    return inserted_id(conn.execute(
        "INSERT INTO corrections (at, actor, action, person_id, journaled) VALUES (?,?,?,?,1)",
        (utc_now(), actor, action, person_id),
    ))


def finish(conn: sqlite3.Connection, rev: int, faces: int) -> None:
    """The end of a correction: how many faces it changed, and what it
    changed sealed in the journal (``journal.seal``)."""
    conn.execute("UPDATE corrections SET faces = ? WHERE id = ?", (faces, rev))
    journal.seal(conn, rev)


def record(conn: sqlite3.Connection, rev: int) -> CorrectionRecord | None:
    """Correction ``rev`` as ``CorrectionRecord``, or None."""
    row = conn.execute(
        "SELECT c.at, c.actor, c.action, c.person_id, coalesce(p.name, (SELECT coalesce(cp.after_name, "
        "cp.before_name) FROM correction_people cp WHERE cp.person_id = c.person_id ORDER BY cp.rev DESC LIMIT 1)), "
        "c.faces, c.undoes, u.action, "
        "c.undone_by, c.journaled FROM corrections c LEFT JOIN people p ON p.id = c.person_id "
        "LEFT JOIN corrections u ON u.id = c.undoes WHERE c.id = ?", (rev,)
    ).fetchone()
    if row is None:
        return None
    at, actor, action, person_id, name, faces, undoes, undoes_action, undone_by, journaled = row
    from_people = conn.execute(
        "SELECT person_id, name FROM merged_people WHERE merge_id = (SELECT id FROM merges WHERE rev = ?) "
        "ORDER BY name", (rev,)
    ).fetchall() if action == "merge" else conn.execute(
        "SELECT DISTINCT p.id, p.name FROM correction_labels c JOIN people p ON p.id = c.before_person "
        "WHERE c.rev = ? AND c.before_person IS NOT c.after_person ORDER BY p.name", (rev,)
    ).fetchall()
    undoable = undone_by is None and (bool(journaled) or action == "merge")
    if undoable and action == "merge":
        merge = conn.execute("SELECT id, person_id FROM merges WHERE rev = ?", (rev,)).fetchone()
        undoable = merge is not None and merge[0] == conn.execute(
            "SELECT MAX(id) FROM merges WHERE person_id = ? AND undone_at IS NULL", (merge[1],)).fetchone()[0]
    return CorrectionRecord(rev, at, actor, action, person_id, name, faces,
                            [(int(i), str(n)) for i, n in from_people if i != person_id], undoes, undoes_action,
                            undone_by, undoable)


def set_person(conn: sqlite3.Connection, rev: int, person_id: int) -> None:
    """The person a correction is about, once known (one it creates)."""
    conn.execute("UPDATE corrections SET person_id = ? WHERE id = ?", (person_id, rev))


def mark_dirty(conn: sqlite3.Connection, person_ids, rev: int) -> None:
    """Recognition must re-evaluate these people's suggestions."""
    conn.executemany(
        "INSERT INTO recognition_dirty (person_id, rev) VALUES (?, ?) "
        "ON CONFLICT (person_id) DO UPDATE SET rev = excluded.rev",
        [(int(p), rev) for p in sorted(set(person_ids))],
    )


def require_people(conn: sqlite3.Connection, person_ids: list[int]) -> None:
    """``PersonNotFoundError`` naming every id that is no person."""
    ids = sorted(set(person_ids))
    known: set[int] = set()
    for chunk, marks in chunks(ids):
        known.update(r[0] for r in conn.execute(f"SELECT id FROM people WHERE id IN ({marks})", chunk))
    missing = [i for i in ids if i not in known]
    if missing:
        listed = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        raise PersonNotFoundError(f"no person with id {listed}", missing)


def new_person(conn: sqlite3.Connection, name: str, rev: int) -> int:
    """Insert a person, created by correction ``rev`` (its person from now
    on); ``NameTakenError`` when someone has the name (case-insensitive)."""
    name = clean_name(name)
    other = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
    if other is not None:
        raise NameTakenError(f"person {other[0]} is already called {name!r}")
    person_id = inserted_id(conn.execute("INSERT INTO people (name, created_at) VALUES (?, ?)", (name, utc_now())))
    journal.created_person(conn, rev, person_id)
    set_person(conn, rev, person_id)
    return person_id


def assign(conn: sqlite3.Connection, person_id: int, face_ids: list[int], rev: int) -> int:
    """The faces become confirmed faces of the person, taken from whoever had
    them; an earlier rejection of them for this person and any suggestion
    for them are dropped (the person's word is the latest). Returns how many
    were not already confirmed for this person."""
    ids = sorted({int(i) for i in face_ids})
    journal.capture_faces(conn, rev, ids, rejected_by=[person_id])
    previous: set[int] = set()
    already = 0
    for chunk, marks in chunks(ids):
        for owner, n in conn.execute(
            f"SELECT person_id, COUNT(*) FROM face_people WHERE face_id IN ({marks}) GROUP BY person_id", chunk
        ):
            previous.add(owner)
            if owner == person_id:
                already = n
        conn.executemany(
            "INSERT INTO face_people (face_id, person_id, rev) VALUES (?, ?, ?) "
            "ON CONFLICT (face_id) DO UPDATE SET person_id = excluded.person_id, rev = excluded.rev "
            "WHERE face_people.person_id != excluded.person_id",
            [(face_id, person_id, rev) for face_id in chunk],
        )
        conn.execute(f"DELETE FROM rejections WHERE person_id = ? AND face_id IN ({marks})", [person_id, *chunk])
        conn.execute(f"DELETE FROM suggestions WHERE face_id IN ({marks})", chunk)
    mark_dirty(conn, previous | {person_id}, rev)
    return len(ids) - already


def reject(conn: sqlite3.Connection, person_id: int, face_ids: list[int], rev: int) -> int:
    """These faces are not this person: remembered, so that neither a
    clustering run mapped to the person nor a suggestion attributes them to
    the person again; confirmed or suggested for the person, they are so no
    more. Returns how many were not rejected for the person before."""
    ids = sorted({int(i) for i in face_ids})
    journal.capture_faces(conn, rev, ids, rejected_by=[person_id])
    new = 0
    for chunk, marks in chunks(ids):
        before = conn.execute(
            f"SELECT COUNT(*) FROM rejections WHERE person_id = ? AND face_id IN ({marks})", [person_id, *chunk]
        ).fetchone()[0]
        conn.executemany(
            "INSERT INTO rejections (face_id, person_id, rev) VALUES (?, ?, ?) "
            "ON CONFLICT (face_id, person_id) DO NOTHING",
            [(face_id, person_id, rev) for face_id in chunk],
        )
        new += len(chunk) - before
        conn.execute(f"DELETE FROM face_people WHERE person_id = ? AND face_id IN ({marks})", [person_id, *chunk])
        conn.execute(f"DELETE FROM suggestions WHERE person_id = ? AND face_id IN ({marks})", [person_id, *chunk])
    mark_dirty(conn, [person_id], rev)
    return new


def merge(conn: sqlite3.Connection, person_id: int, others: list[int], rev: int, actor: str | None) -> int:
    """Merge ``others`` into ``person_id``: their confirmed faces, rejections,
    suggestions and cluster mappings become the person's, and they are
    deleted. A face confirmed for one of them that the person had rejected
    is the person's now (the merge says they are the same person): that
    rejection is dropped. Everything moved is recorded for ``undo_last_merge``.
    Returns the merge's id."""
    others = sorted(set(int(o) for o in others))
    if not others:
        raise MergeError("people: give at least one person to merge into this one")
    if person_id in others:
        raise MergeError(f"cannot merge person {person_id} into itself")
    require_people(conn, [person_id, *others])
    merge_id = inserted_id(conn.execute(
        "INSERT INTO merges (person_id, rev, at, actor) VALUES (?,?,?,?)", (person_id, rev, utc_now(), actor)
    ))
    moved = 0
    for other in others:
        conn.execute(
            "INSERT INTO merged_people (merge_id, person_id, name, created_at) "
            "SELECT ?, id, name, created_at FROM people WHERE id = ?",
            (merge_id, other),
        )

        def record(kind: str, sql: str, *params, from_person: int = other) -> None:
            conn.execute(
                f"INSERT INTO merge_moves (merge_id, from_person, kind, item) SELECT ?, ?, ?, face_id FROM ({sql})",
                (merge_id, from_person, kind, *params),
            )

        record("confirmed", "SELECT face_id FROM face_people WHERE person_id = ?", other)
        record("dropped_rejection", "SELECT r.face_id FROM rejections r JOIN face_people fp ON fp.face_id = r.face_id "
               "WHERE r.person_id = ? AND fp.person_id = ?", person_id, other)
        record("rejection", "SELECT face_id FROM rejections WHERE person_id = ?", other)
        record("suggestion", "SELECT face_id FROM suggestions WHERE person_id = ?", other)
        conn.execute(
            "INSERT INTO merge_moves (merge_id, from_person, kind, item, run_id) "
            "SELECT ?, ?, 'cluster', cluster, run_id FROM cluster_people WHERE person_id = ?",
            (merge_id, other, other),
        )
        conn.execute(
            "DELETE FROM rejections WHERE person_id = ? AND face_id IN "
            "(SELECT face_id FROM face_people WHERE person_id = ?)",
            (person_id, other),
        )
        moved += conn.execute(
            "UPDATE face_people SET person_id = ?, rev = ? WHERE person_id = ?", (person_id, rev, other)
        ).rowcount
        # The other's rejections, but not of faces the person has confirmed;
        # one the person already had keeps its own rev (undo leaves it).
        conn.execute(
            "INSERT INTO rejections (face_id, person_id, rev) SELECT face_id, ?, ? FROM rejections r "
            "WHERE r.person_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM face_people fp WHERE fp.face_id = r.face_id AND fp.person_id = ?) "
            "ON CONFLICT (face_id, person_id) DO NOTHING",
            (person_id, rev, other, person_id),
        )
        conn.execute("UPDATE suggestions SET person_id = ? WHERE person_id = ?", (person_id, other))
        conn.execute("UPDATE cluster_people SET person_id = ? WHERE person_id = ?", (person_id, other))
        conn.execute("DELETE FROM people WHERE id = ?", (other,))
    mark_dirty(conn, [person_id], rev)
    finish(conn, rev, moved)
    return merge_id


@dataclass
class UndoReport:
    """What undoing a merge did. ``left_as_they_are``: faces the merge moved
    that something changed since (moved, rejected, erased, assigned again):
    they stay as they are now."""

    merge_id: int
    person_id: int
    restored_people: list[int] = field(default_factory=list)
    restored_face_ids: list[int] = field(default_factory=list)
    rejections_restored: int = 0
    left_as_they_are: list[int] = field(default_factory=list)

    @property
    def faces_restored(self) -> int:
        return len(self.restored_face_ids)


def undo_last_merge(conn: sqlite3.Connection, person_id: int, rev: int) -> UndoReport:
    """Undo the person's last merge not undone yet: the merged people come
    back with their ids, names and creation times; each face the merge
    moved goes back to its person unless something touched it since (its row
    is no longer the merge's): such faces are left as they are and listed.
    Their rejections come back, the person loses the ones the merge gave
    it, and cluster mappings and suggestions go back where the person still
    has them. ``NothingToUndoError``; ``NameTakenError`` when a merged
    person's name has been given to someone since."""
    require_people(conn, [person_id])
    row = conn.execute(
        "SELECT id, rev FROM merges WHERE person_id = ? AND undone_at IS NULL ORDER BY id DESC LIMIT 1", (person_id,)
    ).fetchone()
    if row is None:
        raise NothingToUndoError(f"person {person_id} has no merge to undo")
    merge_id, merge_rev = row
    report = UndoReport(merge_id, person_id)
    for other, name, created_at in conn.execute(
        "SELECT person_id, name, created_at FROM merged_people WHERE merge_id = ? ORDER BY person_id", (merge_id,)
    ).fetchall():
        taken = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        if taken is not None:
            raise NameTakenError(
                f"cannot undo merge {merge_id}: person {taken[0]} is now called {name!r}; rename them first"
            )
        conn.execute("INSERT INTO people (id, name, created_at) VALUES (?,?,?)", (other, name, created_at))
        report.restored_people.append(other)
    moves = conn.execute(
        "SELECT from_person, kind, item, run_id FROM merge_moves WHERE merge_id = ? ORDER BY kind, item", (merge_id,)
    ).fetchall()
    restored: set[int] = set()
    for other, _kind, face_id, _ in [m for m in moves if m[1] == "confirmed"]:
        changed = conn.execute(
            "UPDATE face_people SET person_id = ?, rev = ? WHERE face_id = ? AND person_id = ? AND rev = ?",
            (other, rev, face_id, person_id, merge_rev),
        ).rowcount
        if changed:
            restored.add(face_id)
        else:
            report.left_as_they_are.append(face_id)
    report.restored_face_ids = sorted(restored)
    for other, kind, item, run_id in moves:
        if kind == "rejection":
            report.rejections_restored += conn.execute(
                "INSERT INTO rejections (face_id, person_id, rev) VALUES (?,?,?) "
                "ON CONFLICT (face_id, person_id) DO NOTHING",
                (item, other, rev),
            ).rowcount
            conn.execute(
                "DELETE FROM rejections WHERE face_id = ? AND person_id = ? AND rev = ?", (item, person_id, merge_rev)
            )
        elif kind == "dropped_rejection" and item in restored:
            conn.execute(
                "INSERT INTO rejections (face_id, person_id, rev) VALUES (?,?,?) "
                "ON CONFLICT (face_id, person_id) DO NOTHING",
                (item, person_id, rev),
            )
        elif kind == "suggestion":
            conn.execute(
                "UPDATE suggestions SET person_id = ? WHERE face_id = ? AND person_id = ?", (other, item, person_id)
            )
        elif kind == "cluster":
            conn.execute(
                "UPDATE cluster_people SET person_id = ? WHERE run_id = ? AND cluster = ? AND person_id = ?",
                (other, run_id, item, person_id),
            )
    conn.execute("UPDATE merges SET undone_at = ? WHERE id = ?", (utc_now(), merge_id))
    mark_dirty(conn, [person_id, *report.restored_people], rev)
    finish(conn, rev, report.faces_restored)
    report.left_as_they_are.sort()
    return report
