"""The annotations database: stored clustering runs, people, names carried
over to new runs, the person of a face. Runs are made by hand here."""

import threading
from pathlib import Path

import numpy as np
import pytest

from indexer.people.annotations import (
    AnnotationsDB,
    ClusterNotFoundError,
    NameTakenError,
    NoClusteringError,
    PersonNotFoundError,
)
from indexer.people.clustering_runs import KEEP_RUNS
from indexer.store import StoreError
from tests.helpers import store_run


@pytest.fixture
def db(tmp_path: Path) -> AnnotationsDB:
    return AnnotationsDB.open(tmp_path)




def test_a_run_reads_back_exactly_as_stored(db):
    assert db.last_run() is None and db.last_run_info() is None
    distances = np.array([0.1, 0.2, float("nan"), 0.7], np.float32)
    stored = db.store_run(
        method="kmeans", k=2, params={"k": np.int64(2), "stranger_distance": np.float32(0.5)}, duration_s=1.25,
        face_ids=np.array([40, 10, 30, 20]), clusters=np.array([0, 0, -1, -1]), nearest=np.array([0, 0, -1, 1]),
        distances=distances,
    )
    run = db.last_run()
    assert run.info == stored.info
    assert run.info.params == {"k": 2, "stranger_distance": 0.5} and run.info.face_count == 4
    assert run.face_ids.dtype == np.int64 and run.distances.dtype == np.float32
    np.testing.assert_array_equal(run.face_ids, [10, 20, 30, 40])  # face-id order
    np.testing.assert_array_equal(run.clusters, [0, -1, -1, 0])
    np.testing.assert_array_equal(run.nearest, [0, 1, -1, 0])
    np.testing.assert_array_equal(run.distances, np.array([0.2, 0.7, np.nan, 0.1], np.float32))
    for a, b in [(run.face_ids, stored.face_ids), (run.clusters, stored.clusters), (run.distances, stored.distances)]:
        np.testing.assert_array_equal(a, b)


def test_naming_a_cluster_labels_its_members_not_its_strangers(db):
    # cluster 0: faces 1, 2, 3; cluster 1: faces 4, 5; face 6 a stranger near cluster 0
    store_run(db, [1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, -1], nearest=np.array([0, 0, 0, 1, 1, 0]))
    alice = db.name_cluster(0, "  Alice ")
    assert alice.name == "Alice" and alice.face_count == 3 and alice.clusters == [0]
    assert db.people_of([1, 2, 3, 4, 5, 6, 99]) == {1: "Alice", 2: "Alice", 3: "Alice"}
    assert db.cluster_people(db.last_run_info().run_id) == {0: alice}
    # The same name in other letter case is the same person; the cluster is added.
    again = db.name_cluster(1, "alice")
    assert again.person_id == alice.person_id and again.face_count == 5 and again.clusters == [0, 1]
    # Naming a cluster relabels its faces: a face has at most one person.
    bob = db.name_cluster(1, "Bob")
    assert db.person(alice.person_id).face_count == 3 and bob.face_count == 2
    assert db.people_of([4, 5]) == {4: "Bob", 5: "Bob"}
    assert [p.name for p in db.people()] == ["Alice", "Bob"]


def test_naming_needs_a_run_and_a_known_cluster(db):
    with pytest.raises(NoClusteringError):
        db.name_cluster(0, "Alice")
    store_run(db, [1, 2], [0, 1])
    with pytest.raises(ClusterNotFoundError):
        db.name_cluster(2, "Alice")
    with pytest.raises(ValueError):
        db.name_cluster(0, "   ")
    assert db.people() == []


def test_a_new_run_maps_each_person_to_the_cluster_with_most_of_their_faces(db):
    store_run(db, [1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, 1])
    alice = db.name_cluster(0, "Alice")  # faces 1, 2, 3
    bob = db.name_cluster(1, "Bob")  # faces 4, 5, 6
    # Re-clustered: Alice's faces now in cluster 2 (two) and 0 (one); Bob's in 1.
    store_run(db, [1, 2, 3, 4, 5, 6, 7], [2, 2, 0, 1, 1, 1, 0])
    run_id = db.last_run_info().run_id
    assert {c: p.name for c, p in db.cluster_people(run_id).items()} == {2: "Alice", 1: "Bob"}
    assert db.person(alice.person_id).clusters == [2] and db.person(bob.person_id).clusters == [1]
    # An unlabelled face gets the person of its cluster; a labelled one keeps its own label.
    assert db.people_of([3, 7]) == {3: "Alice"}
    # Faces gone from the index lose their labels; their person stays, unmapped.
    store_run(db, [1, 2, 3, 7], [1, 1, 0, 0])
    assert db.people_of([3, 4, 7]) == {3: "Alice"}  # 7's cluster 0 is nobody's now
    assert db.person(alice.person_id).clusters == [1]
    assert db.person(bob.person_id).face_count == 0 and db.person(bob.person_id).clusters == []


def test_ties_and_conflicts_when_mapping_people(db):
    store_run(db, [1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, 2])
    alice = db.name_cluster(0, "Alice")  # 1, 2, 3
    bob = db.name_cluster(1, "Bob")  # 4, 5
    carol = db.name_cluster(2, "Carol")  # 6
    # Alice's faces split 1-1-1 over clusters 3, 1, 2: the lowest id (1) wins the tie.
    # Bob's two faces and Carol's one are all in cluster 0.
    store_run(db, [1, 2, 3, 4, 5, 6], [3, 1, 2, 0, 0, 0])
    run_id = db.last_run_info().run_id
    assert {c: p.person_id for c, p in db.cluster_people(run_id).items()} == {1: alice.person_id, 0: bob.person_id}
    assert db.person(carol.person_id).clusters == []  # lost cluster 0 to Bob (2 faces against 1)
    # Two claims with as many faces each: the lower person id wins.
    store_run(db, [1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 1, 1])
    mapping = db.cluster_people(db.last_run_info().run_id)
    assert mapping[0].person_id == alice.person_id  # Alice 3 faces > Bob 1 there
    store_run(db, [4, 6], [0, 0])
    assert db.cluster_people(db.last_run_info().run_id)[0].person_id == min(bob.person_id, carol.person_id)


def test_people_rename_and_delete(db):
    store_run(db, [1, 2, 3], [0, 0, 1])
    alice = db.name_cluster(0, "Alice")
    bob = db.name_cluster(1, "Bob")
    assert db.rename_person(alice.person_id, "Alicia").name == "Alicia"
    assert db.rename_person(alice.person_id, "ALICIA").name == "ALICIA"  # own name, other case: fine
    with pytest.raises(NameTakenError):
        db.rename_person(alice.person_id, "bob")
    with pytest.raises(PersonNotFoundError):
        db.rename_person(999, "Zed")
    assert db.people_of([1, 3]) == {1: "ALICIA", 3: "Bob"}
    db.delete_person(bob.person_id)
    assert db.people_of([1, 3]) == {1: "ALICIA"}
    assert db.cluster_people(db.last_run_info().run_id) == {0: db.person(alice.person_id)}
    with pytest.raises(PersonNotFoundError):
        db.person(bob.person_id)
    with pytest.raises(PersonNotFoundError):
        db.delete_person(bob.person_id)


def test_only_the_last_runs_are_kept(db):
    for i in range(KEEP_RUNS + 2):
        store_run(db, [1, 2], [0, i % 2])
    runs = [r[0] for r in db.conn.execute("SELECT id FROM cluster_runs ORDER BY id")]
    assert runs == list(range(3, KEEP_RUNS + 3))
    kept = {r[0] for r in db.conn.execute("SELECT DISTINCT run_id FROM cluster_faces")}
    assert kept == set(runs)


def test_a_run_of_100k_faces_is_stored_exactly(db):
    n = 100_000
    rng = np.random.default_rng(0)
    face_ids = np.arange(1, n + 1, dtype=np.int64) * 3
    clusters = rng.integers(-1, 2000, n)
    nearest = np.where(clusters < 0, rng.integers(0, 2000, n), clusters)
    distances = rng.random(n, dtype=np.float32)
    store_run(db, face_ids[:10], clusters[:10] * 0)
    db.name_cluster(0, "Alice")
    store_run(db, face_ids, clusters, nearest, distances, k=2000)
    run = db.last_run()
    np.testing.assert_array_equal(run.face_ids, face_ids)
    np.testing.assert_array_equal(run.clusters, clusters)
    np.testing.assert_array_equal(run.nearest, nearest)
    np.testing.assert_array_equal(run.distances, distances)
    assert len(db.people_of(face_ids[:2000].tolist())) > 0


def test_two_connections_write_without_locking_errors(tmp_path: Path):
    first, second = AnnotationsDB.open(tmp_path), AnnotationsDB.open(tmp_path)
    store_run(first, list(range(1, 201)), [i % 20 for i in range(200)])
    errors: list[Exception] = []

    def name_all(db: AnnotationsDB, prefix: str) -> None:
        try:
            for cluster in range(20):
                db.name_cluster(cluster, f"{prefix}{cluster}")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=name_all, args=(db, p)) for db, p in [(first, "a"), (second, "b")]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(second.people()) == 40
    assert sum(p.face_count for p in first.people()) == 200


def test_an_unwritable_place_is_a_clear_error(tmp_path: Path):
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(StoreError, match="must be writable"):
        AnnotationsDB.open(tmp_path / "a-file")
