"""A damaged index is refused with its fix, never served: checksums recorded
at publish, verified by `serve` (a real server process), each server worker,
every writer and `facesearch verify` (issue 22, finding 7)."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from config.settings import load_settings
from facesearch.cli import main
from indexer.indexing import index_paths
from indexer.store.checksums import FILES_KEY, SELF_KEY, DamagedIndexError, canonical_digest, verify_generation
from indexer.store.generations import GENERATIONS_DIR, current_dir, current_name
from indexer.store.verified_record import RECORD_FILE, stat_key
from tests.helpers import forget_checksums, free_port, get_json, published_store, serving

FACESEARCH = str(Path(sys.executable).with_name("facesearch"))


def xor_bytes(path: Path, start: int, end: int) -> None:
    """Flip every bit of bytes ``start``..``end`` of a file, in place."""
    data = bytearray(path.read_bytes())
    assert len(data) >= end, f"{path} has only {len(data)} bytes"
    data[start:end] = bytes(b ^ 0xFF for b in data[start:end])
    path.write_bytes(bytes(data))




def facesearch(*args: str) -> subprocess.CompletedProcess:
    """The real command in a child process, its output merged."""
    return subprocess.run([FACESEARCH, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120)


def serve_refused(data_dir: Path) -> str:
    """`facesearch serve` on a damaged index: it must exit 1 before serving; its output."""
    result = facesearch("serve", "--data-dir", str(data_dir), "--port", str(free_port()))
    assert result.returncode == 1, result.stdout
    assert "listening" not in result.stdout
    return result.stdout


def verify(data_dir: Path, *extra: str):
    return CliRunner().invoke(main, ["verify", "--data-dir", str(data_dir), *extra])


@pytest.fixture
def indexed(fake_model, settings, photos) -> Path:
    """The 15 test photos indexed (fake model), one face each."""
    index_paths([photos], settings, progress=False, model=fake_model)
    return settings.data_dir


def test_checksums_are_recorded_at_publish_and_opening_hashes_nothing(backend, indexed: Path):
    generation = current_dir(indexed)
    manifest = json.loads((generation / "manifest.json").read_text())
    others = sorted(p.name for p in generation.iterdir() if p.name != "manifest.json")
    expected = (["faces.faiss"] if backend == "faiss" else []) + ["metadata.sqlite3"]
    assert sorted(manifest[FILES_KEY]) == others == expected
    for name, entry in manifest[FILES_KEY].items():
        data = (generation / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert manifest[SELF_KEY] == canonical_digest(manifest)
    assert (indexed / RECORD_FILE).stat().st_mode & 0o777 == 0o600
    check = verify_generation(generation, indexed)  # the publishing writer's hashes vouch for every file
    assert check.ok and check.recorded and check.hashed_bytes == 0 and check.checked == others
    result = verify(indexed)
    assert result.exit_code == 0, result.output
    assert f"generation g000001 in {indexed}: {len(others)} files checked" in result.output
    assert "all intact" in result.output


def test_a_changed_stat_is_hashed_again_and_verify_finds_what_no_stat_shows(indexed: Path):
    generation = current_dir(indexed)
    index_file = generation / "faces.faiss"
    os.utime(index_file, ns=(0, 0))  # same bytes, another stat: hashed in full once, then vouched for again
    check = verify_generation(generation, indexed)
    assert check.ok and check.hashed_bytes == index_file.stat().st_size
    assert verify_generation(generation, indexed).hashed_bytes == 0

    # Bit rot under the file system changes no stat: the open trusts the record, `verify` hashes in full.
    xor_bytes(index_file, 2000, 6000)
    record = json.loads((indexed / RECORD_FILE).read_text())
    record[f"{GENERATIONS_DIR}/g000001/faces.faiss"]["stat"] = stat_key(index_file.stat())
    (indexed / RECORD_FILE).write_text(json.dumps(record))
    assert verify_generation(generation, indexed).ok
    result = verify(indexed, "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False
    assert report["damaged"] == [{"path": f"{GENERATIONS_DIR}/g000001/faces.faiss",
                                  "problem": "its SHA-256 differs from the manifest's"}]
    with pytest.raises(DamagedIndexError, match="faces.faiss"):  # verify refreshed the record
        published_store(indexed)


@pytest.mark.slow
def test_a_damaged_faiss_file_is_refused_everywhere_until_repair_rebuilds_it(fake_model, indexed, settings, photos):
    from indexer.erasure import erase_faces
    from indexer.people.annotations import AnnotationsDB

    xor_bytes(current_dir(indexed) / "faces.faiss", 2000, 6000)  # loads fine, 9 faces' vectors garbage

    result = verify(indexed)
    assert result.exit_code == 1
    assert "damaged: generations/g000001/faces.faiss: its SHA-256 differs" in result.output
    assert f"facesearch repair --data-dir {indexed}" in result.output
    refused = serve_refused(indexed)
    assert "faces.faiss" in refused and f"facesearch repair --data-dir {indexed}" in refused

    # Writers refuse to copy it: nothing started, nothing published.
    with pytest.raises(DamagedIndexError, match="facesearch repair"):
        index_paths([photos], settings, progress=False, model=fake_model)
    annotations = AnnotationsDB.open(indexed)
    with pytest.raises(DamagedIndexError, match="faces.faiss"):
        erase_faces(indexed, [1], annotations, settings=settings)
    annotations.close()
    assert current_name(indexed) == "g000001" and not list((indexed / GENERATIONS_DIR).glob("*.wip"))

    repaired = facesearch("repair", "--data-dir", str(indexed))
    assert repaired.returncode == 0 and "15 faces" in repaired.stdout, repaired.stdout
    assert current_name(indexed) == "g000002"
    assert verify(indexed).exit_code == 0
    store = published_store(indexed)  # the FAISS file was rebuilt from SQLite, not copied
    ids, _, x = store.all_embeddings()
    assert (store.vectors_of(ids) == x).all()
    store.close()
    with serving(indexed, workers=1) as (base, _):
        assert get_json(f"{base}/api/v1/health")["faces"] == 15


def test_a_damaged_approximate_index_is_rebuilt_by_repair_not_reused(fake_model, data_dir: Path, photos: Path):
    fake_model.faces_per_image = 2
    settings = load_settings(data_dir=data_dir, indexer={"workers": 1}, index={"search": "approximate"})
    index_paths([photos], settings, progress=False, model=fake_model)
    ann = current_dir(data_dir) / "faces.ann.faiss"
    xor_bytes(ann, 200, 400)  # the trained part a repair would otherwise keep
    with pytest.raises(DamagedIndexError, match="faces.ann.faiss.*facesearch repair"):
        published_store(data_dir)
    assert facesearch("repair", "--data-dir", str(data_dir)).returncode == 0
    assert verify_generation(current_dir(data_dir), data_dir, full=True).ok
    assert (current_dir(data_dir) / "faces.ann.faiss").read_bytes() != ann.read_bytes()


def test_a_damaged_metadata_database_needs_a_full_rebuild(fake_model, backend, indexed: Path, settings, photos):
    db = current_dir(indexed) / "metadata.sqlite3"
    middle = db.stat().st_size // 2
    xor_bytes(db, middle, middle + 64)

    result = verify(indexed)
    assert result.exit_code == 1 and "damaged: generations/g000001/metadata.sqlite3" in result.output
    assert f"facesearch index --full --data-dir {indexed}" in result.output
    refused = serve_refused(indexed)
    assert "metadata.sqlite3" in refused and "index --full" in refused
    repair = facesearch("repair", "--data-dir", str(indexed))  # would seal the damage under fresh checksums
    assert repair.returncode == 1 and "index --full" in repair.stdout, repair.stdout
    assert current_name(indexed) == "g000001"

    report = index_paths([photos], settings, full=True, progress=False, model=fake_model)  # copies nothing: the way out
    assert report.published and report.faces_total == 15
    assert verify(indexed).exit_code == 0


def test_a_damaged_or_edited_manifest_is_caught(indexed: Path):
    path = current_dir(indexed) / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "faces": 14}))  # valid JSON, its own checksum no longer matches
    with pytest.raises(DamagedIndexError, match=r"manifest.json \(its own checksum does not match.*index --full"):
        published_store(indexed)
    path.write_text("{")
    result = verify(indexed)
    assert result.exit_code == 1 and "damaged: generations/g000001/manifest.json: unreadable" in result.output


@pytest.mark.slow
def test_a_generation_published_before_checksums_still_serves_and_gets_them(fake_model, indexed, settings, photos):
    forget_checksums(current_dir(indexed))
    published_store(indexed).close()
    result = verify(indexed)
    assert result.exit_code == 0
    assert "no checksums recorded (published before them); the next index run records them" in result.output
    assert "SQLite quick_check: generations/g000001/metadata.sqlite3, annotations.sqlite3" in result.output
    with serving(indexed, workers=1) as (base, _):
        assert get_json(f"{base}/api/v1/health")["faces"] == 15

    report = index_paths([photos], settings, progress=False,
                         model=fake_model)  # nothing changed, yet published: with checksums
    assert report.published and report.images_indexed == 0
    assert FILES_KEY in json.loads((current_dir(indexed) / "manifest.json").read_text())


def test_a_running_server_keeps_its_generation_when_the_new_one_is_damaged(fake_model, indexed: Path, settings, photos):
    from service import create_app

    app = create_app(settings.model_copy(update={"service": settings.service.model_copy(
        update={"reload_check_s": 0})}), model=fake_model)
    client = app.test_client()
    assert client.get("/api/v1/health").get_json()["faces"] == 15
    shutil.copy(photos / "Tony_Blair" / "Tony_Blair_0002.jpg", photos / "copy.jpg")
    index_paths([photos], settings, progress=False, model=fake_model)
    xor_bytes(current_dir(indexed) / "faces.faiss", 2000, 6000)

    health = client.get("/api/v1/health").get_json()
    assert health["faces"] == 15
    assert "still serving generation g000001: generation g000002 cannot be opened" in health["warning"]
    assert "faces.faiss" in health["warning"] and "facesearch repair" in health["warning"]

    assert facesearch("repair", "--data-dir", str(indexed)).returncode == 0
    health = client.get("/api/v1/health").get_json()
    assert health["faces"] == 16 and health["warning"] is None
