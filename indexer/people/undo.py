"""Undo any correction (``AnnotationsDB.undo``), from what the journal
kept of it (``indexer.people.journal``): every row it wrote that nothing
has touched since goes back to what it was; a row changed since (a face
moved again, a person renamed again) is left as it is and listed. A merge
is undone as ``corrections.undo_last_merge`` undoes it (the last merge of a
person first); undoing the undo of a merge merges the same people again.

An undo is a correction itself (action ``undo``), journaled like the
others: undoing it redoes what it undid."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from indexer.people import corrections, journal
from indexer.people.corrections import NameTakenError, NothingToUndoError


@dataclass
class Undone:
    """What an undo did: ``rev``, its own correction (undo it to redo);
    ``target`` and ``action``, the correction undone; ``person_ids``, the
    people it concerned that exist now; ``face_ids``, the faces put back;
    ``left_as_they_are``, faces changed since, left so."""

    rev: int
    target: int
    action: str
    person_ids: list[int] = field(default_factory=list)
    face_ids: list[int] = field(default_factory=list)
    left_as_they_are: list[int] = field(default_factory=list)


def undo(conn: sqlite3.Connection, target: int, rev: int, actor: str | None) -> Undone:
    """Undo correction ``target`` by correction ``rev`` (begun by the
    caller, action ``undo``). ``NothingToUndoError`` for an unknown or
    already undone correction, or a merge that is not its person's last;
    ``NameTakenError`` when a person it would bring back has had their name
    given to someone since."""
    row = conn.execute(
        "SELECT action, person_id, undone_by, undoes, journaled FROM corrections WHERE id = ?", (target,)
    ).fetchone()
    if row is None:
        raise NothingToUndoError(f"there is no correction {target}")
    action, person_id, undone_by, undoes, journaled = row
    if undone_by is not None:
        raise NothingToUndoError(f"correction {target} ({action}) is already undone")
    if not journaled and action != "merge":
        raise NothingToUndoError(f"correction {target} ({action}) was made by a release that kept nothing to "
                                 "undo it with")
    conn.execute("UPDATE corrections SET undoes = ?, person_id = ? WHERE id = ?", (target, person_id, rev))
    if action == "merge":
        done = _undo_merge(conn, target, rev)
    elif action == "cluster" or _undid(conn, action, undoes, "cluster"):
        run = target if action == "cluster" else undoes
        conn.execute("UPDATE cluster_runs SET undone = ? WHERE rev = ?", (1 if action == "cluster" else 0, run))
        if not conn.execute("SELECT 1 FROM cluster_runs WHERE rev = ?", (run,)).fetchone():
            raise NothingToUndoError("that clustering is gone (only the last 5 are kept)")
        done = Undone(rev, target, "")
    elif action == "different" or _undid(conn, action, undoes, "different"):
        answer = target if action == "different" else undoes
        conn.execute("UPDATE different SET active = ? WHERE rev = ?", (0 if action == "different" else 1, answer))
        done = Undone(rev, target, "")
    elif _undid_a_merge(conn, action, undoes):
        done = _merge_again(conn, target, person_id, rev, actor)
    else:
        done = _undo_rows(conn, target, rev)
    done.action = action
    if action == "undo" and undoes is not None:
        conn.execute("UPDATE corrections SET undone_by = NULL WHERE id = ?", (undoes,))
    conn.execute("UPDATE corrections SET undone_by = ? WHERE id = ?", (rev, target))
    corrections.finish(conn, rev, len(done.face_ids))
    done.person_ids = _existing(conn, done.person_ids)
    return done


def _undid(conn: sqlite3.Connection, action: str, undoes: int | None, what: str) -> bool:
    """Whether the correction is an undo of a correction of action ``what``."""
    if action != "undo" or undoes is None:
        return False
    row = conn.execute("SELECT action FROM corrections WHERE id = ?", (undoes,)).fetchone()
    return row is not None and row[0] == what


def _undid_a_merge(conn: sqlite3.Connection, action: str, undoes: int | None) -> bool:
    """Whether the correction undid a merge: the "Undo merge" of a person,
    or an undo of a merge correction."""
    return action == "undo_merge" or _undid(conn, action, undoes, "merge")


def _undo_merge(conn: sqlite3.Connection, target: int, rev: int) -> Undone:
    row = conn.execute("SELECT id, person_id FROM merges WHERE rev = ?", (target,)).fetchone()
    if row is None:
        raise NothingToUndoError(f"the merge of correction {target} is gone (its person was deleted)")
    merge_id, person_id = row
    last = conn.execute(
        "SELECT MAX(id) FROM merges WHERE person_id = ? AND undone_at IS NULL", (person_id,)
    ).fetchone()[0]
    if last != merge_id:
        raise NothingToUndoError(f"a later merge into person {person_id} must be undone first")
    report = corrections.undo_last_merge(conn, person_id, rev)
    for other in report.restored_people:
        journal.created_person(conn, rev, other)  # what undoing this undo merges again
    return Undone(rev, target, "merge", [person_id, *report.restored_people], report.restored_face_ids,
                  report.left_as_they_are)


def _merge_again(conn: sqlite3.Connection, target: int, person_id: int, rev: int, actor: str | None) -> Undone:
    others = [p for (p,) in conn.execute(
        "SELECT person_id FROM correction_people WHERE rev = ? AND before_name IS NULL ORDER BY person_id", (target,)
    )]
    others = _existing(conn, others)
    if not others:
        raise NothingToUndoError("the people that undo brought back are gone: there is nobody to merge again")
    merge_id = corrections.merge(conn, person_id, others, rev, actor)
    moved = [f for (f,) in conn.execute(
        "SELECT item FROM merge_moves WHERE merge_id = ? AND kind = 'confirmed' ORDER BY item", (merge_id,)
    )]
    return Undone(rev, target, "", [person_id, *others], moved)


def _undo_rows(conn: sqlite3.Connection, target: int, rev: int) -> Undone:
    done = Undone(rev, target, "")
    people = conn.execute(
        "SELECT person_id, before_name, after_name, created_at, before_cover, after_cover FROM correction_people "
        "WHERE rev = ?", (target,)
    ).fetchall()
    for person_id, before, after, created_at, cover, _ in people:  # people it deleted come back first
        if before is not None and after is None and not _exists(conn, person_id):
            _name_free(conn, before, person_id)
            journal.created_person(conn, rev, person_id)
            conn.execute("INSERT INTO people (id, name, created_at, cover_face_id) VALUES (?,?,?,?)",
                         (person_id, before, created_at, cover))
        done.person_ids.append(person_id)
    _labels(conn, target, rev, done)
    _rejections(conn, target, rev, done)
    _clusters(conn, target, rev)
    _members(conn, target, rev, done)
    for person_id, before, after, _, before_cover, after_cover in people:
        now = conn.execute("SELECT name, cover_face_id FROM people WHERE id = ?", (person_id,)).fetchone()
        if now is None or after is None or now[0] != after:
            continue  # deleted or renamed since: left as it is
        if before is not None and now[1] == after_cover and before_cover != after_cover:  # its cover choice
            journal.capture_person(conn, rev, person_id)
            conn.execute("UPDATE people SET cover_face_id = ? WHERE id = ?", (before_cover, person_id))
        if before is not None and before != after:  # renamed by it
            _name_free(conn, before, person_id)
            journal.capture_person(conn, rev, person_id)
            conn.execute("UPDATE people SET name = ? WHERE id = ?", (before, person_id))
        elif conn.execute("SELECT 1 FROM face_people WHERE person_id = ? LIMIT 1", (person_id,)).fetchone() is None:
            journal.capture_person(conn, rev, person_id)  # created by it, and has no face left
            conn.execute("DELETE FROM people WHERE id = ?", (person_id,))
    corrections.mark_dirty(conn, _existing(conn, done.person_ids), rev)
    done.face_ids.sort()
    done.left_as_they_are = sorted(set(done.left_as_they_are) - set(done.face_ids))
    return done


def _labels(conn: sqlite3.Connection, target: int, rev: int, done: Undone) -> None:
    rows = conn.execute(
        "SELECT c.face_id, c.before_person, c.before_rev, c.after_person, c.after_rev, fp.person_id, fp.rev "
        "FROM correction_labels c LEFT JOIN face_people fp ON fp.face_id = c.face_id WHERE c.rev = ?", (target,)
    ).fetchall()
    back = [r for r in rows if (r[5], r[6]) == (r[3], r[4]) and (r[1] is None or _exists(conn, r[1]))]
    done.left_as_they_are += [r[0] for r in rows if r not in back]
    journal.capture_faces(conn, rev, [r[0] for r in back])
    for face_id, before, before_rev, after, *_ in back:
        if before is None:
            conn.execute("DELETE FROM face_people WHERE face_id = ?", (face_id,))
        else:
            conn.execute("INSERT OR REPLACE INTO face_people (face_id, person_id, rev) VALUES (?,?,?)",
                         (face_id, before, before_rev))
        done.face_ids.append(face_id)
        done.person_ids += [p for p in (before, after) if p is not None]


def _rejections(conn: sqlite3.Connection, target: int, rev: int, done: Undone) -> None:
    rows = conn.execute(
        "SELECT c.face_id, c.person_id, c.before_rev, c.after_rev, r.rev FROM correction_rejections c "
        "LEFT JOIN rejections r ON r.face_id = c.face_id AND r.person_id = c.person_id WHERE c.rev = ?", (target,)
    ).fetchall()
    for face_id, person_id, before_rev, after_rev, now in rows:
        if now != after_rev or not _exists(conn, person_id):
            done.left_as_they_are.append(face_id)
            continue
        journal.capture_faces(conn, rev, [face_id], rejected_by=[person_id])
        if before_rev is None:
            conn.execute("DELETE FROM rejections WHERE face_id = ? AND person_id = ?", (face_id, person_id))
        else:
            conn.execute("INSERT OR REPLACE INTO rejections (face_id, person_id, rev) VALUES (?,?,?)",
                         (face_id, person_id, before_rev))
        if face_id not in done.face_ids:
            done.face_ids.append(face_id)
        done.person_ids.append(person_id)


def _clusters(conn: sqlite3.Connection, target: int, rev: int) -> None:
    rows = conn.execute(
        "SELECT c.run_id, c.cluster, c.before_person, c.after_person, cp.person_id FROM correction_clusters c "
        "LEFT JOIN cluster_people cp ON cp.run_id = c.run_id AND cp.cluster = c.cluster WHERE c.rev = ?", (target,)
    ).fetchall()
    for run_id, cluster, before, after, now in rows:
        if now != after or not conn.execute("SELECT 1 FROM cluster_runs WHERE id = ?", (run_id,)).fetchone():
            continue
        journal.capture_cluster(conn, rev, run_id, cluster)
        if before is None or not _exists(conn, before):
            conn.execute("DELETE FROM cluster_people WHERE run_id = ? AND cluster = ?", (run_id, cluster))
        else:
            conn.execute("INSERT OR REPLACE INTO cluster_people (run_id, cluster, person_id) VALUES (?,?,?)",
                         (run_id, cluster, before))


def _members(conn: sqlite3.Connection, target: int, rev: int, done: Undone) -> None:
    rows = conn.execute(
        "SELECT c.run_id, c.face_id, c.before_cluster, c.after_cluster, cf.cluster FROM correction_members c "
        "LEFT JOIN cluster_faces cf ON cf.run_id = c.run_id AND cf.face_id = c.face_id WHERE c.rev = ?", (target,)
    ).fetchall()
    for run_id, face_id, before, after, now in rows:
        if now is None or now != after:
            continue  # the run or the face is gone
        journal.capture_members(conn, rev, run_id, [face_id])
        conn.execute("UPDATE cluster_faces SET cluster = ? WHERE run_id = ? AND face_id = ?", (before, run_id, face_id))
        if face_id not in done.face_ids:
            done.face_ids.append(face_id)


def _exists(conn: sqlite3.Connection, person_id: int) -> bool:
    return conn.execute("SELECT 1 FROM people WHERE id = ?", (person_id,)).fetchone() is not None


def _existing(conn: sqlite3.Connection, person_ids: list[int]) -> list[int]:
    return [p for p in dict.fromkeys(person_ids) if _exists(conn, p)]


def _name_free(conn: sqlite3.Connection, name: str, person_id: int) -> None:
    taken = conn.execute("SELECT id FROM people WHERE name = ? AND id != ?", (name, person_id)).fetchone()
    if taken is not None:
        raise NameTakenError(f"person {taken[0]} is called {name!r} now: rename them first")
