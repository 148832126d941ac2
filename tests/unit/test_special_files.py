"""FIFOs, sockets and devices where photos should be: never read, never
waited on. ``indexer.safe_open`` refuses them; an index run skips and
reports them (found by the scan, or swapped in between scan and read); the
photo endpoint answers 404 at once and the server keeps answering.

Every test that makes a FIFO runs the call that could block on it in a
thread with a deadline (``finishes``): a regression fails the test instead
of hanging the suite."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from contextlib import suppress
from pathlib import Path

import pytest

from config.settings import load_settings
from indexer import safe_open
from indexer.hashing import file_hash
from indexer.indexing import index_paths
from indexer.recording_time import recording_start
from indexer.safe_open import NotRegularFile, open_regular, read_regular
from indexer.video import VideoError, open_video
from indexer.worker import process_video
from tests.helpers import A_GAP_B, DATA, FakeModel, assert_error, client_of, photo_id_of, serving, write_video

DEADLINE_S = 10  # far beyond what any of these calls takes; only a blocked one gets near it


def finishes(call, fifos: list[Path], seconds: float = DEADLINE_S):
    """``call()`` run in a thread: what it returns (or raises). Still running
    after ``seconds``: the ``fifos`` are released (``release``) and the
    test fails."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        release(fifos, until=lambda timeout: (thread.join(timeout), not thread.is_alive())[1])
        pytest.fail(f"still blocked after {seconds} s: a FIFO was opened or read")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def release(fifos: list[Path], until, seconds: float = 5) -> None:
    """Open each FIFO for writing and close it again, every 50 ms for up to
    ``seconds`` or until ``until(timeout)`` returns: each time, whatever is
    blocked opening or reading one (this process, a server, FFmpeg opening
    it again) sees its end and goes on."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for fifo in fifos:
            with suppress(OSError):  # nobody is reading it
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        if until(0.05):
            return


def unix_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    return sock


# -- the helper ------------------------------------------------------------------


def test_only_regular_files_are_opened(tmp_path):
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    (tmp_path / "link.jpg").symlink_to(fifo)
    (tmp_path / "photo.jpg").write_bytes(b"pixels")
    (tmp_path / "folder.jpg").mkdir()
    sock = unix_socket(tmp_path / "socket.jpg")
    expected = {"fifo.jpg": "a FIFO", "link.jpg": "a FIFO", "socket.jpg": "a socket", "folder.jpg": "a folder"}
    try:
        for name, kind in expected.items():
            with pytest.raises(NotRegularFile) as info:
                finishes(lambda name=name: read_regular(str(tmp_path / name)), [fifo])
            assert info.value.kind == kind and str(info.value) == f"not a regular file ({kind})"
        with pytest.raises(NotRegularFile, match=r"not a regular file \(a character device\)"):
            read_regular("/dev/null")
        with pytest.raises(FileNotFoundError):
            read_regular(str(tmp_path / "missing.jpg"))
        with finishes(lambda: open_regular(str(tmp_path / "photo.jpg")), [fifo]) as handle:
            assert os.get_blocking(handle.fileno()) and handle.read() == b"pixels"  # O_NONBLOCK cleared
    finally:
        sock.close()


def test_a_fifo_swapped_in_after_the_stat_is_refused_on_the_open_file(tmp_path, monkeypatch):
    """The stat says "a regular file", the open finds a FIFO: refused by the
    check on the open file, without waiting for a writer."""
    regular, fifo = tmp_path / "photo.jpg", tmp_path / "swapped.jpg"
    regular.write_bytes(b"pixels")
    os.mkfifo(fifo)
    real_stat = os.stat
    monkeypatch.setattr(safe_open.os, "stat", lambda path, *a, **k: real_stat(regular if path == str(fifo) else path))
    with pytest.raises(NotRegularFile, match="a FIFO"):
        finishes(lambda: read_regular(str(fifo)), [fifo])


def test_a_video_that_is_a_fifo_is_never_read(tmp_path):
    """Every reader of a video: the content hash, OpenCV, the recording
    time, and the worker's whole processing of it."""
    fifo = tmp_path / "cam.mp4"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile):
        finishes(lambda: file_hash(str(fifo)), [fifo])
    with pytest.raises(VideoError, match=r"not a regular file \(a FIFO\)"):
        finishes(lambda: open_video(str(fifo)), [fifo])
    assert finishes(lambda: recording_start(str(fifo)), [fifo]) is None
    result = finishes(lambda: process_video((str(fifo), 0, 0, None), load_settings(), FakeModel()), [fifo])
    assert result.error == "cannot read: not a regular file (a FIFO)"


# -- an index run ----------------------------------------------------------------


def test_an_index_run_skips_and_reports_fifos(fake_model, settings, photos, tmp_path):
    """A FIFO named x.jpg, a symlink to a FIFO, a FIFO named like a video and
    a socket are reported and skipped; a photo swapped for a FIFO between the
    scan and its read is reported; the other photos are indexed."""
    fifos = [photos / "x.jpg", tmp_path / "elsewhere.fifo", photos / "cam.mp4"]
    for fifo in fifos:
        os.mkfifo(fifo)
    (photos / "link.jpg").symlink_to(tmp_path / "elsewhere.fifo")
    sock = unix_socket(photos / "socket.png")
    # The last photo read (Vladimir_Putin_0003.jpg) becomes a FIFO once the first result is in.
    late = photos / "Vladimir_Putin" / "Vladimir_Putin_0003.jpg"
    fifos.append(late)

    def swap_late(result):
        if not late.is_fifo():
            late.unlink()
            os.mkfifo(late)

    try:
        started = time.monotonic()
        report = finishes(lambda: index_paths([photos], settings, progress=False, on_result=swap_late,
                                              model=fake_model), fifos)
    finally:
        sock.close()
    assert time.monotonic() - started < DEADLINE_S
    errors = {Path(e["path"]).name: e["error"] for e in report.errors}
    assert errors == {
        "x.jpg": "not a regular file (a FIFO): skipped, never read",
        "link.jpg": "not a regular file (a FIFO): skipped, never read",
        "cam.mp4": "not a regular file (a FIFO): skipped, never read",
        "socket.png": "not a regular file (a socket): skipped, never read",
        "Vladimir_Putin_0003.jpg": "cannot read: not a regular file (a FIFO)",
    }
    assert report.images_seen == 15 and report.images_indexed == 14 and report.faces_added == 14


# -- the photo endpoint ----------------------------------------------------------


@pytest.fixture
def indexed(fake_model, photos, data_dir, tmp_path):
    """The test photos and a video indexed; ``links/face.jpg`` is a symlink to one of the photos."""
    links = tmp_path / "links"
    links.mkdir()
    (links / "face.jpg").symlink_to(photos / "Colin_Powell" / "Colin_Powell_0001.jpg")
    video = write_video(tmp_path / "cams" / "door.mkv", A_GAP_B)
    index_paths([photos, links, video.parent], load_settings(data_dir=data_dir, indexer={"workers": 1}),
                model=fake_model)
    return photos


def test_the_photo_endpoint_refuses_a_fifo_at_once(fake_model, indexed, data_dir, tmp_path):
    client = client_of(data_dir, model=fake_model)
    photo = indexed / "Tony_Blair" / "Tony_Blair_0001.jpg"
    link, video = tmp_path / "links" / "face.jpg", tmp_path / "cams" / "door.mkv"
    urls = {path: f"/api/v1/photos/{photo_id_of(data_dir, path.absolute())}/image" for path in (photo, link, video)}
    # The photo and the video swapped for FIFOs, the symlink pointed at one.
    for path in (photo, video):
        path.unlink()
        os.mkfifo(path)
    fifo = tmp_path / "elsewhere.fifo"
    os.mkfifo(fifo)
    link.unlink()
    link.symlink_to(fifo)
    for _path, url in urls.items():
        started = time.monotonic()
        response = finishes(lambda url=url: client.get(url), [photo, video, fifo])
        error = assert_error(response, 404, "photo_unavailable")
        assert "not a regular file now (a FIFO)" in error["message"] and time.monotonic() - started < 1


@pytest.mark.slow
def test_a_real_server_answers_404_for_a_fifo_and_keeps_serving(fake_model, tmp_path):
    """``facesearch serve`` (gunicorn, one worker): three requests for a
    photo swapped for a FIFO each get their 404 at once; health still answers."""
    photos = tmp_path / "photos"
    shutil.copytree(DATA / "lfw" / "Tony_Blair", photos)
    data_dir = tmp_path / "index"
    index_paths([photos], load_settings(data_dir=data_dir, indexer={"workers": 1}), progress=False, model=fake_model)
    photo = photos / "Tony_Blair_0001.jpg"
    url = f"/api/v1/photos/{photo_id_of(data_dir, photo.resolve())}/image"
    photo.unlink()
    os.mkfifo(photo)
    with serving(data_dir, workers=1) as (base, _):
        try:
            for _ in range(3):
                started = time.monotonic()
                with pytest.raises(urllib.error.HTTPError) as info:
                    urllib.request.urlopen(base + url, timeout=5)  # a worker blocked: TimeoutError
                assert info.value.code == 404 and time.monotonic() - started < 1
                assert json.loads(info.value.read())["error"]["code"] == "photo_unavailable"
            with urllib.request.urlopen(f"{base}/api/v1/health", timeout=5) as response:
                assert response.status == 200
        finally:
            release([photo], until=lambda timeout: True)  # lets a blocked worker go: the server can stop
