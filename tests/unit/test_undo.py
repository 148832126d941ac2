"""Any correction can be undone, and the undo undone: the people, their
confirmed faces, rejections, names and cluster mappings come back exactly
as they were before it (and after it, once more), but for what has changed
since, which is left as it is and listed."""

import pytest

from indexer.people.annotations import AnnotationsDB, NameTakenError, NothingToUndoError
from tests.helpers import store_run


@pytest.fixture
def db(tmp_path) -> AnnotationsDB:
    db = AnnotationsDB.open(tmp_path)
    store_run(db, [1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 0, 1, 1, 1, -1, -1])
    return db


def state(db: AnnotationsDB) -> dict[str, list[tuple]]:
    """Everything people wrote, row by row (suggestions aside: recognition
    makes them again)."""
    conn = db.conn
    return {
        "people": conn.execute("SELECT id, name, created_at, cover_face_id FROM people ORDER BY id").fetchall(),
        "labels": conn.execute("SELECT face_id, person_id, rev FROM face_people ORDER BY face_id").fetchall(),
        "rejections": conn.execute("SELECT face_id, person_id, rev FROM rejections ORDER BY 1, 2").fetchall(),
        "clusters": conn.execute("SELECT run_id, cluster, person_id FROM cluster_people ORDER BY 1, 2").fetchall(),
        "members": conn.execute("SELECT run_id, face_id, cluster FROM cluster_faces ORDER BY 1, 2").fetchall(),
    }


def undo_and_redo(db: AnnotationsDB, before: dict, rev: int) -> None:
    """Undoing ``rev`` gives ``before`` back; undoing that undo gives the
    state after ``rev`` back; and the undo can be undone again."""
    after = state(db)
    assert after != before
    undone = db.undo(rev)
    assert state(db) == before
    redone = db.undo(undone.rev)
    assert state(db) == after
    assert db.correction(rev).undoable and db.correction(undone.rev).undone_by == redone.rev
    again = db.undo(rev)
    assert state(db) == before and again.target == rev


def test_naming_a_cluster_is_undone_and_redone(db):
    before = state(db)
    named = db.name_cluster_faces(0, "Alice")
    undo_and_redo(db, before, named.rev)
    assert db.person_by_name("Alice") is None


def test_moving_faces_to_someone_else_is_undone(db):
    alice = db.name_cluster_faces(0, "Alice").person
    ben = db.name_cluster_faces(1, "Ben").person
    before = state(db)
    moved = db.assign(ben.person_id, [2, 3, 7])
    record = db.correction(moved.rev)
    assert record.action == "assign" and record.person_name == "Ben" and record.from_people == [(alice.person_id,
                                                                                                   "Alice")]
    undo_and_redo(db, before, moved.rev)


def test_not_this_person_is_undone(db):
    alice = db.name_cluster_faces(0, "Alice").person
    before = state(db)
    rejected = db.reject(alice.person_id, [1, 2])
    undo_and_redo(db, before, rejected.rev)
    assert db.attributions([1])[1].source == "confirmed"


def test_a_new_person_is_undone_with_the_same_id_back_on_redo(db):
    db.name_cluster_faces(0, "Alice")
    before = state(db)
    created = db.create_person("Carol", [3, 7])
    undo_and_redo(db, before, created.rev)


def test_a_rename_and_a_deletion_are_undone(db):
    alice = db.name_cluster_faces(0, "Alice").person
    db.reject(alice.person_id, [4])
    before = state(db)
    db.rename_person(alice.person_id, "Alicia")
    rename = db.conn.execute("SELECT MAX(id) FROM corrections").fetchone()[0]
    undo_and_redo(db, before, rename)  # ends undone: Alice again
    before = state(db)
    db.delete_person(alice.person_id)
    deletion = db.conn.execute("SELECT MAX(id) FROM corrections").fetchone()[0]
    undo_and_redo(db, before, deletion)


def test_a_merge_is_undone_and_merged_again(db):
    alice = db.name_cluster_faces(0, "Alice").person
    ben = db.name_cluster_faces(1, "Ben").person
    before = state(db)
    merged = db.merge(alice.person_id, [ben.person_id])
    undone = db.undo(merged.rev)
    assert undone.action == "merge" and sorted(undone.person_ids) == sorted([alice.person_id, ben.person_id])
    # As "Undo merge" does it: each face back with its person (marked by the undo).
    assert [row[:2] for row in state(db)["labels"]] == [row[:2] for row in before["labels"]]
    assert db.person(ben.person_id).name == "Ben"
    redone = db.undo(undone.rev)  # merged again
    assert db.person_by_name("Ben") is None and sorted(redone.face_ids) == [4, 5, 6]
    assert db.person(alice.person_id).face_count == 6


def test_the_undo_merge_button_is_undone_by_merging_again(db):
    alice = db.name_cluster_faces(0, "Alice").person
    ben = db.name_cluster_faces(1, "Ben").person
    db.merge(alice.person_id, [ben.person_id])
    db.undo_merge(alice.person_id)
    undo_merge = db.conn.execute("SELECT MAX(id) FROM corrections").fetchone()[0]
    db.undo(undo_merge)
    assert db.person_by_name("Ben") is None and db.person(alice.person_id).face_count == 6


def test_faces_taken_out_of_a_group_are_put_back(db):
    before = state(db)
    rev, removed = db.remove_from_cluster(0, [2, 3, 5])  # 5 is in another group: left out
    assert removed == [2, 3] and db.faces_of_cluster(0) == [1]
    named = db.name_cluster_faces(0, "Alice")
    assert named.face_ids == [1]
    db.undo(named.rev)
    undo_and_redo(db, before, rev)


def test_taking_faces_out_of_someones_group_rejects_them(db):
    alice = db.name_cluster_faces(0, "Alice").person
    before = state(db)
    rev, _ = db.remove_from_cluster(0, [3])
    assert 3 not in {f.face_id for f in db.person_faces(alice.person_id)}
    assert db.correction(rev).person_name == "Alice"
    undo_and_redo(db, before, rev)


def test_what_changed_since_is_left_as_it_is(db):
    alice = db.name_cluster_faces(0, "Alice").person
    ben = db.name_cluster_faces(1, "Ben").person
    carol = db.create_person("Carol", [8]).person
    moved = db.assign(ben.person_id, [1, 2])
    db.assign(carol.person_id, [2])  # face 2 moved on since
    undone = db.undo(moved.rev)
    assert undone.face_ids == [1] and undone.left_as_they_are == [2]
    who = {f: a.name for f, a in db.attributions([1, 2]).items()}
    assert who == {1: "Alice", 2: "Carol"}
    assert alice.person_id in undone.person_ids


def test_what_cannot_be_undone_says_why(db):
    alice = db.name_cluster_faces(0, "Alice").person
    ben = db.name_cluster_faces(1, "Ben").person
    carol = db.create_person("Carol", [7]).person
    with pytest.raises(NothingToUndoError, match="no correction 999"):
        db.undo(999)
    moved = db.assign(ben.person_id, [1])
    db.undo(moved.rev)
    with pytest.raises(NothingToUndoError, match="already undone"):
        db.undo(moved.rev)
    first = db.merge(alice.person_id, [ben.person_id])
    db.merge(alice.person_id, [carol.person_id])
    assert not db.correction(first.rev).undoable
    with pytest.raises(NothingToUndoError, match="later merge"):
        db.undo(first.rev)
    # A person brought back whose name was given to someone since.
    dave = db.create_person("Dave", [8]).person
    db.delete_person(dave.person_id)
    deletion = db.conn.execute("SELECT MAX(id) FROM corrections").fetchone()[0]
    db.create_person("Dave", [6])
    with pytest.raises(NameTakenError, match="rename them first"):
        db.undo(deletion)


def test_joined_groups_leave_out_a_second_face_of_a_photo(db):
    before = state(db)
    rev, moved = db.join_groups(0, 1, apart=[5])
    assert moved == [4, 6] and db.faces_of_cluster(0) == [1, 2, 3, 4, 6]
    assert db.correction(rev).action == "join"
    undo_and_redo(db, before, rev)


def test_a_cover_choice_is_undone(db):
    alice = db.name_cluster_faces(0, "Alice").person
    assert db.person(alice.person_id).cover_face_id == 1  # the first, until one is chosen
    before = state(db)
    rev = db.set_cover(alice.person_id, 3)
    assert db.person(alice.person_id).cover_face_id == 3
    undo_and_redo(db, before, rev)


def test_a_clustering_is_undone_back_to_the_run_before(db):
    first = db.last_run_info().run_id
    alice = db.name_cluster_faces(0, "Alice").person
    store_run(db, [1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 1, 1, 1, 1, -1, -1])
    second = db.last_run_info().run_id
    rev = db.run_correction(second)
    assert db.correction(rev).action == "cluster" and db.correction(rev).undoable
    undone = db.undo(rev)
    assert db.last_run_info().run_id == first and db.person(alice.person_id).clusters == [0]
    db.undo(undone.rev)
    assert db.last_run_info().run_id == second
