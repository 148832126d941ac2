"""Reindexing into generations: every kind of change, publishing, the lock,
interrupted runs and the first layout's migration (fake model, in-process)."""

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from indexer.indexing import detection_signature, index_paths
from indexer.people.annotations import AnnotationsDB
from indexer.store import generations
from indexer.store.generations import (
    CURRENT_FILE,
    GENERATIONS_DIR,
    IndexBusyError,
    IndexLock,
    current_dir,
    current_name,
)
from indexer.store.runs import last_run, recent_runs
from tests.helpers import published_store, store_at, store_run

pytestmark = pytest.mark.usefixtures("backend")  # every test on FAISS and on Milvus Lite


def faces_by_path(data_dir: Path) -> dict[str, list[int]]:
    """Face ids of every photo of the published generation, by path."""
    store = published_store(data_dir)
    try:
        ids, _, _ = store.all_embeddings()
        records = store.faces(ids.tolist())
        assert store.count() == len(ids) == store.db.face_count()
    finally:
        store.close()
    out: dict[str, list[int]] = {}
    for face_id, record in sorted(records.items()):
        out.setdefault(record.path, []).append(face_id)
    return out


def index(model, settings, photos: Path, **kwargs):
    return index_paths([photos], settings, progress=False, model=model, **kwargs)


def test_first_run_publishes_a_generation(fake_model, settings, photos, backend):
    report = index(fake_model, settings, photos)
    data_dir = settings.data_dir
    assert report.published and report.generation == current_name(data_dir) == "g000001"
    assert current_dir(data_dir) == data_dir / GENERATIONS_DIR / "g000001"
    assert len(faces_by_path(data_dir)) == 15
    assert not list((data_dir / GENERATIONS_DIR).glob("*.wip"))
    # Sealed: one self-contained database file, no write-ahead log beside it.
    vectors = ["faces.faiss"] if backend == "faiss" else []  # Milvus: in the collection
    assert sorted(p.name for p in current_dir(data_dir).iterdir()) == [*vectors, "manifest.json", "metadata.sqlite3"]
    assert last_run(data_dir)["generation"] == "g000001" and last_run(data_dir)["faces_added"] == 15


def test_a_rerun_with_no_change_publishes_nothing_and_encodes_nothing(fake_model, settings, photos):
    index(fake_model, settings, photos)
    calls = fake_model.calls
    report = index(fake_model, settings, photos)
    assert not report.published and report.generation == "g000001"
    assert report.images_unchanged == 15 and report.faces_total == 15 and report.photos_total == 15
    assert fake_model.calls == calls
    assert [r["published"] for r in recent_runs(settings.data_dir, 5)] == [False, True]


def test_every_kind_of_change(fake_model, settings, photos):
    index(fake_model, settings, photos)
    before = faces_by_path(settings.data_dir)
    people = sorted(p for p in photos.iterdir())
    edited = next(people[0].iterdir())
    Image.open(edited).rotate(90).save(edited)  # new content: re-encoded
    touched = next(people[1].iterdir())
    os.utime(touched, ns=(1, 1))  # new mtime, same content: hashed, not re-encoded
    moved_from = next(people[2].iterdir())
    moved_to = photos / "elsewhere" / "renamed.jpg"
    moved_to.parent.mkdir()
    shutil.move(moved_from, moved_to)  # moved: same faces, new path
    deleted = next(people[3].iterdir())
    deleted.unlink()
    added = photos / "new.jpg"
    Image.open(next(people[4].iterdir())).transpose(Image.FLIP_LEFT_RIGHT).save(added)
    calls = fake_model.calls

    report = index(fake_model, settings, photos)
    after = faces_by_path(settings.data_dir)
    assert fake_model.calls - calls == 2  # the edited and the new photo only
    assert (report.images_indexed, report.images_moved, report.images_removed) == (2, 1, 1)
    assert report.published and report.generation == "g000002"
    assert str(added) in after and str(deleted) not in after
    assert after[str(edited)] != before[str(edited)]  # new faces, new ids
    assert after[str(touched)] == before[str(touched)]
    assert after[str(moved_to)] == before[str(moved_from)] and str(moved_from) not in after
    unchanged = set(before) - {str(edited), str(moved_from), str(deleted)}
    assert all(after[p] == before[p] for p in unchanged)
    assert sum(len(v) for v in after.values()) == 15
    # The previous generation is kept, untouched, for readers still on it.
    old = store_at(settings.data_dir / GENERATIONS_DIR / "g000001", readonly=True)
    assert old.count() == 15 and str(deleted) in old.file_states()
    old.close()


def test_only_the_last_two_generations_are_kept(fake_model, settings, photos):
    for i in range(4):
        (photos / f"copy{i}.jpg").write_bytes((photos / "Tony_Blair" / "Tony_Blair_0001.jpg").read_bytes() + bytes([i]))
        index(fake_model, settings, photos)
    names = sorted(p.name for p in (settings.data_dir / GENERATIONS_DIR).iterdir())
    assert names == ["g000003", "g000004"] and current_name(settings.data_dir) == "g000004"


def test_full_rebuilds_from_nothing(fake_model, settings, photos):
    index(fake_model, settings, photos)
    before = faces_by_path(settings.data_dir)
    report = index(fake_model, settings, photos, full=True)
    after = faces_by_path(settings.data_dir)
    assert report.images_indexed == 15 and set(after) == set(before)
    assert not set(sum(after.values(), [])) & set(sum(before.values(), []))  # all new face ids


def test_full_gives_ids_past_the_highest_one_the_annotations_refer_to(fake_model, settings, photos):
    index(fake_model, settings, photos)
    annotations = AnnotationsDB.open(settings.data_dir)
    store_run(annotations, [1000], [0])  # a stored clustering of a face since gone
    annotations.close()
    assert index(fake_model, settings, photos, full=True).images_indexed == 15
    assert min(sum(faces_by_path(settings.data_dir).values(), [])) == 1001


def test_a_second_run_while_one_holds_the_lock_is_refused(fake_model, settings, photos):
    with (
        IndexLock(settings.data_dir, command="facesearch index /somewhere"),
        pytest.raises(IndexBusyError, match=rf"pid {os.getpid()} .*facesearch index /somewhere"),
    ):
        index(fake_model, settings, photos)
    assert index(fake_model, settings, photos).published  # free again


def test_a_lock_left_by_a_dead_run_is_taken_over(fake_model, settings, photos):
    settings.data_dir.mkdir(parents=True)
    lock = settings.data_dir / "index.lock"
    lock.write_text(json.dumps({"pid": 999999, "host": "gone", "started_at": "2026-01-01T00:00:00+00:00"}))
    assert index(fake_model, settings, photos).published
    assert lock.read_text() == ""  # released


def test_an_interrupted_run_publishes_nothing_and_is_resumed(fake_model, settings, photos):
    index(fake_model, settings, photos)
    for i in range(6):
        (photos / f"new{i}.jpg").write_bytes((photos / "Tony_Blair" / "Tony_Blair_0002.jpg").read_bytes() + bytes([i]))
    seen = []

    def stop_after_four(result):
        seen.append(result)
        if len(seen) == 4:
            raise KeyboardInterrupt

    small = settings.model_copy(update={"indexer": settings.indexer.model_copy(update={"checkpoint_every": 2})})
    with pytest.raises(KeyboardInterrupt):
        index(fake_model, small, photos, on_result=stop_after_four)
    assert current_name(settings.data_dir) == "g000001" and len(faces_by_path(settings.data_dir)) == 15
    assert generations.resumable(
        settings.data_dir,
        full=False,
        key={"roots": [str(photos.resolve())], "detection": detection_signature(settings)},
    )
    report = index(fake_model, settings, photos)
    assert report.images_indexed == 4  # 2 of the 6 were checkpointed before the interruption
    assert report.generation == "g000002" and len(faces_by_path(settings.data_dir)) == 21


def test_unfinished_work_for_other_folders_is_discarded(fake_model, settings, photos, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(photos / "Tony_Blair", other)
    with pytest.raises(KeyboardInterrupt):
        index(fake_model, settings, other, on_result=lambda r: (_ for _ in ()).throw(KeyboardInterrupt))
    assert list((settings.data_dir / GENERATIONS_DIR).glob("*.wip"))
    report = index(fake_model, settings, photos)
    assert report.images_indexed == 15 and set(faces_by_path(settings.data_dir)) == {
        str(p) for p in photos.rglob("*.jpg")
    }
    assert not list((settings.data_dir / GENERATIONS_DIR).glob("*.wip"))


def test_a_store_of_the_first_layout_is_read_then_moved_into_generations(fake_model, settings, photos, backend):
    if backend == "milvus":
        pytest.skip("the first layout predates generations and the Milvus store")
    index(fake_model, settings, photos)
    # Rebuild the first layout: the store's files directly in the data dir.
    data_dir = settings.data_dir
    for f in current_dir(data_dir).iterdir():
        shutil.copy(f, data_dir / f.name)
    shutil.rmtree(data_dir / GENERATIONS_DIR)
    (data_dir / CURRENT_FILE).unlink()
    assert current_dir(data_dir) == data_dir
    before = faces_by_path(data_dir)
    (photos / "extra.jpg").write_bytes((photos / "Tony_Blair" / "Tony_Blair_0001.jpg").read_bytes() + b"x")
    report = index(fake_model, settings, photos)
    assert report.generation == "g000001" and report.images_indexed == 1
    after = faces_by_path(data_dir)
    assert all(after[p] == ids for p, ids in before.items())
    assert not (data_dir / "metadata.sqlite3").exists() and not (data_dir / "faces.faiss").exists()


def test_other_detection_settings_are_refused_before_any_work(fake_model, settings, photos):
    index(fake_model, settings, photos)
    other = settings.model_copy(update={"detection": settings.detection.model_copy(update={"upsample": 0})})
    with pytest.raises(Exception, match="--full"):
        index(fake_model, other, photos)
    assert current_name(settings.data_dir) == "g000001"
    assert index(fake_model, other, photos, full=True).generation == "g000002"


def test_an_emptied_folder_keeps_its_photos_unless_allowed(fake_model, settings, photos):
    index(fake_model, settings, photos)
    mount = photos / "Tony_Blair"
    saved = mount.with_name("saved")
    mount.rename(saved)
    mount.mkdir()  # an empty mount point
    report = index_paths([mount], settings, progress=False, model=fake_model)
    assert report.images_removed == 0 and "--allow-empty" in report.errors[0]["error"]
    assert len(faces_by_path(settings.data_dir)) == 15
    report = index_paths([mount], settings, progress=False, allow_empty=True, model=fake_model)
    assert report.images_removed == 3 and len(faces_by_path(settings.data_dir)) == 12


def test_names_stay_on_unchanged_and_moved_faces_across_a_reindex_the_server_picks_up(fake_model, settings, photos):
    from service import create_app

    index(fake_model, settings, photos)
    served = settings.model_copy(update={"service": settings.service.model_copy(update={"reload_check_s": 0})})
    client = create_app(served, model=fake_model).test_client()
    body = client.post("/api/v1/clusters", json={"k": 3, "stranger_distance": 5.0}).get_json()
    assert not body["strangers"]
    cluster = body["clusters"][0]["id"]
    named_path, face_id = body["clusters"][0]["members"][0]["path"], body["clusters"][0]["members"][0]["face_id"]
    assert client.put(f"/api/v1/clusters/{cluster}", json={"name": "Tony"}).status_code == 200

    moved = photos / "renamed.jpg"
    shutil.move(named_path, moved)
    next(p for p in sorted(photos.rglob("*.jpg")) if p != moved).unlink()
    report = index(fake_model, settings, photos)
    assert report.images_moved == 1 and report.images_removed == 1 and report.published
    # The same client: the worker switched to the new generation by itself.
    info = client.get("/api/v1/index").get_json()
    assert info["generation"] == report.generation and info["faces"] == 14
    record = client.get(f"/api/v1/faces/{face_id}").get_json()
    assert record["path"] == str(moved)  # same face id, new path
    store = published_store(settings.data_dir)
    embedding = store.db.all_embeddings()[2][store.db.all_embeddings()[0].tolist().index(face_id)]
    store.close()
    match = client.post("/api/v1/search", json={"embedding": embedding.tolist(), "k": 1}).get_json()
    assert match["faces"][0]["matches"][0]["face_id"] == face_id
    assert match["faces"][0]["matches"][0]["person"] == "Tony"


def test_a_damaged_metadata_database_is_a_clear_error_and_full_rebuilds(fake_model, settings, photos, runner):
    from facesearch.cli import main

    index(fake_model, settings, photos)
    db = current_dir(settings.data_dir) / "metadata.sqlite3"
    db.write_bytes(db.read_bytes()[:1000])  # truncated
    served = runner.invoke(main, ["serve", "--data-dir", str(settings.data_dir)])
    assert served.exit_code == 1 and "index --full" in served.output
    assert index(fake_model, settings, photos, full=True).images_indexed == 15
    assert len(faces_by_path(settings.data_dir)) == 15


def test_a_renamed_folder_is_moves_only(fake_model, settings, photos):
    index(fake_model, settings, photos)
    before = faces_by_path(settings.data_dir)
    (photos / "Tony_Blair").rename(photos / "Blair")
    calls = fake_model.calls
    report = index(fake_model, settings, photos)
    after = faces_by_path(settings.data_dir)
    assert (report.images_moved, report.images_indexed, report.images_removed) == (3, 0, 0)
    assert fake_model.calls == calls
    for old in (p for p in before if "/Tony_Blair/" in p):
        assert after[old.replace("/Tony_Blair/", "/Blair/")] == before[old]


def test_the_running_index_is_read_without_taking_the_lock(tmp_path):
    import json
    import socket
    import subprocess
    import sys

    from indexer.store.generations import LOCK_FILE, IndexLock, running_index

    assert running_index(tmp_path) is None
    with IndexLock(tmp_path, command="facesearch index /photos") as lock:
        lock.progress(2, 5)
        assert running_index(tmp_path)["done"] == 2
    assert running_index(tmp_path) is None  # ended: emptied
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    assert running_index(tmp_path) is None  # a killed run's file, its process gone
