"""People and clustering runs in SQLite: ``<data_dir>/annotations.sqlite3``.

Kept apart from the index files (``faces.faiss``, ``metadata.sqlite3``) so that
the index can be rebuilt or swapped without touching what people typed in.
It refers to faces by their metadata face ids, which stay the same for a
photo that does not change across reindexing.

What it holds:

- clustering runs: the parameters and, per face, its cluster (-1 for a
  stranger), its nearest cluster and the **Euclidean** distance to that
  cluster's centre, exactly as computed; reading a run back recomputes nothing;
- people: a unique name (case-insensitive), the faces labelled with each
  person, and for each stored run the person each cluster is mapped to.

Several server workers may write at once: WAL mode, a busy timeout, and every
write in one ``BEGIN IMMEDIATE`` transaction. ``AnnotationsDB`` owns the
connection and the transactions; the rules live beside it: the layout in
``schema.py``, the clustering runs in ``clustering_runs.py``, the
corrections in ``corrections.py``, who each face is in ``attribution.py``,
and what comes back in ``records.py``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from indexer.people import attribution, clustering_runs, corrections, journal, review
from indexer.people import undo as undoing
from indexer.people.attribution import Attribution, PersonFace, chunks
from indexer.people.corrections import (  # noqa: F401  (re-exported: the errors of this module's methods)
    MAX_NAME_LENGTH,
    InvalidNameError,
    MergeError,
    NameTakenError,
    NothingToUndoError,
    PersonNotFoundError,
    UndoReport,
    clean_name,
)
from indexer.people.records import (  # noqa: F401  (re-exported: what this module's methods return and raise)
    ClusterNotFoundError,
    Correction,
    CorrectionRecord,
    Merge,
    NoClusteringError,
    Person,
    Places,
    RecognitionInput,
    RunInfo,
    StoredRun,
)
from indexer.people.schema import LAYOUT
from indexer.store.errors import StoreError
from indexer.store.file_modes import create_private_file, private_dir
from indexer.store.metadata import utc_now
from indexer.store.sqlite_db import NewerDatabaseError, migrate

log = logging.getLogger(__name__)

ANNOTATIONS_FILE = "annotations.sqlite3"
BUSY_TIMEOUT_S = 10.0

class AnnotationsDB:
    """The annotations database of one data directory; open with ``open``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        create_private_file(self.path)  # 0600: SQLite's -wal and -shm files take its mode
        # isolation_level=None: transactions are begun explicitly (_write, _read).
        self.conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
        try:
            self.conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            migrate(self.conn, LAYOUT, self.path)  # NewerDatabaseError for a file of a later release
        except BaseException:
            self.conn.close()
            raise

    @classmethod
    def open(cls, data_dir: Path | str) -> AnnotationsDB:
        """Open (creating when needed) the annotations of ``data_dir``, read-write."""
        path = Path(data_dir).expanduser().resolve() / ANNOTATIONS_FILE
        try:
            private_dir(path.parent)
            return cls(path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open {path} for writing ({exc}): the names of people and the clustering runs "
                "live there, so the data directory must be writable"
            ) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking SQLite's write lock up front (so that
        concurrent writers wait for each other instead of failing)."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query in it sees the same snapshot."""
        with self._lock:
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                self.conn.execute("COMMIT")

    # -- clustering runs -----------------------------------------------------

    def store_run(
        self,
        *,
        method: str,
        k: int,
        params: dict[str, Any],
        duration_s: float,
        face_ids: np.ndarray,
        clusters: np.ndarray,
        nearest: np.ndarray,
        distances: np.ndarray,
        actor: str | None = None,
    ) -> StoredRun:
        """Store a run over **every** face of the index in one transaction
        (``clustering_runs.store_run``) and return it as read back; the run
        is a correction (undoing it makes the run before the last again)."""
        with self._write() as conn:
            rev = corrections.begin(conn, "cluster", None, actor)
            run = clustering_runs.store_run(
                conn, method=method, k=k, params=params, duration_s=duration_s, face_ids=face_ids,
                clusters=clusters, nearest=nearest, distances=distances,
            )
            conn.execute("UPDATE cluster_runs SET rev = ? WHERE id = ?", (rev, run.info.run_id))
            corrections.finish(conn, rev, len(run.face_ids))
            return run

    def run_correction(self, run_id: int) -> int | None:
        """The correction that stored run ``run_id`` (undo it to go back to the run before)."""
        with self._read() as conn:
            row = conn.execute("SELECT rev FROM cluster_runs WHERE id = ?", (run_id,)).fetchone()
            return None if row is None or row[0] is None else int(row[0])

    def last_run_info(self) -> RunInfo | None:
        """The last stored run without its faces, or None."""
        with self._read() as conn:
            return clustering_runs.last_info(conn)

    def last_run(self) -> StoredRun | None:
        """The last stored run with its faces, as stored, or None."""
        with self._read() as conn:
            return clustering_runs.last_run(conn)

    def place_in_last_run(self, face_id: int) -> tuple[RunInfo, int, int, float | None] | None:
        """Where the last run put ``face_id`` (``clustering_runs.place_in_last_run``)."""
        with self._read() as conn:
            return clustering_runs.place_in_last_run(conn, face_id)

    def cluster_people(self, run_id: int) -> dict[int, Person]:
        """The person each cluster of run ``run_id`` is mapped to (unmapped clusters are left out)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT cluster, person_id FROM cluster_people WHERE run_id = ?", (run_id,)
            ).fetchall()
            people = self._people(conn, [person_id for _, person_id in rows])
        return {cluster: people[person_id] for cluster, person_id in rows}

    # -- people --------------------------------------------------------------

    def name_cluster(self, cluster: int, name: str, *, actor: str | None = None) -> Person:
        """Confirm the member faces of ``cluster`` in the last run as the
        person called ``name`` (``name_cluster_faces``); the person after."""
        return self.name_cluster_faces(cluster, name, actor=actor).person

    def name_cluster_faces(self, cluster: int, name: str, *, actor: str | None = None) -> Correction:
        """Confirm the member faces of ``cluster`` in the last run as the
        person called ``name`` (created when new) and map the cluster to
        them. Members confirmed for someone other than the cluster's previous
        person keep their person (move them with ``assign``), and members
        rejected for this person are left out: the correction's ``face_ids``
        are the members confirmed. Raises ``NoClusteringError``,
        ``ClusterNotFoundError``, or ValueError for a bad name."""
        name = clean_name(name)
        with self._write() as conn:
            info = clustering_runs.run_with_cluster(conn, cluster)
            row = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            rev = corrections.begin(conn, "name_cluster", None if row is None else row[0], actor)
            person_id = corrections.new_person(conn, name, rev) if row is None else row[0]
            mapped = conn.execute(
                "SELECT person_id FROM cluster_people WHERE run_id = ? AND cluster = ?", (info.run_id, cluster)
            ).fetchone()
            previous = mapped[0] if mapped else None
            members = [
                face_id for (face_id,) in conn.execute(
                    "SELECT cf.face_id FROM cluster_faces cf LEFT JOIN face_people fp ON fp.face_id = cf.face_id "
                    "WHERE cf.run_id = ? AND cf.cluster = ? AND (fp.person_id IS NULL OR fp.person_id = ?) "
                    "AND NOT EXISTS (SELECT 1 FROM rejections r WHERE r.face_id = cf.face_id AND r.person_id = ?)",
                    (info.run_id, cluster, previous, person_id),
                )
            ]
            changed = corrections.assign(conn, person_id, members, rev)
            journal.capture_cluster(conn, rev, info.run_id, cluster)
            conn.execute(
                "INSERT OR REPLACE INTO cluster_people (run_id, cluster, person_id) VALUES (?,?,?)",
                (info.run_id, cluster, person_id),
            )
            corrections.finish(conn, rev, changed)
            return Correction(self._people(conn, [person_id])[person_id], sorted(members), changed, rev)

    def remove_from_cluster(self, cluster: int, face_ids: list[int], *,
                            actor: str | None = None) -> tuple[int, list[int]]:
        """Take faces out of ``cluster`` of the last run before it is named
        (or after): they become strangers of the run, and when the cluster
        is someone's, faces that are not that person (rejected for them).
        Faces not in the cluster are left out. Returns the correction and
        the faces taken out; ``NoClusteringError``, ``ClusterNotFoundError``."""
        with self._write() as conn:
            info = clustering_runs.run_with_cluster(conn, cluster)
            mapped = conn.execute(
                "SELECT person_id FROM cluster_people WHERE run_id = ? AND cluster = ?", (info.run_id, cluster)
            ).fetchone()
            person_id = mapped[0] if mapped else None
            members = set(clustering_runs.members(conn, cluster))
            chosen = sorted(members & {int(f) for f in face_ids})
            rev = corrections.begin(conn, "remove", person_id, actor)
            journal.capture_members(conn, rev, info.run_id, chosen)
            conn.executemany("UPDATE cluster_faces SET cluster = -1 WHERE run_id = ? AND face_id = ?",
                             [(info.run_id, f) for f in chosen])
            if person_id is not None:
                corrections.reject(conn, person_id, chosen, rev)
            corrections.finish(conn, rev, len(chosen))
            return rev, chosen

    # -- "are these the same person?" (indexer/people/review.py) ------------

    def review_units(self) -> list[review.Unit]:
        """The people and the unnamed groups of the last run, with their faces."""
        with self._read() as conn:
            return review.units(conn)

    def different_links(self) -> list[review.Link]:
        """Every "different people" answer in force."""
        with self._read() as conn:
            return review.links(conn)

    def unit(self, side: review.Side) -> review.Unit:
        """A person or an unnamed group of the last run, with its faces now."""
        with self._read() as conn:
            if side.person_id is not None:
                corrections.require_people(conn, [side.person_id])
            return review.unit_of(conn, side)

    def answer_different(self, a: review.Side, b: review.Side, *, actor: str | None = None) -> int:
        """Remember that ``a`` and ``b`` are different people (undoable);
        returns the correction."""
        with self._write() as conn:
            for side in (a, b):
                if side.person_id is not None:
                    corrections.require_people(conn, [side.person_id])
            first, second = review.unit_of(conn, a), review.unit_of(conn, b)
            rev = corrections.begin(conn, "different", a.person_id or b.person_id, actor)
            review.remember_different(conn, rev, first, second)
            corrections.finish(conn, rev, len(first.face_ids) + len(second.face_ids))
            return rev

    def join_groups(self, into: int, other: int, *, actor: str | None = None,
                    apart: Iterable[int] = ()) -> tuple[int, list[int]]:
        """The members of group ``other`` of the last run join group
        ``into`` (both nobody's yet: "same person"), but for ``apart`` (a
        face whose photo already has a face in ``into``), which become
        strangers of the run; returns the correction and the faces moved
        (undoable)."""
        with self._write() as conn:
            info = clustering_runs.run_with_cluster(conn, into)
            members = clustering_runs.members(conn, other)
            rev = corrections.begin(conn, "join", None, actor)
            journal.capture_members(conn, rev, info.run_id, members)
            left = set(apart)
            moved = [f for f in members if f not in left]
            conn.executemany("UPDATE cluster_faces SET cluster = ? WHERE run_id = ? AND face_id = ?",
                             [(into if f not in left else -1, info.run_id, f) for f in members])
            corrections.finish(conn, rev, len(moved))
            return rev, moved

    def doubtful_suggestions(self, limit: int) -> list[tuple[int, int, str, float]]:
        """The suggestions recognition was least sure of (the farthest from
        the person's confirmed faces first), not confirmed since: (face,
        person, name, Euclidean distance)."""
        with self._read() as conn:
            return [(int(f), int(p), str(n), float(d)) for f, p, n, d in conn.execute(
                "SELECT s.face_id, s.person_id, p.name, s.distance FROM suggestions s "
                "JOIN people p ON p.id = s.person_id "
                "WHERE NOT EXISTS (SELECT 1 FROM face_people fp WHERE fp.face_id = s.face_id) "
                "ORDER BY s.distance DESC, s.face_id LIMIT ?", (int(limit),))]

    def confirmed(self) -> dict[int, int]:
        """Every confirmed face and its person."""
        with self._read() as conn:
            return dict(conn.execute("SELECT face_id, person_id FROM face_people").fetchall())

    def group_members(self, cluster: int) -> list[int]:
        """Every member of a group of the last run (``NoClusteringError``, ``ClusterNotFoundError``)."""
        with self._read() as conn:
            return clustering_runs.members(conn, cluster)

    def set_cover(self, person_id: int, face_id: int, *, actor: str | None = None) -> int:
        """Show the person with ``face_id``, one of their confirmed faces
        (confirmed now if it was not); returns the correction (undoable)."""
        with self._write() as conn:
            corrections.require_people(conn, [person_id])
            rev = corrections.begin(conn, "cover", person_id, actor)
            corrections.assign(conn, person_id, [face_id], rev)
            journal.capture_person(conn, rev, person_id)
            conn.execute("UPDATE people SET cover_face_id = ? WHERE id = ?", (face_id, person_id))
            corrections.finish(conn, rev, 1)
            return rev

    def people(self) -> list[Person]:
        """Every person, by name (case-insensitive)."""
        with self._read() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM people ORDER BY name, id").fetchall()]
            people = self._people(conn, ids)
        return [people[i] for i in ids]

    def person(self, person_id: int) -> Person:
        """One person; ``PersonNotFoundError`` when unknown."""
        with self._read() as conn:
            found = self._people(conn, [person_id])
        if person_id not in found:
            raise PersonNotFoundError(f"no person with id {person_id}", [person_id])
        return found[person_id]

    def person_by_name(self, name: str) -> Person | None:
        """The person called ``name`` (case-insensitive), or None."""
        with self._read() as conn:
            row = conn.execute("SELECT id FROM people WHERE name = ?", (name.strip(),)).fetchone()
            return None if row is None else self._people(conn, [row[0]])[row[0]]

    def create_person(self, name: str, face_ids: list[int], *, actor: str | None = None,
                      places: Places | None = None) -> Correction:
        """A new person whose confirmed faces are ``face_ids`` (taken from
        whoever had them). ``NameTakenError``, ValueError for a bad name.
        ``places``: where the faces are (``places``), recorded with it."""
        with self._write() as conn:
            self._remember(conn, places)
            rev = corrections.begin(conn, "create", None, actor)
            person_id = corrections.new_person(conn, name, rev)
            changed = corrections.assign(conn, person_id, face_ids, rev)
            corrections.finish(conn, rev, changed)
            return Correction(self._people(conn, [person_id])[person_id], sorted(set(face_ids)), changed, rev)

    def assign(self, person_id: int, face_ids: list[int], *, actor: str | None = None,
               places: Places | None = None) -> Correction:
        """The faces become confirmed faces of the person (``corrections.assign``)."""
        return self._correct("assign", corrections.assign, person_id, face_ids, actor, places)

    def reject(self, person_id: int, face_ids: list[int], *, actor: str | None = None,
               places: Places | None = None) -> Correction:
        """These faces are not the person (``corrections.reject``)."""
        return self._correct("reject", corrections.reject, person_id, face_ids, actor, places)

    def _correct(self, action: str, apply: Callable[[sqlite3.Connection, int, list[int], int], int], person_id: int,
                 face_ids: list[int], actor: str | None, places: Places | None) -> Correction:
        """One correction of the person's faces by ``apply`` (``corrections.assign``, ``.reject``)."""
        with self._write() as conn:
            corrections.require_people(conn, [person_id])
            self._remember(conn, places)
            rev = corrections.begin(conn, action, person_id, actor)
            changed = apply(conn, person_id, face_ids, rev)
            corrections.finish(conn, rev, changed)
            return Correction(self._people(conn, [person_id])[person_id], sorted(set(face_ids)), changed, rev)

    def merge(self, person_id: int, others: list[int], *, actor: str | None = None) -> Correction:
        """Merge ``others`` into the person (``corrections.merge``):
        ``PersonNotFoundError`` naming unknown ids, ``MergeError``. The
        correction's ``face_ids`` are the confirmed faces moved."""
        with self._write() as conn:
            rev = corrections.begin(conn, "merge", person_id, actor)
            merge_id = corrections.merge(conn, person_id, others, rev, actor)
            moved = [f for (f,) in conn.execute(
                "SELECT item FROM merge_moves WHERE merge_id = ? AND kind = 'confirmed' ORDER BY item", (merge_id,)
            )]
            return Correction(self._people(conn, [person_id])[person_id], moved, len(moved), rev)

    def undo_merge(self, person_id: int, *, actor: str | None = None) -> UndoReport:
        """Undo the person's last merge (``corrections.undo_last_merge``)."""
        with self._write() as conn:
            rev = corrections.begin(conn, "undo_merge", person_id, actor)
            report = corrections.undo_last_merge(conn, person_id, rev)
            for other in report.restored_people:
                journal.created_person(conn, rev, other)  # what undoing this merges again
            journal.seal(conn, rev)
            return report

    def undo(self, rev: int, *, actor: str | None = None) -> undoing.Undone:
        """Undo correction ``rev`` (``undo.undo``): what it changed goes
        back, but for what has changed since. The undo is a correction
        itself (``Undone.rev``): undoing it redoes."""
        with self._write() as conn:
            own = corrections.begin(conn, "undo", None, actor)
            return undoing.undo(conn, rev, own, actor)

    def corrections(self, limit: int) -> list[CorrectionRecord]:
        """The last ``limit`` corrections of the journal, newest first."""
        with self._read() as conn:
            revs = [r for (r,) in conn.execute("SELECT id FROM corrections ORDER BY id DESC LIMIT ?", (int(limit),))]
            return [record for rev in revs if (record := corrections.record(conn, rev)) is not None]

    def correction(self, rev: int) -> CorrectionRecord | None:
        """One correction of the journal as ``CorrectionRecord``, or None."""
        with self._read() as conn:
            return corrections.record(conn, rev)

    def merges(self, person_id: int) -> list[Merge]:
        """The merges into the person, newest first."""
        with self._read() as conn:
            corrections.require_people(conn, [person_id])
            return self._merges(conn, person_id, limit=None)

    @staticmethod
    def _merges(conn: sqlite3.Connection, person_id: int, *, limit: int | None, open_only: bool = False) -> list[Merge]:
        rows = conn.execute(
            "SELECT id, person_id, at, actor, undone_at, rev FROM merges WHERE person_id = ? "
            + ("AND undone_at IS NULL " if open_only else "") + "ORDER BY id DESC"
            + (f" LIMIT {int(limit)}" if limit is not None else ""),
            (person_id,),
        ).fetchall()
        return AnnotationsDB._merge_records(conn, rows)

    @staticmethod
    def _merge_records(conn: sqlite3.Connection, rows: list[tuple]) -> list[Merge]:
        """``Merge`` records of (id, person id, at, actor, undone_at, rev) rows."""
        out = []
        for merge_id, person_id, at, actor, undone_at, rev in rows:
            people = conn.execute(
                "SELECT person_id, name FROM merged_people WHERE merge_id = ? ORDER BY person_id", (merge_id,)
            ).fetchall()
            moved = conn.execute(
                "SELECT COUNT(*) FROM merge_moves WHERE merge_id = ? AND kind = 'confirmed'", (merge_id,)
            ).fetchone()[0]
            out.append(Merge(merge_id, person_id, at, actor, [tuple(p) for p in people], moved, undone_at, rev))
        return out

    def rename_person(self, person_id: int, name: str, *, actor: str | None = None) -> Person:
        """Give a person another name; ``NameTakenError`` when someone else has it."""
        name = clean_name(name)
        with self._write() as conn:
            other = conn.execute("SELECT id FROM people WHERE name = ? AND id != ?", (name, person_id)).fetchone()
            if other is not None:
                raise NameTakenError(f"person {other[0]} is already called {name!r}")
            rev = corrections.begin(conn, "rename", person_id, actor)
            journal.capture_person(conn, rev, person_id)
            if conn.execute("UPDATE people SET name = ? WHERE id = ?", (name, person_id)).rowcount == 0:
                raise PersonNotFoundError(f"no person with id {person_id}", [person_id])
            corrections.finish(conn, rev, 0)
            return self._people(conn, [person_id])[person_id]

    def delete_person(self, person_id: int, *, actor: str | None = None) -> None:
        """Forget a person: their name, confirmed faces, rejections,
        suggestions, merges and cluster mappings (the faces stay indexed)."""
        with self._write() as conn:
            corrections.require_people(conn, [person_id])
            rev = corrections.begin(conn, "delete", person_id, actor)
            journal.capture_person(conn, rev, person_id)
            confirmed = [f for (f,) in conn.execute(
                "SELECT face_id FROM face_people WHERE person_id = ?", (person_id,))]
            rejected = [f for (f,) in conn.execute(
                "SELECT face_id FROM rejections WHERE person_id = ?", (person_id,))]
            journal.capture_faces(conn, rev, confirmed)
            journal.capture_faces(conn, rev, rejected, rejected_by=[person_id])
            for run_id, cluster in conn.execute(
                "SELECT run_id, cluster FROM cluster_people WHERE person_id = ?", (person_id,)
            ).fetchall():
                journal.capture_cluster(conn, rev, run_id, cluster)
            conn.execute("DELETE FROM people WHERE id = ?", (person_id,))
            corrections.finish(conn, rev, len(confirmed))

    def faces_of_person(self, person_id: int) -> list[int]:
        """The face ids an erasure of the person takes: confirmed, and in a
        cluster of the last run mapped to them (not rejected for them).
        Suggested faces are not among them: an automatic guess is not a
        reason to erase a face for good (confirm them first).
        ``PersonNotFoundError`` when unknown."""
        with self._read() as conn:
            corrections.require_people(conn, [person_id])
            faces = attribution.person_faces(conn, person_id)
        return sorted(f.face_id for f in faces if f.source != "suggested")

    def person_faces(self, person_id: int) -> list[PersonFace]:
        """Every face attributed to the person now, with its source
        (``attribution.person_faces``). ``PersonNotFoundError`` when unknown."""
        with self._read() as conn:
            corrections.require_people(conn, [person_id])
            return attribution.person_faces(conn, person_id)

    def faces_of_cluster(self, cluster: int) -> list[int]:
        """The member face ids of a cluster of the last run (not its
        strangers). ``NoClusteringError``, ``ClusterNotFoundError``."""
        with self._read() as conn:
            return clustering_runs.members(conn, cluster)

    def forget_faces(self, face_ids: list[int], *, person_id: int | None = None) -> tuple[int, int]:
        """Remove erased faces from every stored clustering run, label,
        rejection, suggestion, merge record and the corrections journal
        (and, given ``person_id``, forget that person too, their names in
        the journal with them), overwriting the deleted content on disk.
        Returns (labels removed, clustering rows removed)."""
        ids = sorted({int(i) for i in face_ids})
        labels = rows = 0
        with self._lock:
            self.conn.execute("PRAGMA secure_delete=ON")
        with self._write() as conn:
            for chunk, marks in chunks(ids):
                labels += conn.execute(f"DELETE FROM face_people WHERE face_id IN ({marks})", chunk).rowcount
                rows += conn.execute(f"DELETE FROM cluster_faces WHERE face_id IN ({marks})", chunk).rowcount
                for table in ("rejections", "suggestions", "face_places", "correction_labels",
                              "correction_rejections", "correction_members", "different_sides"):
                    conn.execute(f"DELETE FROM {table} WHERE face_id IN ({marks})", chunk)
                conn.execute(f"DELETE FROM merge_moves WHERE kind != 'cluster' AND item IN ({marks})", chunk)
            if rows:
                conn.execute("UPDATE cluster_runs SET face_count = "
                             "(SELECT COUNT(*) FROM cluster_faces WHERE run_id = cluster_runs.id)")
            if person_id is not None:
                conn.execute("DELETE FROM people WHERE id = ?", (person_id,))
                journal.forget_person(conn, person_id)
                conn.execute("DELETE FROM different_sides WHERE person_id = ?", (person_id,))
        with self._lock:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return labels, rows

    def attributions(self, face_ids: list[int]) -> dict[int, Attribution]:
        """The person of each given face that has one, with its source
        (``attribution.attributions``)."""
        with self._read() as conn:
            return attribution.attributions(conn, face_ids)

    def people_of(self, face_ids: list[int]) -> dict[int, str]:
        """The name of each given face that has a person (see ``attributions``)."""
        return {face_id: a.name for face_id, a in self.attributions(face_ids).items()}

    # -- recognition ---------------------------------------------------------

    def recognition_input(self) -> RecognitionInput:
        """What ``indexer.people.recognition`` needs, from one snapshot."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM recognition_state WHERE key = 'face_watermark'").fetchone()
            dirty = dict(conn.execute("SELECT person_id, rev FROM recognition_dirty").fetchall())
            max_rev = conn.execute("SELECT COALESCE(MAX(id), 0) FROM corrections").fetchone()[0]
            confirmed = conn.execute("SELECT face_id, person_id FROM face_people ORDER BY face_id").fetchall()
            rejections = set(conn.execute("SELECT face_id, person_id FROM rejections").fetchall())
            rejections |= review.vetoes(review.links(conn))  # "different people" answers
            suggested = dict(conn.execute("SELECT face_id, person_id FROM suggestions").fetchall())
        return RecognitionInput(row[0] if row else 0, dirty, max_rev, confirmed, rejections, suggested, row is not None)

    def save_suggestions(
        self, evaluated: list[int], suggestions: dict[int, tuple[int, float]], *, max_rev: int, watermark: int
    ) -> int:
        """Replace the suggestions of the ``evaluated`` faces by
        ``suggestions`` (face id -> (person id, Euclidean distance to the
        person's nearest confirmed face)) in one transaction, skipping any that
        a correction made meanwhile forbids (the face confirmed, or rejected
        for that person, or the person gone); the people marked for
        re-evaluation up to correction ``max_rev`` are done, and faces up
        to ``watermark`` looked at. Returns the suggestions written."""
        written = 0
        with self._write() as conn:
            for chunk, marks in chunks(sorted({int(i) for i in evaluated})):
                conn.execute(f"DELETE FROM suggestions WHERE face_id IN ({marks})", chunk)
            for face_id, (person_id, distance) in sorted(suggestions.items()):
                written += conn.execute(
                    "INSERT INTO suggestions (face_id, person_id, distance) SELECT ?, ?, ? "
                    "WHERE EXISTS (SELECT 1 FROM people WHERE id = ?) "
                    "AND NOT EXISTS (SELECT 1 FROM face_people WHERE face_id = ?) "
                    "AND NOT EXISTS (SELECT 1 FROM rejections WHERE face_id = ? AND person_id = ?) "
                    "ON CONFLICT (face_id) DO NOTHING",
                    (face_id, person_id, float(distance), person_id, face_id, face_id, person_id),
                ).rowcount
            conn.execute("DELETE FROM recognition_dirty WHERE rev <= ?", (max_rev,))
            conn.execute(
                "INSERT INTO recognition_state (key, value) VALUES ('face_watermark', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
                (int(watermark),),
            )
        return written

    # -- face ids that change ---------------------------------------------------

    def highest_face_id(self) -> int:
        """The highest face id a label or a stored clustering refers to (0
        for none): a rebuilt index (``index --full``) gives its faces higher
        ids, so that none takes the name or cluster of another."""
        with self._read() as conn:
            return int(conn.execute(
                "SELECT COALESCE(MAX(face_id), 0) FROM "
                "(SELECT face_id FROM face_people UNION ALL SELECT face_id FROM cluster_faces)"
            ).fetchone()[0])

    def corrected_faces(self) -> set[int]:
        """Every face id a person said something about: confirmed, rejected,
        or recorded by a merge (for its undo)."""
        with self._read() as conn:
            return {f for (f,) in conn.execute(
                "SELECT face_id FROM face_people UNION SELECT face_id FROM rejections "
                "UNION SELECT item FROM merge_moves WHERE kind != 'cluster'"
            )}

    def places(self, face_ids: list[int]) -> Places:
        """Recorded places: face id -> (content hash, (top, right, bottom, left), video timestamp)."""
        out = {}
        with self._read() as conn:
            for chunk, marks in chunks(sorted(set(face_ids))):
                for face_id, content, top, right, bottom, left, timestamp in conn.execute(
                    "SELECT face_id, content_hash, top, right, bottom, left, timestamp FROM face_places "
                    f"WHERE face_id IN ({marks})", chunk
                ):
                    out[face_id] = (content, (top, right, bottom, left), timestamp)
        return out

    def remember_places(self, places: Places) -> None:
        """Record where faces are (see ``places``), replacing what was."""
        with self._write() as conn:
            self._remember(conn, places)

    @staticmethod
    def _remember(conn: sqlite3.Connection, places: Places | None) -> None:
        if places:
            conn.executemany(
                "INSERT OR REPLACE INTO face_places (face_id, content_hash, top, right, bottom, left, timestamp) "
                "VALUES (?,?,?,?,?,?,?)",
                [(f, c, *box, ts) for f, (c, box, ts) in places.items()],
            )

    def add_drawn(self, content_hash: str, box: tuple[int, int, int, int]) -> None:
        """Remember a face drawn on a file of this content (box: top, right,
        bottom, left in its pixels)."""
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO drawn_faces (content_hash, top, right, bottom, left, drawn_at) "
                         "VALUES (?,?,?,?,?,?)", (content_hash, *box, utc_now()))

    def forget_drawn(self, content_hash: str, box: tuple[int, int, int, int]) -> bool:
        """Forget a drawn face; False when there was none at that place."""
        with self._write() as conn:
            return conn.execute(
                "DELETE FROM drawn_faces WHERE content_hash = ? AND top = ? AND right = ? AND bottom = ? AND left = ?",
                (content_hash, *box),
            ).rowcount > 0

    def drawn(self) -> dict[str, list[tuple[int, int, int, int]]]:
        """Every drawn face: content hash -> boxes (top, right, bottom, left)."""
        out: dict[str, list[tuple[int, int, int, int]]] = {}
        with self._read() as conn:
            for content, top, right, bottom, left in conn.execute(
                "SELECT content_hash, top, right, bottom, left FROM drawn_faces ORDER BY content_hash, drawn_at"
            ):
                out.setdefault(content, []).append((top, right, bottom, left))
        return out

    def move_face_ids(self, moves: dict[int, int]) -> int:
        """Faces that got new ids (the same file and place, re-encoded):
        their confirmations, rejections, merge records and places follow
        them, in one transaction; a suggestion is left for recognition to
        make again. A new id that already has a person keeps it. Returns
        the faces moved."""
        moved = 0
        with self._write() as conn:
            for old, new in sorted(moves.items()):
                if conn.execute("SELECT 1 FROM face_people WHERE face_id = ?", (new,)).fetchone() is None:
                    conn.execute("UPDATE face_people SET face_id = ? WHERE face_id = ?", (new, old))
                conn.execute("UPDATE OR IGNORE rejections SET face_id = ? WHERE face_id = ?", (new, old))
                conn.execute("UPDATE OR IGNORE merge_moves SET item = ? WHERE item = ? AND kind != 'cluster'",
                             (new, old))
                conn.execute("UPDATE OR REPLACE face_places SET face_id = ? WHERE face_id = ?", (new, old))
                for table in ("face_people", "rejections", "suggestions"):
                    conn.execute(f"DELETE FROM {table} WHERE face_id = ?", (old,))
                moved += 1
        return moved

    def prune_faces(self, known: set[int]) -> int:
        """Drop labels, rejections, suggestions and places of faces not in ``known``
        (the published index's face ids: the others are gone). Returns the
        rows deleted."""
        deleted = 0
        with self._write() as conn:
            for table in ("face_people", "rejections", "suggestions", "face_places"):
                stale = [f for (f,) in conn.execute(f"SELECT DISTINCT face_id FROM {table}") if f not in known]
                for chunk, marks in chunks(stale):
                    deleted += conn.execute(f"DELETE FROM {table} WHERE face_id IN ({marks})", chunk).rowcount
        return deleted

    @classmethod
    def _people(cls, conn: sqlite3.Connection, person_ids: list[int]) -> dict[int, Person]:
        """The given people that exist, by id, with their face counts, the
        clusters of the last run mapped to them and their last open merge
        (a few grouped queries per 500 people)."""
        out: dict[int, Person] = {}
        for ids, marks in chunks(sorted(set(person_ids))):
            rows = conn.execute(f"SELECT id, name, created_at FROM people WHERE id IN ({marks})", ids).fetchall()
            counts = attribution.source_counts(conn, [r[0] for r in rows])
            clusters: dict[int, list[int]] = {}
            for person_id, cluster in conn.execute(
                "SELECT person_id, cluster FROM cluster_people WHERE run_id = "
                "(SELECT MAX(id) FROM cluster_runs WHERE undone = 0) "
                f"AND person_id IN ({marks}) ORDER BY cluster",
                ids,
            ):
                clusters.setdefault(person_id, []).append(cluster)
            covers = dict(conn.execute(
                f"SELECT person_id, MIN(face_id) FROM face_people WHERE person_id IN ({marks}) GROUP BY person_id", ids
            ).fetchall())
            covers.update(conn.execute(  # a cover chosen, while it is still theirs
                f"SELECT p.id, p.cover_face_id FROM people p JOIN face_people fp ON fp.face_id = p.cover_face_id "
                f"AND fp.person_id = p.id WHERE p.id IN ({marks})", ids
            ).fetchall())
            last_merges = {m.person_id: m for m in cls._merge_records(conn, conn.execute(
                "SELECT id, person_id, at, actor, undone_at, rev FROM merges WHERE id IN (SELECT MAX(id) FROM merges "
                f"WHERE undone_at IS NULL AND person_id IN ({marks}) GROUP BY person_id)", ids
            ).fetchall())}
            for person_id, name, created_at in rows:
                out[person_id] = Person(
                    person_id, name, created_at, counts[person_id]["confirmed"], clusters.get(person_id, []),
                    counts[person_id], last_merges.get(person_id), covers.get(person_id),
                )
        return out

    def close(self) -> None:
        with self._lock:
            self.conn.close()


def highest_annotated_face(data_dir: Path) -> int:
    """``AnnotationsDB.highest_face_id`` of the data directory (what a
    ``--full`` rebuild must not give to another face): 0 without
    annotations, or with damaged ones (logged: ``facesearch verify`` names
    them); a file of a newer facesearch is refused."""
    if not (Path(data_dir) / ANNOTATIONS_FILE).is_file():
        return 0
    try:
        annotations = AnnotationsDB.open(data_dir)
        try:
            return annotations.highest_face_id()
        finally:
            annotations.close()
    except NewerDatabaseError:
        raise
    except (StoreError, sqlite3.DatabaseError) as exc:
        log.warning("cannot read %s (%s)", Path(data_dir) / ANNOTATIONS_FILE, exc)
        return 0
