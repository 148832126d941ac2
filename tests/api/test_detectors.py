"""YuNet is the default detector; an index keeps the detector it was built
with until ``--full`` rebuilds it (unless the settings name one), serves
query photos with it, and says which one it is (``GET /api/v1/index``,
the index page)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import load_settings
from facesearch.cli import main
from indexer.indexing import index_paths
from indexer.store import StoreError
from tests.helpers import client_of


def index(photos: Path, data_dir: Path, model, *, full: bool = False, detector: str | None = None):
    detection = {"model": detector} if detector else {}
    settings = load_settings(data_dir=data_dir, indexer={"workers": 1}, detection=detection)
    return index_paths([photos], settings, full=full, progress=False, model=model)


def detector_of(data_dir: Path, model) -> str | None:
    return client_of(data_dir, model=model).get("/api/v1/index").get_json()["detector"]


def test_an_index_keeps_its_detector_until_a_full_rebuild(photos: Path, data_dir: Path, fake_model):
    index(photos, data_dir, fake_model)
    assert detector_of(data_dir, fake_model) == "yunet"  # the default

    other = data_dir.parent / "hog-index"
    index(photos, other, fake_model, detector="hog")
    assert detector_of(other, fake_model) == "hog"
    page = client_of(other, model=fake_model).get("/index").get_data(as_text=True)
    assert 'data-detector="hog"' in page and "the settings ask for YuNet" in page and "index --full" in page

    (photos / "Tony_Blair" / "Tony_Blair_0001.jpg").unlink()  # a change: the next run publishes
    report = index(photos, other, fake_model)  # the default, not set: the index keeps HOG
    assert report.errors == [] and detector_of(other, fake_model) == "hog"
    with pytest.raises(StoreError, match="other detection settings"):
        index(photos, other, fake_model, detector="yunet")  # named in the settings: refused, as any change
    index(photos, other, fake_model, full=True)  # rebuilt with the default
    assert detector_of(other, fake_model) == "yunet"
    assert "the settings ask for" not in client_of(other, model=fake_model).get("/index").get_data(as_text=True)


def test_the_command_line_says_which_detector_it_kept(photos: Path, data_dir: Path, fake_model, runner):
    index(photos, data_dir, fake_model, detector="hog")
    (photos / "Tony_Blair" / "Tony_Blair_0001.jpg").unlink()
    result = runner.invoke(main, ["index", str(photos), "--data-dir", str(data_dir), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "faces found with hog, which built this index; yunet is the default now" in result.output
