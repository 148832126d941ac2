"""Video indexing speed: seconds of video indexed per second of work, for
720p recordings, today's default beside the detector before, with 1 worker.

Two recordings built from LFW DevTrain photos, 1280x720 at 25 fps (MPEG-4
part 2, ``mp4v``: the codec OpenCV's wheel can write) over a fixed textured
background: the **walking** clip, 60 s where 5 people (a 300x300 px photo
each, the face about 130 px high) appear 6 times, walking or standing, up
to two at once, with empty stretches between (``APPEARANCES``); and the
**static** clip, 120 s of a fixed camera's empty scene where one person
stands for 10 s (``STATIC_APPEARANCES``). Each is indexed three ways
(``VARIANTS``): YuNet with motion gating (the default), YuNet searching
every sampled frame, and HOG searching every sampled frame (the default
before). Each run is ``indexer.indexing.index_paths`` on that one file into
a fresh data directory, with the model loaded before timing, so its time is
everything ``facesearch index`` does for a video: hashing, decoding every
frame, converting the sampled ones, the motion gate, detection and
encoding, track linking, thumbnails and the store writes. Decoding alone
is timed too.

Reported: sampled frames and those the motion gate skipped, faces detected
on the searched ones (sightings; counted by the model's encoder, which
``find_faces`` calls once per searched frame), tracks, faces stored, wall
seconds, seconds of video per second of work (> 1: faster than real time),
and milliseconds per sampled frame.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.video [--rate 2] [--lfw DIR]

Results: ``benchmarks/results/video.json``.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from benchmarks.common import DEFAULT_LFW, LFW_HINT, now, print_table, ratio, require_dir, write_results
from config.settings import load_settings
from indexer.indexing import index_paths
from indexer.model import Box, Encoder, FaceModel, face_model
from indexer.store.generations import current_dir
from indexer.video import open_video

WIDTH, HEIGHT = 1280, 720  # pixels
FPS = 25  # frames per second of the recording
DURATION_S = 60
PHOTO_SIDE = 300  # pixels: each person's photo as pasted
PEOPLE = ["George_W_Bush", "Colin_Powell", "Tony_Blair", "Ariel_Sharon", "Hugo_Chavez"]
# (person, from s, to s, top-left (x, y) at the start, at the end: pixels)
APPEARANCES = [
    (0, 2, 14, (80, 200), (560, 220)),  # walks in from the left
    (1, 8, 22, (900, 120), (900, 120)),  # stands on the right
    (2, 17, 28, (150, 380), (450, 300)),
    (0, 32, 40, (500, 200), (500, 200)),  # the first one comes back: a second appearance
    (3, 34, 48, (950, 350), (700, 300)),
    (4, 44, 57, (100, 150), (400, 150)),
]
# The static-camera clip: 120 s of an empty scene where one person stands for 10 s.
STATIC_DURATION_S = 120
STATIC_APPEARANCES = [(1, 50, 60, (900, 120), (900, 120))]
# (label, video settings, detection settings): today's default, the same without
# motion gating, and the detector before (HOG, every sampled frame).
VARIANTS = [
    ("YuNet, motion gating (default)", {}, {}),
    ("YuNet, every sampled frame", {"motion_gating": False}, {}),
    ("HOG, every sampled frame (before)", {"motion_gating": False}, {"model": "hog"}),
]


def background() -> np.ndarray:
    """A fixed textured BGR frame: a vertical gradient plus smooth noise."""
    rng = np.random.default_rng(0)
    noise = np.asarray(Image.fromarray(rng.integers(0, 255, (HEIGHT // 16, WIDTH // 16), dtype=np.uint8))
                       .resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR), dtype=np.float32)
    gradient = np.linspace(60, 160, HEIGHT, dtype=np.float32)[:, None]
    grey = np.clip(gradient * 0.8 + noise * 0.2, 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def build_video(lfw: Path, path: Path, appearances: list | None = None, duration_s: int = DURATION_S) -> None:
    """Write the recording described in the module doc to ``path`` (or
    another: its ``appearances`` over ``duration_s``)."""
    appearances = APPEARANCES if appearances is None else appearances
    photos = []
    for person in PEOPLE:
        rgb = Image.open(lfw / person / f"{person}_0001.jpg").convert("RGB").resize((PHOTO_SIDE, PHOTO_SIDE))
        photos.append(np.asarray(rgb)[:, :, ::-1])
    scene = background()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise SystemExit("error: OpenCV cannot write an mp4v video here")
    for index in range(duration_s * FPS):
        t = index / FPS
        frame = scene.copy()
        for person, start, end, (x0, y0), (x1, y1) in appearances:
            if start <= t < end:
                share = (t - start) / (end - start)
                x, y = round(x0 + (x1 - x0) * share), round(y0 + (y1 - y0) * share)
                frame[y : y + PHOTO_SIDE, x : x + PHOTO_SIDE] = photos[person]
        writer.write(frame)
    writer.release()


def decode_only(path: Path, rate: float) -> tuple[float, int]:
    """(seconds, frames sampled) to decode the video and retrieve its sampled frames (as BGR, unconverted)."""
    started = now()
    with open_video(str(path)) as reader:
        sampled = sum(1 for _ in reader.sampled_bgr(rate))
    return now() - started, sampled


class CountingEncoder:
    """``encoder``, counting what it is given: ``indexer.faces.find_faces``
    encodes the faces it keeps of a frame in one call (none: still one
    call), so the calls are the sampled frames and the boxes the sightings."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.name = encoder.name
        self.frames = self.sightings = 0

    def embeddings(self, rgb: np.ndarray, boxes: list[Box], *, jitters: int = 1) -> np.ndarray:
        self.frames += 1
        self.sightings += len(boxes)
        return self.encoder.embeddings(rgb, boxes, jitters=jitters)

    def load(self) -> None:
        self.encoder.load()


def index_run(model: FaceModel, path: Path, rate: float, data_dir: Path, video: dict | None = None,
              detection: dict | None = None) -> dict:
    """Index ``path`` at ``rate`` frames a second with 1 worker and ``model`` into ``data_dir``."""
    settings = load_settings(data_dir=data_dir, indexer={"workers": 1}, video={"sample_fps": rate, **(video or {})},
                             detection=detection or {})
    counts = CountingEncoder(model.encoder)  # the worker runs in this process (1 worker): the counts are seen here
    started = now()
    report = index_paths([path], settings, progress=False, model=FaceModel(model.detectors, counts))
    seconds = now() - started
    if report.errors:
        raise SystemExit(f"error: {report.errors}")
    db = sqlite3.connect(current_dir(data_dir) / "metadata.sqlite3")
    tracks = db.execute("SELECT track, MIN(track_start), MAX(track_end), COUNT(*) FROM faces GROUP BY track").fetchall()
    duration = db.execute("SELECT duration_s FROM files").fetchone()[0]
    db.close()
    return {
        "sample_fps": rate, "video_s": duration, "seconds": seconds, "sampled_frames": counts.frames,
        "frames_skipped": report.video_frames_skipped,
        "sightings": counts.sightings, "tracks": len(tracks), "faces_stored": report.faces_added,
        "video_s_per_s": ratio(duration, seconds), "ms_per_sampled_frame": ratio(seconds * 1000, counts.frames),
        "track_ranges_s": [[round(t[1], 2), round(t[2], 2), t[3]] for t in tracks],
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="the LFW DevTrain folder")
    parser.add_argument("--rate", type=float, default=2.0, help="sample rate, frames per second of video")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    lfw = require_dir(args.lfw, "the LFW DevTrain photos", LFW_HINT)
    model = face_model(load_settings().encoding)
    model.load(["yunet", "hog"])
    clips = {"walking": (APPEARANCES, DURATION_S), "static": (STATIC_APPEARANCES, STATIC_DURATION_S)}
    runs = []
    with tempfile.TemporaryDirectory(prefix="facesearch-video-") as tmp:
        for clip, (appearances, duration) in clips.items():
            video = Path(tmp) / f"{clip}.mp4"
            build_video(lfw, video, appearances, duration)
            decode_s, _ = decode_only(video, args.rate)
            print(f"built the {clip} clip: {duration} s {WIDTH}x{HEIGHT} {FPS} fps "
                  f"({video.stat().st_size / 1e6:.1f} MB); decoding it alone: {decode_s:.2f} s", flush=True)
            for label, video_settings, detection in VARIANTS:
                run = index_run(model, video, args.rate, Path(tmp) / f"data-{clip}-{len(runs)}", video_settings,
                                detection)
                runs.append({"clip": clip, "variant": label, "decode_only_s": decode_s, **run})
    print_table(
        ["clip", "variant", "sampled", "skipped", "sightings", "tracks", "faces stored", "index s",
         "video s / work s", "ms / sampled frame"],
        [[r["clip"], r["variant"], r["sampled_frames"] + r["frames_skipped"], r["frames_skipped"], r["sightings"],
          r["tracks"], r["faces_stored"], r["seconds"], r["video_s_per_s"], r["ms_per_sampled_frame"]]
         for r in runs],
        title=f"Indexing {WIDTH}x{HEIGHT} recordings at {args.rate:g} sampled frames a second, 1 worker",
    )
    for run in runs:
        print(f"{run['clip']}, {run['variant']}: tracks (start s, end s, faces): {run['track_ranges_s']}")
    write_results("video", {
        "lfw": lfw, "width": WIDTH, "height": HEIGHT, "fps": FPS, "codec": "mp4v", "sample_fps": args.rate,
        "clips": {name: {"duration_s": duration,
                         "appearances": [{"person": PEOPLE[p], "from_s": a, "to_s": b} for p, a, b, _, _ in app]}
                  for name, (app, duration) in clips.items()},
        "workers": 1, "runs": runs,
    })


if __name__ == "__main__":
    main()
