"""Video indexing: sampling, track linking, representative faces, errors and
reruns with the fake model on small lossless videos (FFV1 in Matroska, so
that equal frames decode to equal pixels and the fake's embeddings stay
put), and one run of the real dlib model on an MP4."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from config.settings import VideoSettings, load_settings
from indexer.faces import find_faces
from indexer.images import decode_rgb
from indexer.indexing import index_paths
from indexer.model import Box
from indexer.recording_time import QUICKTIME_EPOCH_OFFSET, recording_start
from indexer.tracks import Sighting, Track, Tracker
from indexer.video import FALLBACK_FPS, VideoReader
from tests.helpers import A_GAP_B, A, fake_vector, lfw_photo, published_store, scripted_model, write_video


def video_settings(data_dir: Path, **video):
    return load_settings(data_dir=data_dir, indexer={"workers": 1}, video=video)


def indexed_faces(data_dir: Path) -> list:
    """Every face of the published index, by timestamp."""
    store = published_store(data_dir)
    try:
        ids, _, _ = store.all_embeddings()
        return sorted(store.faces(ids.tolist()).values(), key=lambda r: r.timestamp)
    finally:
        store.close()


def file_rows(data_dir: Path) -> list[tuple]:
    store = published_store(data_dir)
    try:
        return store.db.conn.execute(
            "SELECT path, kind, duration_s, taken_at, width, height, face_count FROM files ORDER BY path"
        ).fetchall()
    finally:
        store.close()


# -- indexing with the fake model ---------------------------------------------


def test_two_people_are_two_tracks_at_the_right_times(fake_model, data_dir, tmp_path: Path):
    video = write_video(tmp_path / "videos" / "cam1.mkv", A_GAP_B)
    report = index_paths([video.parent], video_settings(data_dir), progress=False, model=fake_model)
    assert report.errors == [] and report.images_indexed == 1
    faces = indexed_faces(data_dir)
    tracks = sorted({(f.track_start, f.track_end) for f in faces})
    # Sampled at 2 fps: A seen at 0.0 ... 2.5 s, B at 4.0 ... 6.5 s.
    assert tracks == [(0.0, 2.5), (4.0, 6.5)]
    for start, end in tracks:
        stamps = [f.timestamp for f in faces if (f.track_start, f.track_end) == (start, end)]
        assert len(stamps) == 3  # 6 sightings each, 3 kept: first, largest, last
        assert stamps[0] == start and stamps[-1] == end
        assert all(abs(t * 2 - round(t * 2)) < 1e-6 for t in stamps)  # on the 0.5 s sampling grid
    assert {f.kind for f in faces} == {"video"}
    path, kind, duration, taken_at, width, height, count = file_rows(data_dir)[0]
    assert (kind, duration, width, height, count) == ("video", 7.0, 320, 180, 6)
    assert taken_at == pytest.approx(video.stat().st_mtime)  # no recording time in a Matroska file
    # Each face's thumbnail comes from its frame.
    store = published_store(data_dir)
    thumb = Image.open(io.BytesIO(store.thumbnail(faces[0].face_id)))
    store.close()
    assert thumb.format == "JPEG" and max(thumb.size) <= 160


def test_empty_frames_get_no_second_pass(fake_model, data_dir, tmp_path: Path):
    """Most CCTV frames show nobody: a frame where the detector finds no
    face is not searched again (the second pass is for photos)."""
    recorded, calls = scripted_model(lambda name, rgb, upsample: fake_model.fake_detector.boxes(rgb, upsample=upsample))
    video = write_video(tmp_path / "videos" / "cam1.mkv", A_GAP_B)
    settings = video_settings(data_dir, motion_gating=False)
    assert index_paths([video.parent], settings, progress=False, model=recorded).errors == []
    assert len(calls) == 14 and set(calls) == {("yunet", 1)}  # 7 s at 2 fps, 2 of them empty


@pytest.mark.parametrize(("gating", "searched"), [(False, 120), (True, 6)])
def test_a_minute_in_front_of_the_camera_is_one_track_of_three_faces(fake_model, data_dir, tmp_path: Path,
                                                                      gating: bool, searched: int):
    """With motion gating, a still scene is searched every keyframe_s (10 s)
    only, and gives the same track: whoever was there still is."""
    video = write_video(tmp_path / "long.mkv", [(60, A)], size=(96, 64), fps=4, face_side=48)
    report = index_paths([video], video_settings(data_dir, motion_gating=gating), progress=False, model=fake_model)
    faces = indexed_faces(data_dir)
    assert fake_model.calls == searched  # of the 120 frames sampled (2 a second)
    assert (report.video_frames_searched, report.video_frames_skipped) == (searched, 120 - searched)
    assert [f.timestamp for f in faces] == [0.0, 0.5, 59.5]
    assert {(f.track_start, f.track_end) for f in faces} == {(0.0, 59.5)}


def test_motion_gating_searches_each_frame_where_something_moved(fake_model, data_dir, tmp_path: Path):
    """A scene change (a person comes, leaves, another comes) is searched
    at once; the still stretches between are not."""
    video = write_video(tmp_path / "cam.mkv", A_GAP_B)  # 3 s of A, 1 s empty, 3 s of B, at 2 fps
    report = index_paths([video], video_settings(data_dir), progress=False, model=fake_model)
    assert report.video_frames_searched == 3 and report.video_frames_skipped == 11  # at 0 s, 3 s and 4 s
    faces = indexed_faces(data_dir)
    assert sorted({(f.track_start, f.track_end) for f in faces}) == [(0.0, 2.5), (4.0, 6.5)]


def test_sample_rate_and_faces_per_track_are_settings(fake_model, data_dir, tmp_path: Path):
    video = write_video(tmp_path / "cam.mkv", A_GAP_B)
    index_paths([video], video_settings(data_dir, sample_fps=1, faces_per_track=1, motion_gating=False),
                progress=False, model=fake_model)
    faces = indexed_faces(data_dir)
    assert fake_model.calls == 7
    # At 1 fps a 1 s gap is one missed sample: the tracks still end there.
    assert [(f.timestamp, f.track_start, f.track_end) for f in faces] == [(0.0, 0.0, 2.0), (4.0, 4.0, 6.0)]


def test_damaged_videos_are_errors_not_crashes(fake_model, data_dir, tmp_path: Path):
    folder = tmp_path / "videos"
    good = write_video(folder / "good.mkv", [(1, A)])
    mp4 = write_video(tmp_path / "whole.mp4", [(1, A)], fourcc="mp4v")
    (folder / "truncated.mp4").write_bytes(mp4.read_bytes()[:2000])  # its index (moov) is at the end
    (folder / "notes.avi").write_text("not a video")
    (folder / "empty.webm").write_bytes(b"")
    report = index_paths([folder], video_settings(data_dir), progress=False, model=fake_model)
    assert sorted(Path(e["path"]).name for e in report.errors) == ["empty.webm", "notes.avi", "truncated.mp4"]
    assert all("cannot open it as a video" in e["error"] for e in report.errors)
    assert report.images_indexed == 1 and [Path(r[0]).name for r in file_rows(data_dir)] == [good.name]


def test_videos_longer_than_the_limit_are_refused(fake_model, data_dir, tmp_path: Path):
    video = write_video(tmp_path / "cam.mkv", A_GAP_B)
    report = index_paths([video], video_settings(data_dir, max_duration_s=5), progress=False, model=fake_model)
    assert len(report.errors) == 1 and "video.max_duration_s (5 s)" in report.errors[0]["error"]
    assert fake_model.calls == 0  # refused from the declared length, before any frame


def test_rerun_skips_an_unchanged_or_moved_video(fake_model, data_dir, tmp_path: Path):
    video = write_video(tmp_path / "videos" / "cam.mkv", A_GAP_B)
    settings = video_settings(data_dir)
    index_paths([video.parent], settings, progress=False, model=fake_model)
    calls = fake_model.calls
    report = index_paths([video.parent], settings, progress=False, model=fake_model)
    assert (report.images_unchanged, report.images_indexed, report.published) == (1, 0, False)
    os.utime(video, ns=(1_000_000_000, 1_000_000_000))  # touched, same content: hashed, not decoded
    report = index_paths([video.parent], settings, progress=False, model=fake_model)
    assert (report.images_unchanged, report.images_indexed) == (1, 0)
    video.rename(video.with_name("renamed.mkv"))  # a move: found by content hash (streamed), faces kept
    report = index_paths([video.parent], settings, progress=False, model=fake_model)
    assert (report.images_moved, report.images_indexed, report.faces_added) == (1, 0, 0)
    assert fake_model.calls == calls


def test_mp4_recording_time_is_the_files_time(tmp_path: Path):
    video = write_video(tmp_path / "cam.mp4", [(0.5, A)], fourcc="mp4v")
    assert recording_start(str(video)) is None  # OpenCV leaves it unset (0)
    data = bytearray(video.read_bytes())
    mvhd = data.find(b"mvhd")
    data[mvhd + 8 : mvhd + 12] = struct.pack(">I", QUICKTIME_EPOCH_OFFSET + 1_700_000_000)
    video.write_bytes(bytes(data))
    assert recording_start(str(video)) == 1_700_000_000.0
    assert recording_start(str(write_video(tmp_path / "cam.mkv", [(0.5, A)]))) is None


# -- sampling, linking and representatives, without files ---------------------


class FakeCapture:
    """A stream of ``frames`` numbered frames with a declared ``fps`` and
    positions ``msec(i)`` (what OpenCV reports after grabbing frame i)."""

    def __init__(self, frames: int, fps: float, msec=lambda i: 0.0) -> None:
        self.frames, self.fps, self.msec = frames, fps, msec
        self.grabbed = 0
        self.retrieved = 0

    def grab(self) -> bool:
        if self.grabbed >= self.frames:
            return False
        self.grabbed += 1
        return True

    def retrieve(self):
        self.retrieved += 1
        return True, np.full((4, 4, 3), self.grabbed - 1, np.uint8)

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_COUNT: self.frames, cv2.CAP_PROP_FRAME_WIDTH: 4,
                cv2.CAP_PROP_FRAME_HEIGHT: 4, cv2.CAP_PROP_POS_MSEC: self.msec(self.grabbed - 1)}[prop]

    def release(self) -> None:
        pass


def sampled(capture: FakeCapture, sample_fps: float) -> list[tuple[float, int]]:
    reader = VideoReader(capture, cv2)
    return [(round(t, 6), int(rgb[0, 0, 0])) for t, rgb in reader.sampled_frames(sample_fps)]


def test_sampling_grabs_every_frame_and_retrieves_the_sampled_ones():
    capture = FakeCapture(90, fps=30)
    assert sampled(capture, 2) == [(i / 2, i * 15) for i in range(6)]
    assert (capture.grabbed, capture.retrieved) == (90, 6)
    assert sampled(FakeCapture(10, fps=10), 3) == [(0.0, 0), (0.3, 3), (0.7, 7)]  # within half a frame of 1/3 s
    assert len(sampled(FakeCapture(10, fps=5), 30)) == 10  # faster than the stream: every frame


def test_sampling_a_stream_without_frame_rate():
    # No declared rate: the stream's positions (here 40 ms apart) give the times.
    capture = FakeCapture(50, fps=0, msec=lambda i: 40.0 * i)
    assert sampled(capture, 2) == [(0.0, 0), (0.52, 13), (1.0, 25), (1.52, 38)]
    # ...and when they do not advance, FALLBACK_FPS is assumed.
    reader = VideoReader(FakeCapture(50, fps=float("nan")), cv2)
    times = [t for t, _ in reader.sampled_frames(1)]
    assert reader.info.fps is None and times == pytest.approx([0.0, 25 / FALLBACK_FPS])
    assert reader.duration_s == pytest.approx(50 / FALLBACK_FPS)


def sighting(t: float, left: int, person: str, side: int = 100) -> Sighting:
    return Sighting(t, Box(0, left + side, side, left), fake_vector(person.encode()), b"")


def tracks_of(frames: list[tuple[float, list[Sighting]]], **video) -> list[Track]:
    tracker = Tracker(VideoSettings(**video))
    for t, sightings in frames:
        tracker.add_frame(t, sightings)
    return tracker.finish()


def test_linking_needs_overlapping_boxes_and_near_embeddings():
    # A walks right 20 px a sample (IoU 0.67); B stands still; then A jumps across the frame.
    frames = [(t / 2, [sighting(t / 2, 20 * t, "a"), sighting(t / 2, 400, "b")]) for t in range(4)]
    frames.append((2.0, [sighting(2.0, 250, "a"), sighting(2.0, 400, "b")]))
    tracks = tracks_of(frames)
    assert [(t.start, t.end, t.sightings) for t in tracks] == [(0.0, 1.5, 4), (0.0, 2.0, 5), (2.0, 2.0, 1)]
    # Same place, another person: a new track.
    assert len(tracks_of([(0.0, [sighting(0.0, 0, "a")]), (0.5, [sighting(0.5, 0, "c")])])) == 2


def test_a_track_ends_after_the_gap():
    seen = [sighting(0.0, 0, "a"), sighting(1.5, 0, "a"), sighting(3.5, 0, "a")]
    tracks = tracks_of([(s.timestamp, [s]) for s in seen], max_gap_s=1.5)
    assert [(t.start, t.end) for t in tracks] == [(0.0, 1.5), (3.5, 3.5)]
    # A sample interval longer than the gap does not cut every track.
    assert len(tracks_of([(s.timestamp, [s]) for s in seen[:2]], max_gap_s=0.5, sample_fps=0.5)) == 1


def test_representatives_are_the_first_the_largest_and_the_last():
    sides = [60, 80, 120, 90, 70, 110, 65]
    sightings = [sighting(i / 2, 0, "a", side) for i, side in enumerate(sides)]

    def kept(n: int) -> list[float]:
        track = Track(0, sightings[0], sightings[0], keep=n)
        for s in sightings[1:]:
            track.add(s)
        assert len(track._middle) <= max(n - 2, 1)  # bounded, whatever the track's length
        return [s.timestamp for s in track.representatives()]

    assert kept(3) == [0.0, 1.0, 3.0]
    assert kept(4) == [0.0, 1.0, 2.5, 3.0]
    assert kept(1) == [1.0]
    assert kept(2) == [0.0, 3.0]
    assert kept(10) == [i / 2 for i in range(7)]


# -- the real model -------------------------------------------------------------


def central_embedding(model, path: Path) -> np.ndarray:
    faces = find_faces(model, decode_rgb(path.read_bytes()), load_settings().detection)
    return max(faces, key=lambda f: f.box.area).embedding


@pytest.mark.model
def test_real_model_finds_each_person_at_the_right_times(real_model, data_dir, tmp_path: Path):
    video = write_video(tmp_path / "cam.mp4", A_GAP_B, size=(640, 360), fourcc="mp4v", face_side=250)
    report = index_paths([video], video_settings(data_dir), progress=False, model=real_model)
    assert report.errors == []
    faces = indexed_faces(data_dir)
    tracks = sorted({(f.track_start, f.track_end) for f in faces})
    # Two scenes, at most 3 faces a track (Tony Blair's photo also shows a bystander at its edge: a third track).
    assert len(tracks) == 2 and len(faces) <= 9
    store = published_store(data_dir)
    try:
        # Probes: other photos of the same people find them where they were (one sample = 0.5 s).
        for probe, (start, end) in ((lfw_photo("Tony_Blair", 2), (0, 3)), (lfw_photo("Colin_Powell", 2), (4, 7))):
            distances, ids = store.search(central_embedding(real_model, probe)[None, :], 10)
            near = [int(i) for d, i in zip(distances[0], ids[0]) if i >= 0 and d <= 0.6**2]  # squared L2
            hits = store.faces(near).values()
            assert hits, probe.name
            for hit in hits:
                assert start <= hit.track_start <= hit.timestamp <= hit.track_end < end
                assert hit.track_start <= start + 0.5 and hit.track_end >= end - 1.0
    finally:
        store.close()
