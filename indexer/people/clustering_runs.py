"""Clustering runs in the annotations database: storing a run over every
face (and mapping each named person to one of its clusters), reading the
last one back as stored, and the members of one of its clusters. Functions
over a connection inside the caller's transaction (``AnnotationsDB``)."""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

import numpy as np

from indexer.people.records import ClusterNotFoundError, NoClusteringError, RunInfo, StoredRun
from indexer.store.metadata import utc_now
from indexer.store.sqlite_db import inserted_id

# Older runs are deleted when a new one is stored (each holds a row per face).
KEEP_RUNS = 5


def store_run(
    conn: sqlite3.Connection,
    *,
    method: str,
    k: int,
    params: dict[str, Any],
    duration_s: float,
    face_ids: np.ndarray,
    clusters: np.ndarray,
    nearest: np.ndarray,
    distances: np.ndarray,
) -> StoredRun:
    """Store a run over **every** face of the index (arrays as in
    ``StoredRun``) and return it as read back.

    Labels, rejections and suggestions of faces that are not in the run
    (gone from the index) are deleted, each named person is mapped to a
    cluster of the new run (``map_people``), and runs older than the last
    ``KEEP_RUNS`` deleted.
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
    run_id = inserted_id(conn.execute(
        "INSERT INTO cluster_runs (created_at, method, k, params, face_count, duration_s) VALUES (?,?,?,?,?,?)",
        (created_at, method, int(k), params_json, len(face_ids), float(duration_s)),
    ))
    conn.executemany(
        "INSERT INTO cluster_faces (run_id, face_id, cluster, nearest, distance) VALUES (?,?,?,?,?)",
        zip([run_id] * len(face_ids), face_ids.tolist(), clusters.tolist(), nearest.tolist(), stored_distances),
    )
    for table in ("face_people", "rejections", "suggestions"):
        conn.execute(
            f"DELETE FROM {table} WHERE face_id NOT IN (SELECT face_id FROM cluster_faces WHERE run_id = ?)",
            (run_id,),
        )
    map_people(conn, run_id)
    conn.execute("DELETE FROM cluster_runs WHERE id <= ?", (run_id - KEEP_RUNS,))
    info = RunInfo(run_id, created_at, method, int(k), json.loads(params_json), len(face_ids), float(duration_s))
    order = np.argsort(face_ids, kind="stable")
    return StoredRun(info, face_ids[order], clusters[order], nearest[order], distances[order])


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays in run parameters become plain JSON values."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in the run parameters")


def map_people(conn: sqlite3.Connection, run_id: int) -> None:
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


def last_info(conn: sqlite3.Connection) -> RunInfo | None:
    """The last stored run without its faces, or None."""
    row = conn.execute(
        "SELECT id, created_at, method, k, params, face_count, duration_s FROM cluster_runs WHERE undone = 0 "
        "ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return RunInfo(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6])


def last_run(conn: sqlite3.Connection) -> StoredRun | None:
    """The last stored run with its faces, as stored, or None."""
    info = last_info(conn)
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


def place_in_last_run(conn: sqlite3.Connection, face_id: int) -> tuple[RunInfo, int, int, float | None] | None:
    """Where the last run put one face: (the run, its cluster or -1 for a
    stranger, the nearest cluster or -1, the Euclidean distance to that
    cluster's centre or None); None before any run or for a face it did
    not hold (added since)."""
    info = last_info(conn)
    if info is None:
        return None
    row = conn.execute("SELECT cluster, nearest, distance FROM cluster_faces WHERE run_id = ? AND face_id = ?",
                       (info.run_id, int(face_id))).fetchone()
    return None if row is None else (info, int(row[0]), int(row[1]), None if row[2] is None else float(row[2]))


def run_with_cluster(conn: sqlite3.Connection, cluster: int) -> RunInfo:
    """The last run, which must have ``cluster``: ``NoClusteringError``,
    ``ClusterNotFoundError`` otherwise."""
    info = last_info(conn)
    if info is None:
        raise NoClusteringError("no clustering has been run yet: POST /api/v1/clusters first")
    if not 0 <= cluster < info.k:
        raise ClusterNotFoundError(
            f"the last clustering (run {info.run_id}) has no cluster {cluster}: its ids are 0 to {info.k - 1}"
        )
    return info


def members(conn: sqlite3.Connection, cluster: int) -> list[int]:
    """The member face ids of a cluster of the last run (not its
    strangers). ``NoClusteringError``, ``ClusterNotFoundError``."""
    info = run_with_cluster(conn, cluster)
    rows = conn.execute(
        "SELECT face_id FROM cluster_faces WHERE run_id = ? AND cluster = ? ORDER BY face_id", (info.run_id, cluster)
    ).fetchall()
    return [r[0] for r in rows]
