"""The data directory is its owner's alone: every file 0600, every folder
0700, whatever the umask (issue 22, finding 8), on both store backends."""

import os
import shutil
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from indexer.erasure import erase_faces
from indexer.indexing import index_paths, repair_index
from indexer.people.annotations import AnnotationsDB
from tests.helpers import lfw_photo, serving

FACESEARCH = str(Path(sys.executable).with_name("facesearch"))

pytestmark = pytest.mark.usefixtures("backend")  # every test on FAISS and on Milvus Lite


def not_private(data_dir: Path) -> list[str]:
    """Every entry under ``data_dir`` (itself included) that is not a 0700
    folder or a 0600 file, with its mode."""
    wrong = []
    for path in [data_dir, *sorted(data_dir.rglob("*"))]:
        mode = path.lstat().st_mode & 0o777
        if mode != (0o700 if path.is_dir() else 0o600):
            wrong.append(f"{path.relative_to(data_dir)} {mode:o}")
    return wrong


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def facesearch(*args: str) -> str:
    """The real command in a child process started with umask 022."""
    result = subprocess.run([FACESEARCH, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=300, preexec_fn=lambda: os.umask(0o022))
    assert result.returncode == 0, result.stdout
    return result.stdout


@pytest.mark.model  # the real command indexes with the real model
def test_every_command_writes_private_files_under_umask_022(tmp_path: Path):
    photos, data_dir = tmp_path / "photos", tmp_path / "index"
    photos.mkdir()
    for person, n in [("Tony_Blair", 1), ("Colin_Powell", 1)]:
        shutil.copy(lfw_photo(person, n), photos)
    facesearch("index", "--data-dir", str(data_dir), "--workers", "1", str(photos))
    assert not_private(data_dir) == []
    shutil.copy(lfw_photo("Tony_Blair", 2), photos)
    facesearch("index", "--data-dir", str(data_dir), "--workers", "1", str(photos))  # a reindex: a copy
    facesearch("repair", "--data-dir", str(data_dir))
    facesearch("erase", "--data-dir", str(data_dir), "--face", "1", "--yes")
    assert not_private(data_dir) == []
    with umask(0o022), serving(data_dir, workers=1) as (base, _):
        urllib.request.urlopen(f"{base}/", timeout=10).close()  # a page: session secret, audit line
        assert not_private(data_dir) == []  # with the server's files open (the WAL of the annotations...)
    assert not_private(data_dir) == []


def test_our_writers_set_the_modes_themselves(fake_model, settings, photos: Path):
    """In-process, without the command's umask: explicit modes."""
    with umask(0o022):
        index_paths([photos], settings, progress=False, model=fake_model)
        (photos / "Tony_Blair" / "Tony_Blair_0001.jpg").unlink()
        index_paths([photos], settings, progress=False, model=fake_model)
        repair_index(settings)
        annotations = AnnotationsDB.open(settings.data_dir)
        erase_faces(settings.data_dir, [2], annotations, settings=settings)
        annotations.close()
    assert not_private(settings.data_dir) == []


def test_an_old_world_readable_data_directory_is_tightened_by_the_next_run(fake_model, settings, photos: Path):
    index_paths([photos], settings, progress=False, model=fake_model)
    for path in [settings.data_dir, *settings.data_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # as an older version left it
    index_paths([photos], settings, progress=False, model=fake_model)  # nothing to index: tightened all the same
    assert not_private(settings.data_dir) == []


@pytest.mark.slow
def test_serve_tightens_an_old_data_directory_at_start(fake_model, settings, photos: Path):
    index_paths([photos], settings, progress=False, model=fake_model)
    (settings.data_dir / "runs.jsonl").chmod(0o644)
    (settings.data_dir / "generations").chmod(0o755)
    with serving(settings.data_dir, workers=1):
        assert not_private(settings.data_dir) == []
