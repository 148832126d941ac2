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
write in one ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexer.store.base import StoreError
from indexer.store.metadata import utc_now

ANNOTATIONS_FILE = "annotations.sqlite3"
MAX_NAME_LENGTH = 100
# Older runs are deleted when a new one is stored (each holds a row per face).
KEEP_RUNS = 5
BUSY_TIMEOUT_S = 10.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS cluster_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  TEXT NOT NULL,               -- ISO 8601, UTC
    method      TEXT NOT NULL,
    k           INTEGER NOT NULL,            -- number of clusters
    params      TEXT NOT NULL,               -- JSON of the parameters used
    face_count  INTEGER NOT NULL,
    duration_s  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cluster_faces (
    run_id   INTEGER NOT NULL REFERENCES cluster_runs(id) ON DELETE CASCADE,
    face_id  INTEGER NOT NULL,               -- metadata face id
    cluster  INTEGER NOT NULL,               -- 0..k-1, or -1 for a stranger
    nearest  INTEGER NOT NULL,               -- own cluster, a stranger's nearest one, -1 for none
    distance REAL,                           -- Euclidean, to the centre of `nearest`; NULL for none
    PRIMARY KEY (run_id, face_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS people (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS face_people (
    face_id   INTEGER PRIMARY KEY,           -- a face has at most one person
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS face_people_person ON face_people(person_id);
CREATE TABLE IF NOT EXISTS cluster_people (
    run_id    INTEGER NOT NULL REFERENCES cluster_runs(id) ON DELETE CASCADE,
    cluster   INTEGER NOT NULL,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    PRIMARY KEY (run_id, cluster)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cluster_people_person ON cluster_people(person_id);
"""


class NoClusteringError(LookupError):
    """No clustering run has been stored yet."""


class ClusterNotFoundError(LookupError):
    """The last run has no cluster with that id."""


class PersonNotFoundError(LookupError):
    """No person with that id."""


class NameTakenError(ValueError):
    """Another person already has that name."""


@dataclass(frozen=True)
class RunInfo:
    """A stored clustering run without its faces."""

    run_id: int
    created_at: str
    method: str
    k: int
    params: dict
    face_count: int
    duration_s: float


@dataclass(frozen=True)
class StoredRun:
    """A stored clustering run with one entry per face, in face-id order.

    ``face_ids`` int64 (n,); ``clusters`` int64 (n,), 0..k-1 or -1 for a
    stranger; ``nearest`` int64 (n,), the own cluster or a stranger's nearest
    one (-1 for none); ``distances`` float32 (n,), Euclidean distance to the
    centre of ``nearest`` (NaN for none).
    """

    info: RunInfo
    face_ids: np.ndarray
    clusters: np.ndarray
    nearest: np.ndarray
    distances: np.ndarray


@dataclass(frozen=True)
class Person:
    """A named person. ``face_count``: faces explicitly labelled with them;
    ``clusters``: the clusters of the last run mapped to them."""

    person_id: int
    name: str
    created_at: str
    face_count: int
    clusters: list[int]


def clean_name(name: str) -> str:
    """The name without surrounding whitespace; ValueError when empty or too long."""
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH:
        raise ValueError(f"a name must have 1 to {MAX_NAME_LENGTH} characters")
    return cleaned


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays in run parameters become plain JSON values."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in the run parameters")


class AnnotationsDB:
    """The annotations database of one data directory; open with ``open``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        # isolation_level=None: transactions are begun explicitly (_write, _read).
        self.conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
        self.conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self.conn.executescript(f"BEGIN IMMEDIATE;\n{SCHEMA}\nCOMMIT;")

    @classmethod
    def open(cls, data_dir: Path | str) -> AnnotationsDB:
        """Open (creating when needed) the annotations of ``data_dir``, read-write."""
        path = Path(data_dir).expanduser().resolve() / ANNOTATIONS_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
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
        params: dict,
        duration_s: float,
        face_ids: np.ndarray,
        clusters: np.ndarray,
        nearest: np.ndarray,
        distances: np.ndarray,
    ) -> StoredRun:
        """Store a run over **every** face of the index (arrays as in
        ``StoredRun``), in one transaction, and return it as read back.

        Labels of faces that are not in the run (gone from the index) are
        deleted, each named person is mapped to a cluster of the new run (see
        ``_map_people``), and runs older than the last ``KEEP_RUNS`` deleted.
        """
        face_ids = np.asarray(face_ids, dtype=np.int64)
        clusters = np.asarray(clusters, dtype=np.int64)
        nearest = np.asarray(nearest, dtype=np.int64)
        distances = np.asarray(distances, dtype=np.float32)
        if not len(face_ids) == len(clusters) == len(nearest) == len(distances):
            raise ValueError("face_ids, clusters, nearest and distances must have the same length")
        params_json = json.dumps(params, default=_json_default, sort_keys=True)
        # float32 -> Python float is exact; NaN (no nearest cluster) is stored as NULL.
        stored_distances = [None if math.isnan(d) else d for d in distances.astype(np.float64).tolist()]
        created_at = utc_now()
        with self._write() as conn:
            run_id = conn.execute(
                "INSERT INTO cluster_runs (created_at, method, k, params, face_count, duration_s) "
                "VALUES (?,?,?,?,?,?)",
                (created_at, method, int(k), params_json, len(face_ids), float(duration_s)),
            ).lastrowid
            conn.executemany(
                "INSERT INTO cluster_faces (run_id, face_id, cluster, nearest, distance) VALUES (?,?,?,?,?)",
                zip([run_id] * len(face_ids), face_ids.tolist(), clusters.tolist(), nearest.tolist(),
                    stored_distances),
            )
            conn.execute(
                "DELETE FROM face_people WHERE face_id NOT IN "
                "(SELECT face_id FROM cluster_faces WHERE run_id = ?)",
                (run_id,),
            )
            self._map_people(conn, run_id)
            conn.execute("DELETE FROM cluster_runs WHERE id <= ?", (run_id - KEEP_RUNS,))
        info = RunInfo(run_id, created_at, method, int(k), json.loads(params_json), len(face_ids), float(duration_s))
        order = np.argsort(face_ids, kind="stable")
        return StoredRun(info, face_ids[order], clusters[order], nearest[order], distances[order])

    @staticmethod
    def _map_people(conn: sqlite3.Connection, run_id: int) -> None:
        """Map each person to the cluster of ``run_id`` that holds most of
        their labelled faces (ties: the lower cluster id). When several people
        claim one cluster, the one with more faces there wins (ties: the lower
        person id); the others stay unmapped in this run."""
        rows = conn.execute(
            "SELECT fp.person_id, cf.cluster, COUNT(*) FROM face_people fp "
            "JOIN cluster_faces cf ON cf.run_id = ? AND cf.face_id = fp.face_id "
            "WHERE cf.cluster >= 0 GROUP BY fp.person_id, cf.cluster",
            (run_id,),
        ).fetchall()
        best: dict[int, tuple[int, int]] = {}  # person -> (faces, cluster)
        for person_id, cluster, count in rows:
            current = best.get(person_id)
            if current is None or (count, -cluster) > (current[0], -current[1]):
                best[person_id] = (count, cluster)
        winner: dict[int, tuple[int, int]] = {}  # cluster -> (faces, person)
        for person_id, (count, cluster) in best.items():
            current = winner.get(cluster)
            if current is None or (count, -person_id) > (current[0], -current[1]):
                winner[cluster] = (count, person_id)
        conn.executemany(
            "INSERT INTO cluster_people (run_id, cluster, person_id) VALUES (?,?,?)",
            [(run_id, cluster, person_id) for cluster, (_, person_id) in winner.items()],
        )

    def last_run_info(self) -> RunInfo | None:
        """The last stored run without its faces, or None."""
        with self._read() as conn:
            return self._last_info(conn)

    @staticmethod
    def _last_info(conn: sqlite3.Connection) -> RunInfo | None:
        row = conn.execute(
            "SELECT id, created_at, method, k, params, face_count, duration_s FROM cluster_runs "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return RunInfo(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6])

    def last_run(self) -> StoredRun | None:
        """The last stored run with its faces, as stored, or None."""
        with self._read() as conn:
            info = self._last_info(conn)
            if info is None:
                return None
            rows = conn.execute(
                "SELECT face_id, cluster, nearest, distance FROM cluster_faces WHERE run_id = ? ORDER BY face_id",
                (info.run_id,),
            ).fetchall()
        if not rows:
            empty = np.zeros(0, dtype=np.int64)
            return StoredRun(info, empty, empty.copy(), empty.copy(), np.zeros(0, dtype=np.float32))
        face_ids, clusters, nearest, distances = zip(*rows)
        return StoredRun(
            info,
            np.array(face_ids, dtype=np.int64),
            np.array(clusters, dtype=np.int64),
            np.array(nearest, dtype=np.int64),
            np.array(distances, dtype=np.float64).astype(np.float32),  # NULL -> NaN
        )

    def cluster_people(self, run_id: int) -> dict[int, Person]:
        """The person each cluster of run ``run_id`` is mapped to (unmapped clusters are left out)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT cluster, person_id FROM cluster_people WHERE run_id = ?", (run_id,)
            ).fetchall()
            people = self._people(conn, [person_id for _, person_id in rows])
        return {cluster: people[person_id] for cluster, person_id in rows}

    # -- people --------------------------------------------------------------

    def name_cluster(self, cluster: int, name: str) -> Person:
        """Label every member face of ``cluster`` in the last run with the
        person called ``name`` (created when new; a face labelled with someone
        else is relabelled) and map the cluster to them. Raises
        ``NoClusteringError``, ``ClusterNotFoundError``, or ValueError for a
        bad name."""
        name = clean_name(name)
        with self._write() as conn:
            info = self._run_with_cluster(conn, cluster)
            row = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            if row is None:
                person_id = conn.execute(
                    "INSERT INTO people (name, created_at) VALUES (?, ?)", (name, utc_now())
                ).lastrowid
            else:
                person_id = row[0]
            conn.execute(
                "INSERT INTO face_people (face_id, person_id) "
                "SELECT face_id, ? FROM cluster_faces WHERE run_id = ? AND cluster = ? "
                "ON CONFLICT (face_id) DO UPDATE SET person_id = excluded.person_id",
                (person_id, info.run_id, cluster),
            )
            conn.execute(
                "INSERT OR REPLACE INTO cluster_people (run_id, cluster, person_id) VALUES (?,?,?)",
                (info.run_id, cluster, person_id),
            )
            return self._people(conn, [person_id])[person_id]

    @classmethod
    def _run_with_cluster(cls, conn: sqlite3.Connection, cluster: int) -> RunInfo:
        """The last run, which must have ``cluster``: ``NoClusteringError``,
        ``ClusterNotFoundError`` otherwise."""
        info = cls._last_info(conn)
        if info is None:
            raise NoClusteringError("no clustering has been run yet: POST /api/v1/clusters first")
        if not 0 <= cluster < info.k:
            raise ClusterNotFoundError(
                f"the last clustering (run {info.run_id}) has no cluster {cluster}: its ids are 0 to {info.k - 1}"
            )
        return info

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
            raise PersonNotFoundError(f"no person with id {person_id}")
        return found[person_id]

    def rename_person(self, person_id: int, name: str) -> Person:
        """Give a person another name; ``NameTakenError`` when someone else has it."""
        name = clean_name(name)
        with self._write() as conn:
            other = conn.execute("SELECT id FROM people WHERE name = ? AND id != ?", (name, person_id)).fetchone()
            if other is not None:
                raise NameTakenError(f"person {other[0]} is already called {name!r}")
            if conn.execute("UPDATE people SET name = ? WHERE id = ?", (name, person_id)).rowcount == 0:
                raise PersonNotFoundError(f"no person with id {person_id}")
            return self._people(conn, [person_id])[person_id]

    def delete_person(self, person_id: int) -> None:
        """Forget a person: their name, face labels and cluster mappings (the faces stay indexed)."""
        with self._write() as conn:
            if conn.execute("DELETE FROM people WHERE id = ?", (person_id,)).rowcount == 0:
                raise PersonNotFoundError(f"no person with id {person_id}")

    def faces_of_person(self, person_id: int) -> list[int]:
        """Every face id of a person: labelled with them, or in a cluster of
        the last run mapped to them. ``PersonNotFoundError`` when unknown."""
        with self._read() as conn:
            if conn.execute("SELECT 1 FROM people WHERE id = ?", (person_id,)).fetchone() is None:
                raise PersonNotFoundError(f"no person with id {person_id}")
            rows = conn.execute(
                "SELECT face_id FROM face_people WHERE person_id = ? UNION "
                "SELECT cf.face_id FROM cluster_faces cf JOIN cluster_people cp "
                "ON cp.run_id = cf.run_id AND cp.cluster = cf.cluster "
                "WHERE cp.person_id = ? AND cf.run_id = (SELECT MAX(id) FROM cluster_runs)",
                (person_id, person_id),
            ).fetchall()
        return sorted(r[0] for r in rows)

    def faces_of_cluster(self, cluster: int) -> list[int]:
        """The member face ids of a cluster of the last run (not its
        strangers). ``NoClusteringError``, ``ClusterNotFoundError``."""
        with self._read() as conn:
            info = self._run_with_cluster(conn, cluster)
            rows = conn.execute(
                "SELECT face_id FROM cluster_faces WHERE run_id = ? AND cluster = ? ORDER BY face_id",
                (info.run_id, cluster),
            ).fetchall()
        return [r[0] for r in rows]

    def forget_faces(self, face_ids: list[int], *, person_id: int | None = None) -> tuple[int, int]:
        """Remove erased faces from every stored clustering run and label
        (and, given ``person_id``, forget that person too), overwriting the
        deleted content on disk. Returns (labels removed, clustering rows
        removed)."""
        ids = sorted({int(i) for i in face_ids})
        labels = rows = 0
        with self._lock:
            self.conn.execute("PRAGMA secure_delete=ON")
        with self._write() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                labels += conn.execute(f"DELETE FROM face_people WHERE face_id IN ({marks})", chunk).rowcount
                rows += conn.execute(f"DELETE FROM cluster_faces WHERE face_id IN ({marks})", chunk).rowcount
            if rows:
                conn.execute("UPDATE cluster_runs SET face_count = "
                             "(SELECT COUNT(*) FROM cluster_faces WHERE run_id = cluster_runs.id)")
            if person_id is not None:
                conn.execute("DELETE FROM people WHERE id = ?", (person_id,))
        with self._lock:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return labels, rows

    def people_of(self, face_ids: list[int]) -> dict[int, str]:
        """The name of each given face that has a person: its own label, else
        the person its cluster of the last run is mapped to."""
        ids = sorted({int(i) for i in face_ids})
        out: dict[int, str] = {}
        if not ids:
            return out
        with self._read() as conn:
            last = conn.execute("SELECT MAX(id) FROM cluster_runs").fetchone()[0]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                if last is not None:
                    out.update(conn.execute(
                        "SELECT cf.face_id, p.name FROM cluster_faces cf "
                        "JOIN cluster_people cp ON cp.run_id = cf.run_id AND cp.cluster = cf.cluster "
                        f"JOIN people p ON p.id = cp.person_id WHERE cf.run_id = ? AND cf.face_id IN ({marks})",
                        [last, *chunk],
                    ).fetchall())
                # Explicit labels override the cluster's person.
                out.update(conn.execute(
                    "SELECT fp.face_id, p.name FROM face_people fp JOIN people p ON p.id = fp.person_id "
                    f"WHERE fp.face_id IN ({marks})",
                    chunk,
                ).fetchall())
        return out

    @staticmethod
    def _people(conn: sqlite3.Connection, person_ids: list[int]) -> dict[int, Person]:
        """The given people that exist, by id, with their face counts and the
        clusters of the last run mapped to them."""
        ids = sorted(set(person_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = conn.execute(f"SELECT id, name, created_at FROM people WHERE id IN ({marks})", ids).fetchall()
        counts = dict(conn.execute(
            f"SELECT person_id, COUNT(*) FROM face_people WHERE person_id IN ({marks}) GROUP BY person_id", ids
        ).fetchall())
        clusters: dict[int, list[int]] = {}
        for person_id, cluster in conn.execute(
            "SELECT person_id, cluster FROM cluster_people WHERE run_id = (SELECT MAX(id) FROM cluster_runs) "
            f"AND person_id IN ({marks}) ORDER BY cluster",
            ids,
        ):
            clusters.setdefault(person_id, []).append(cluster)
        return {
            r[0]: Person(r[0], r[1], r[2], counts.get(r[0], 0), clusters.get(r[0], [])) for r in rows
        }

    def close(self) -> None:
        with self._lock:
            self.conn.close()
