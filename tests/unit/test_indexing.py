"""Indexing runs with the fake model: what is added, skipped, re-encoded,
removed and reported."""

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from facesearch.cli import main
from indexer.indexing import index_paths
from indexer.scanner import scan
from indexer.store import FaceStore, StoreError
from indexer.store.generations import current_dir
from tests.helpers import DATA, drop_collection, published_store

pytestmark = pytest.mark.usefixtures("backend")  # every test on FAISS and on Milvus Lite


def store_of(settings) -> FaceStore:
    return published_store(settings.data_dir)


def test_scan_walks_recursively_and_filters(tmp_path: Path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "data").mkdir()
    for name in ["a/one.JPG", "a/b/two.png", "a/b/notes.txt", ".hidden/three.jpg", "data/four.jpg", "a/.five.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    scanned = scan([tmp_path], [".jpg", ".png"], exclude=[tmp_path / "data"])
    found = [Path(f.path).relative_to(tmp_path).as_posix() for f in scanned]
    assert found == ["a/one.JPG", "a/b/two.png"]
    # A file given directly is taken whatever its name; duplicates collapse.
    direct = list(scan([tmp_path / "a/b/notes.txt", tmp_path / "a/b/notes.txt"], [".jpg"]))
    assert len(direct) == 1


def test_index_adds_every_photo_and_reports(fake_model, settings, photos: Path):
    shutil.copy(DATA / "blank" / "white.png", photos / "blank.png")
    (photos / "broken.jpg").write_bytes((DATA / "lfw/Tony_Blair/Tony_Blair_0001.jpg").read_bytes()[:500])
    (photos / "notes.jpg").write_text("not a photo")
    report = index_paths([photos], settings, progress=False, model=fake_model)
    assert report.images_seen == 18
    assert report.images_indexed == 16 and report.faces_added == 15
    assert report.images_without_faces == 1
    assert sorted(Path(e["path"]).name for e in report.errors) == ["broken.jpg", "notes.jpg"]
    store = store_of(settings)
    assert store.count() == 15 and store.photo_count() == 16


def test_all_faces_of_a_photo_are_indexed_largest_first(fake_model, settings, photos: Path):
    fake_model.faces_per_image = 3
    index_paths([photos / "Colin_Powell" / "Colin_Powell_0001.jpg"], settings, progress=False, model=fake_model)
    store = store_of(settings)
    records = store.faces(list(range(1, 10)))
    assert len(records) == 3
    assert {r.box.left for r in records.values()} == {0, 83, 166}


def test_rerun_skips_unchanged_files_without_reading_them(fake_model, settings, photos: Path):
    index_paths([photos], settings, progress=False, model=fake_model)
    calls = fake_model.calls
    report = index_paths([photos], settings, progress=False, model=fake_model)
    assert (report.images_unchanged, report.images_indexed, report.faces_added) == (15, 0, 0)
    assert fake_model.calls == calls


def test_touched_file_with_same_content_is_not_re_encoded(fake_model, settings, photos: Path):
    index_paths([photos], settings, progress=False, model=fake_model)
    target = photos / "Tony_Blair" / "Tony_Blair_0002.jpg"
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    calls = fake_model.calls
    report = index_paths([photos], settings, progress=False, model=fake_model)
    assert (report.images_unchanged, report.images_indexed) == (15, 0)
    assert fake_model.calls == calls
    # ...and its new mtime is remembered: the next run does not even hash it.
    assert store_of(settings).file_states()[str(target.resolve())].mtime_ns == 1_000_000_000


def test_changed_file_is_re_encoded_and_its_old_faces_removed(fake_model, settings, photos: Path):
    index_paths([photos], settings, progress=False, model=fake_model)
    target = photos / "Tony_Blair" / "Tony_Blair_0002.jpg"
    old_ids = store_of(settings).db.face_ids_of(str(target.resolve()))
    Image.open(target).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(target)
    report = index_paths([photos], settings, progress=False, model=fake_model)
    assert (report.images_indexed, report.faces_added, report.faces_removed) == (1, 1, 1)
    store = store_of(settings)
    assert store.count() == 15
    assert store.faces(old_ids) == {}


def test_deleted_files_are_removed_only_under_the_given_paths(fake_model, settings, photos: Path, tmp_path: Path):
    other = tmp_path / "other"
    shutil.copytree(DATA / "lfw" / "Serena_Williams", other)
    index_paths([photos, other], settings, progress=False, model=fake_model)
    (photos / "Vladimir_Putin" / "Vladimir_Putin_0001.jpg").unlink()
    report = index_paths([photos], settings, progress=False, model=fake_model)  # `other` not scanned: kept
    assert (report.images_removed, report.faces_removed) == (1, 1)
    assert store_of(settings).count() == 17


def test_other_detection_settings_are_refused_unless_full(fake_model, settings, photos: Path):
    index_paths([photos], settings, progress=False, model=fake_model)
    changed = settings.model_copy(update={"detection": settings.detection.model_copy(update={"upsample": 0})})
    with pytest.raises(StoreError, match="--full"):
        index_paths([photos], changed, progress=False, model=fake_model)
    report = index_paths([photos], changed, full=True, progress=False, model=fake_model)
    assert report.images_indexed == 15 and store_of(settings).count() == 15


def test_an_interrupted_run_keeps_what_was_checkpointed(fake_model, settings, photos: Path):
    small_batches = settings.model_copy(update={"indexer": settings.indexer.model_copy(update={"checkpoint_every": 4})})
    seen = []

    def stop_after_six(result):
        seen.append(result)
        if len(seen) == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        index_paths([photos], small_batches, progress=False, on_result=stop_after_six, model=fake_model)
    assert current_dir(settings.data_dir) is None  # nothing half-done was published
    report = index_paths([photos], settings, progress=False, model=fake_model)
    # The next run resumes from the first checkpoint (4 photos) of the killed one.
    assert report.images_indexed == 11 and store_of(settings).count() == 15


def test_cli_index_json_is_the_last_stdout_line(fake_model, runner, data_dir: Path, photos: Path):
    result = runner.invoke(main, ["index", "--data-dir", str(data_dir), "--workers", "1", "--json", str(photos)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("images_seen", "faces_added", "faces_removed", "images_without_faces", "errors"):
        assert key in summary
    assert summary["images_seen"] == 15 and summary["faces_added"] == 15 and summary["errors"] == []


def test_cli_index_human_summary_and_bad_path(fake_model, runner, data_dir: Path, photos: Path):
    result = runner.invoke(main, ["index", "--data-dir", str(data_dir), "--workers", "1", str(photos)])
    assert result.exit_code == 0 and "15 photos seen: 15 indexed" in result.output
    missing = runner.invoke(main, ["index", "--data-dir", str(data_dir), str(photos / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_cli_repair_rebuilds_a_damaged_index(fake_model, runner, data_dir: Path, photos: Path, backend):
    runner.invoke(main, ["index", "--data-dir", str(data_dir), "--workers", "1", str(photos)])
    damaged = current_dir(data_dir)
    if backend == "faiss":
        (damaged / "faces.faiss").write_bytes(b"garbage")
    else:  # the collection is lost (dropped by hand, or another Milvus)
        drop_collection(data_dir)
    with pytest.raises(StoreError, match="facesearch repair"):
        published_store(data_dir)
    result = runner.invoke(main, ["repair", "--data-dir", str(data_dir)])
    assert result.exit_code == 0 and "15 faces" in result.output
    assert current_dir(data_dir) != damaged  # published as a new generation
    assert published_store(data_dir).count() == 15


def test_cli_serve_without_an_index_says_what_to_do(runner, tmp_path: Path):
    result = runner.invoke(main, ["serve", "--data-dir", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "facesearch index" in result.output


def test_the_service_finds_query_faces_as_the_index_did(fake_model, settings, photos: Path):
    from service import create_app

    index_paths([photos], settings.model_copy(update={"detection": settings.detection.model_copy(
        update={"upsample": 0, "jitters": 2})}), progress=False, model=fake_model)
    app = create_app(settings, model=fake_model)  # the config still says upsample 1, jitters 1
    detection = app.extensions["facesearch"].index.current().detection
    assert (detection.upsample, detection.jitters) == (0, 2)


def test_cli_version_names_the_dlib_build(runner):
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    assert "dlib" in result.output and "BLAS" in result.output
    assert "dlib_face_recognition_resnet_model_v1" in result.output
