"""Corrections of people in the annotations database: create, assign,
reject, merge and undo, each face's person and its source, rejections that
survive re-clustering, suggestions that a correction forbids. Runs are
made by hand (``store`` from test_annotations)."""

import pytest

from indexer.people.annotations import (
    AnnotationsDB,
    MergeError,
    NameTakenError,
    NothingToUndoError,
    PersonNotFoundError,
)
from tests.helpers import store_run


@pytest.fixture
def db(tmp_path) -> AnnotationsDB:
    return AnnotationsDB.open(tmp_path)


def sources(db: AnnotationsDB, person_id: int) -> dict[int, str]:
    return {f.face_id: f.source for f in db.person_faces(person_id)}


def who(db: AnnotationsDB, face_ids) -> dict[int, tuple[str, str]]:
    return {f: (a.name, a.source) for f, a in db.attributions(face_ids).items()}


def test_create_assign_and_the_source_of_each_face(db):
    store_run(db, [1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, -1])
    alice = db.name_cluster(0, "Alice")
    ben = db.create_person("Ben", [4, 6], actor="admin-1").person
    assert ben.name == "Ben" and ben.face_count == 2 and ben.counts == {"confirmed": 2, "cluster": 0, "suggested": 0}
    assert who(db, [1, 2, 3, 4, 5, 6, 7]) == {
        1: ("Alice", "confirmed"), 2: ("Alice", "confirmed"), 3: ("Alice", "confirmed"),
        4: ("Ben", "confirmed"), 6: ("Ben", "confirmed"),
    }
    # Face 3 moves to Ben: taken from Alice.
    moved = db.assign(ben.person_id, [3, 4])
    assert moved.changed == 1 and moved.person.face_count == 3
    assert db.person(alice.person_id).face_count == 2
    assert sources(db, ben.person_id) == {3: "confirmed", 4: "confirmed", 6: "confirmed"}
    with pytest.raises(NameTakenError):
        db.create_person("alice", [5])
    with pytest.raises(PersonNotFoundError) as missing:
        db.assign(99, [1])
    assert missing.value.missing == [99]


def test_cluster_faces_and_their_precedence(db):
    store_run(db, [1, 2, 3], [0, 0, 0])
    alice = db.name_cluster(0, "Alice")
    # A new run: faces 4 and 5 joined Alice's cluster; face 2 is assigned to Ben.
    store_run(db, [1, 2, 3, 4, 5], [0, 0, 0, 0, 1])
    ben = db.create_person("Ben", [2]).person
    assert sources(db, alice.person_id) == {1: "confirmed", 3: "confirmed", 4: "cluster"}
    assert alice.person_id == db.person(alice.person_id).person_id
    assert db.person(alice.person_id).counts == {"confirmed": 2, "cluster": 1, "suggested": 0}
    assert who(db, [2, 4, 5]) == {2: ("Ben", "confirmed"), 4: ("Alice", "cluster")}
    assert db.faces_of_person(alice.person_id) == [1, 3, 4]
    assert db.faces_of_person(ben.person_id) == [2]


def test_a_rejection_survives_reclustering_and_naming(db):
    store_run(db, [1, 2, 3, 4], [0, 0, 0, 0])
    alice = db.name_cluster(0, "Alice")
    rejected = db.reject(alice.person_id, [4])
    assert rejected.changed == 1 and rejected.person.face_count == 3
    assert who(db, [4]) == {}
    # Clustering groups face 4 with Alice's faces again: it is still not hers.
    for _ in range(2):
        store_run(db, [1, 2, 3, 4], [0, 0, 0, 0])
        assert db.person(alice.person_id).clusters == [0]
        assert who(db, [4]) == {} and 4 not in sources(db, alice.person_id)
        # Naming the cluster after her again leaves it out too.
        assert db.name_cluster(0, "Alice").face_count == 3
    # Another person may have it.
    ben = db.create_person("Ben", [4]).person
    assert who(db, [4]) == {4: ("Ben", "confirmed")}
    # An explicit assignment to Alice is the latest word: the rejection goes.
    db.assign(alice.person_id, [4])
    assert who(db, [4]) == {4: ("Alice", "confirmed")} and db.person(ben.person_id).face_count == 0
    assert db.reject(alice.person_id, [4]).changed == 1 and db.reject(alice.person_id, [4]).changed == 0


def test_naming_a_cluster_keeps_faces_confirmed_for_someone_else(db):
    store_run(db, [1, 2, 3], [0, 0, 0])
    ben = db.create_person("Ben", [3]).person
    alice = db.name_cluster(0, "Alice")
    assert alice.face_count == 2 and who(db, [3]) == {3: ("Ben", "confirmed")}
    assert db.person(ben.person_id).face_count == 1
    # Renaming the cluster moves what naming it gave: Alice's faces there become Carol's.
    carol = db.name_cluster(0, "Carol")
    assert carol.face_count == 2 and db.person(alice.person_id).face_count == 0


def test_suggestions_yield_to_confirmed_cluster_and_rejections(db):
    store_run(db, [1, 2, 3, 4, 5], [0, 0, 1, 1, -1])
    alice = db.name_cluster(0, "Alice")  # 1, 2
    ben = db.create_person("Ben", [3]).person
    snapshot = db.recognition_input()
    assert set(snapshot.dirty) == {alice.person_id, ben.person_id} and snapshot.watermark == 0
    written = db.save_suggestions([4, 5], {4: (alice.person_id, 0.31), 5: (alice.person_id, 0.42)},
                                  max_rev=snapshot.max_rev, watermark=5)
    assert written == 2
    assert who(db, [4, 5]) == {4: ("Alice", "suggested"), 5: ("Alice", "suggested")}
    assert [(f.face_id, f.distance) for f in db.person_faces(alice.person_id) if f.source == "suggested"] == [
        (4, pytest.approx(0.31)), (5, pytest.approx(0.42))]
    after = db.recognition_input()
    assert after.dirty == {} and after.watermark == 5
    # A cluster mapped to Ben holds face 4: the cluster wins over the suggestion.
    db.name_cluster(1, "Ben")
    assert who(db, [4]) == {4: ("Ben", "confirmed")}  # naming confirmed it
    assert db.person(alice.person_id).counts["suggested"] == 1
    # Rejecting a suggestion drops it; a later suggestion for that person is not written.
    db.reject(alice.person_id, [5])
    assert who(db, [5]) == {}
    snapshot = db.recognition_input()
    assert db.save_suggestions([5], {5: (alice.person_id, 0.4)}, max_rev=snapshot.max_rev, watermark=5) == 0
    assert who(db, [5]) == {}
    # Nor for a confirmed face, nor for a person who is gone.
    assert db.save_suggestions([3], {3: (alice.person_id, 0.4)}, max_rev=snapshot.max_rev, watermark=5) == 0
    assert db.save_suggestions([5], {5: (999, 0.4)}, max_rev=snapshot.max_rev, watermark=5) == 0


def test_a_correction_during_recognition_keeps_its_person_marked(db):
    store_run(db, [1, 2], [0, -1])
    alice = db.name_cluster(0, "Alice")
    snapshot = db.recognition_input()
    db.assign(alice.person_id, [2])  # after the snapshot
    db.save_suggestions([], {}, max_rev=snapshot.max_rev, watermark=2)
    assert set(db.recognition_input().dirty) == {alice.person_id}


def test_merge_moves_everything_and_undo_brings_it_back(db):
    store_run(db, [1, 2, 3, 4, 5, 6, 7], [0, 0, 1, 1, 2, 2, -1])
    alice = db.name_cluster(0, "Alice")  # 1, 2
    alicia = db.name_cluster(1, "Alicia")  # 3, 4
    db.reject(alicia.person_id, [7])
    db.reject(alice.person_id, [3])  # conflicts with Alicia's face 3
    snapshot = db.recognition_input()
    db.save_suggestions([5], {5: (alicia.person_id, 0.3)}, max_rev=snapshot.max_rev, watermark=7)

    merge = db.merge(alice.person_id, [alicia.person_id], actor="admin-1")
    assert merge.face_ids == [3, 4] and merge.changed == 2
    merged = merge.person
    assert merged.face_count == 4 and merged.cover_face_id == 1 and merged.clusters == [0, 1]
    assert merged.last_merge is not None and merged.last_merge.people == [(alicia.person_id, "Alicia")]
    assert merged.last_merge.actor == "admin-1" and merged.last_merge.faces_moved == 2
    with pytest.raises(PersonNotFoundError):
        db.person(alicia.person_id)
    assert who(db, [3, 5, 7]) == {3: ("Alice", "confirmed"), 5: ("Alice", "suggested")}
    assert sources(db, alice.person_id) == {1: "confirmed", 2: "confirmed", 3: "confirmed", 4: "confirmed",
                                            5: "suggested"}

    report = db.undo_merge(alice.person_id)
    assert report.restored_people == [alicia.person_id] and report.faces_restored == 2
    assert report.left_as_they_are == [] and report.rejections_restored == 1
    back = db.person(alicia.person_id)
    assert (back.name, back.created_at, back.face_count, back.clusters) == (
        "Alicia", alicia.created_at, 2, [1])
    assert db.person(alice.person_id).face_count == 2 and db.person(alice.person_id).last_merge is None
    assert who(db, [3, 5]) == {3: ("Alicia", "confirmed"), 5: ("Alicia", "suggested")}
    # Alice's own rejection of face 3 is back; Alicia's of face 7 is hers again, not Alice's.
    assert db.recognition_input().rejections == {(3, alice.person_id), (7, alicia.person_id)}
    with pytest.raises(NothingToUndoError):
        db.undo_merge(alice.person_id)
    assert [m.undone_at is not None for m in db.merges(alice.person_id)] == [True]


def test_undo_leaves_faces_touched_since_the_merge(db):
    store_run(db, [1, 2, 3, 4, 5], [0, 0, 1, 1, 1])
    alice = db.name_cluster(0, "Alice")  # 1, 2
    ben = db.name_cluster(1, "Ben")  # 3, 4, 5
    carol = db.create_person("Carol", [1]).person  # after this, Alice has 2
    db.merge(alice.person_id, [ben.person_id])
    db.assign(carol.person_id, [3])  # touched: moved to Carol
    db.reject(alice.person_id, [4])  # touched: rejected
    report = db.undo_merge(alice.person_id)
    assert report.faces_restored == 1 and report.left_as_they_are == [3, 4]
    # Face 4 is no confirmed face of anyone now; its cluster is mapped to Ben again.
    assert who(db, [3, 4, 5]) == {3: ("Carol", "confirmed"), 4: ("Ben", "cluster"), 5: ("Ben", "confirmed")}


def test_undo_when_the_name_was_given_to_someone_since(db):
    store_run(db, [1, 2], [0, 1])
    alice = db.name_cluster(0, "Alice")
    ben = db.name_cluster(1, "Ben")
    db.merge(alice.person_id, [ben.person_id])
    newcomer = db.create_person("ben", [2]).person
    with pytest.raises(NameTakenError, match=str(newcomer.person_id)):
        db.undo_merge(alice.person_id)
    db.rename_person(newcomer.person_id, "Ben Junior")
    assert db.undo_merge(alice.person_id).restored_people == [ben.person_id]


def test_merge_errors(db):
    store_run(db, [1, 2], [0, 1])
    alice = db.name_cluster(0, "Alice")
    with pytest.raises(MergeError):
        db.merge(alice.person_id, [alice.person_id])
    with pytest.raises(MergeError):
        db.merge(alice.person_id, [])
    with pytest.raises(PersonNotFoundError) as missing:
        db.merge(alice.person_id, [41, 42])
    assert missing.value.missing == [41, 42]
    assert db.merges(alice.person_id) == []  # a failed merge leaves nothing behind
    with pytest.raises(NothingToUndoError):
        db.undo_merge(alice.person_id)


def test_erased_and_gone_faces_leave_every_table(db):
    store_run(db, [1, 2, 3], [0, 0, -1])
    alice = db.name_cluster(0, "Alice")
    db.reject(alice.person_id, [3])
    db.forget_faces([1, 3])
    assert sources(db, alice.person_id) == {2: "confirmed"}
    assert db.recognition_input().rejections == set()
    bob = db.create_person("Bob", [7, 8]).person
    assert db.prune_faces({2, 7}) == 1
    assert sources(db, bob.person_id) == {7: "confirmed"}
