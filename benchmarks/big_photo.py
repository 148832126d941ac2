"""Big photos: face_recognition's defaults against ours on a 12-megapixel
photo, and what a query photo of many pixels costs a search.

The photo is the cast group photo ``bbt/examples/images/bbt1.jpg`` from the
shared photos (1366x768) scaled up to 4624x2600 (12.0 MP, the size of a
16:9 phone photo) with Lanczos, so its faces are phone-sized (~250 px).

* plain: ``face_recognition.load_image_file``, ``face_locations`` (HOG,
  upsample 1, on the full 12 MP), ``face_encodings`` (the defaults every
  ``face_recognition`` script uses);
* ours: ``indexer.images.decode_rgb`` and ``indexer.faces.find_faces`` with
  the default settings (detection on a copy downscaled to 1600 px, encoding
  on the full photo; the default model: the ONNX encoder, 1 thread),
  also with ``upsample_policy = "retry"``.

Each is run ``--repeats`` times (median seconds) in this process, side by
side. Same faces: how many plain boxes have one of ours with IoU >= 0.5, and
the largest Euclidean distance between matched embeddings (dlib's threshold
is 0.6). On this photo the plain run's fifth "face" is a 36 px box on a
hand (a false positive that only the full-resolution upsampled scan makes);
the four real faces are found by all.

Run::

    .venv/bin/python -m benchmarks.big_photo [--repeats 3]

Results: ``benchmarks/results/big_photo.json``.

``--queries``: one search by photo (decode, detect, encode; the lookup
after is ~1 ms), each photo in a fresh process: seconds (median of
``--repeats``) and peak memory (RSS above the process's after a small
warm-up search), before (``decode_rgb``: every photo decoded whole, as the
service did) and after (``application.searching.decode_query``: a JPEG of more
than ``service.max_decoded_pixels`` decoded at the least reduction that
brings it within, other formats refused from the header past it). The
photos: ``bbt1.jpg`` scaled to 1080p, 12 MP and 48 MP JPEGs (quality 92),
and pasted at its own size on a white 7000x7000 square, as JPEG and as PNG
(1.8 MB; what costs is the pixels decoded, not the bytes: the finding's
was a 157 KB near-flat square); then that square as a PNG of 4 to 32 MP,
decoded whole: the cost per megapixel that sets
``service.max_decoded_pixels``. Results: ``big_photo_queries.json``.

``--matches``: whether faces encoded from a reduced JPEG find what the
whole photo finds. The shared photos are indexed (real model, in a
temporary folder), then each of their JPEGs is searched decoded whole and
with ``decode_query``, scaled up to 12 and to 48 MP (Lanczos, quality 92;
12 MP is within the limit, decoded whole; 48 MP is decoded at 1/2), and at
its own size decoded at 1/2 (its real detail halved: the scaled-up photos
hold no more detail than their originals, so only this shows what a
reduction costs a face). Per face found both ways (IoU >= 0.5): the same
nearest face among the other photos (the query's own file left out) or
not, the difference of that distance, and the drift (the distance between
the two query embeddings), also by the face's height in the reduced copy.
Results: ``big_photo_matches.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from application.searching import decode_query, nearest_faces
from benchmarks.common import REPO_ROOT, SHARED_DATA, print_table, require_dir, require_file, write_results
from config.settings import DetectionSettings, EncodingSettings, SearchSettings, ServiceSettings, load_settings
from indexer.faces import detect_boxes, find_faces, map_box
from indexer.images import ImageError, ScaledPhoto, decode_rgb, decode_within
from indexer.indexing import index_paths
from indexer.model import Box, FaceModel, face_model, runtime_info
from indexer.store import open_published
from indexer.tracks import iou

SOURCE = SHARED_DATA / "photos" / "bbt" / "examples" / "images" / "bbt1.jpg"
SIZE = (4624, 2600)
PHOTOS = SHARED_DATA / "photos"
WARM_UP = REPO_ROOT / "tests" / "data" / "lfw" / "Tony_Blair" / "Tony_Blair_0001.jpg"
SQUARE = 7000  # pixels a side: the 49 MP PNG of the finding, under service.max_query_pixels
PNG_SERIES_MP = (4, 8, 16, 24, 32)
MATCH_SIZES = {"12 MP": 12e6, "48 MP": 48e6}
HALF = "own size, 1/2"
FACE_HEIGHTS = (0, 80, 120, 160, 100_000)  # bins of face height in the reduced copy, pixels


def default_model() -> FaceModel:
    """The model a search in this process finds and encodes faces with: the
    default encoding settings (the ONNX encoder, 1 thread)."""
    return face_model(EncodingSettings())


def plain(path: Path) -> tuple[list[Box], np.ndarray]:
    import face_recognition

    image = face_recognition.load_image_file(str(path))
    locations = face_recognition.face_locations(image)
    encodings = face_recognition.face_encodings(image, locations)
    return [Box(*loc) for loc in locations], np.asarray(encodings, dtype=np.float32).reshape(-1, 128)


def ours(model: FaceModel, path: Path, detection: DetectionSettings) -> tuple[list[Box], np.ndarray]:
    faces = find_faces(model, decode_rgb(path.read_bytes()), detection)
    return [f.box for f in faces], np.asarray([f.embedding for f in faces], dtype=np.float32).reshape(-1, 128)


def timed(run, repeats: int):
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def compare(reference: tuple[list[Box], np.ndarray], other: tuple[list[Box], np.ndarray]) -> tuple[int, float]:
    """(reference faces matched by IoU >= 0.5, largest embedding distance between matches)."""
    matched, worst = 0, 0.0
    for box, vector in zip(*reference):
        scores = [iou(box, b) for b in other[0]]
        if scores and max(scores) >= 0.5:
            matched += 1
            worst = max(worst, float(np.linalg.norm(vector - other[1][int(np.argmax(scores))])))
    return matched, worst


# -- what a query photo costs ---------------------------------------------------


def scaled_jpeg(source: Image.Image, pixels: float) -> bytes:
    """``source`` scaled (Lanczos) to about ``pixels``, as a JPEG of quality 92."""
    factor = (pixels / (source.width * source.height)) ** 0.5
    out = io.BytesIO()
    source.resize((round(source.width * factor), round(source.height * factor)), Image.Resampling.LANCZOS).save(
        out, "JPEG", quality=92)
    return out.getvalue()


def square(source: Image.Image, side: int, fmt: str, height: int | None = None) -> bytes:
    """``source`` at its own size in the middle of a white ``side`` x ``height`` canvas."""
    canvas = Image.new("RGB", (side, height or side), "white")
    canvas.paste(source, ((side - source.width) // 2, ((height or side) - source.height) // 2))
    out = io.BytesIO()
    canvas.save(out, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return out.getvalue()


def query_photos(source: Image.Image) -> dict[str, bytes]:
    """The photos of ``--queries``, by name."""
    photos = {"1080p JPEG": scaled_jpeg(source, 1920 * 1080), "12 MP JPEG": scaled_jpeg(source, 12e6),
              "48 MP JPEG": scaled_jpeg(source, 48e6), f"{SQUARE}x{SQUARE} JPEG": square(source, SQUARE, "JPEG"),
              f"{SQUARE}x{SQUARE} PNG": square(source, SQUARE, "PNG")}
    for mp in PNG_SERIES_MP:
        width = round((mp * 1e6 * 4 / 3) ** 0.5)
        photos[f"{mp} MP PNG"] = square(source, width, "PNG", int(mp * 1e6 // width))  # 4:3, at most mp
    return photos


def decoded(data: bytes, mode: str) -> ScaledPhoto:
    """The photo as the service decoded it before (``decode_rgb``) or decodes it now."""
    service, detection = ServiceSettings(), DetectionSettings()
    if mode == "before":
        rgb = decode_rgb(data, max_pixels=service.max_query_pixels)
        return ScaledPhoto(rgb, 1, rgb.shape[1], rgb.shape[0])
    return decode_query(data, service, detection)


def search_cost(model: FaceModel, data: bytes, mode: str) -> int:
    """Decode, detect and encode as a search does; the faces encoded."""
    detection = DetectionSettings()
    photo = decoded(data, mode)
    boxes = detect_boxes(model, photo.rgb, detection)
    return len(find_faces(model, photo.rgb, detection, max_faces=SearchSettings().max_query_faces, boxes=boxes))


def measure(path: Path, mode: str, repeats: int) -> dict:
    """In this (fresh) process: seconds per search and the peak RSS it adds."""
    model = default_model()
    model.load(["hog"])
    search_cost(model, WARM_UP.read_bytes(), mode)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    data = path.read_bytes()
    seconds, faces, error = [], None, None
    for _ in range(repeats):
        started = time.perf_counter()
        try:
            faces = search_cost(model, data, mode)
        except ImageError as exc:
            error = exc.code
        seconds.append(time.perf_counter() - started)
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) / 1024
    return {"seconds": statistics.median(seconds), "peak_mb": peak_mb, "faces": faces, "refused": error}


def queries(source: Path, repeats: int) -> None:
    rows, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in query_photos(Image.open(source).convert("RGB")).items():
            path = Path(tmp) / name.replace(" ", "_")
            path.write_bytes(data)
            size = Image.open(path).size
            entry = {"photo": name, "bytes": len(data), "size": size}
            for mode in ("before", "after"):
                command = [sys.executable, "-m", "benchmarks.big_photo", "--measure", str(path), "--mode", mode,
                           "--repeats", str(repeats)]
                out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO_ROOT).stdout
                entry[mode] = json.loads(out.strip().splitlines()[-1])
            results.append(entry)
            before, after = entry["before"], entry["after"]
            rows.append([name, f"{size[0]}x{size[1]}", f"{len(data) / 1e6:.2f}", 1000 * before["seconds"],
                         before["peak_mb"], before["faces"], 1000 * after["seconds"], after["peak_mb"],
                         after["refused"] or after["faces"]])
    print_table(["photo", "size", "MB", "before ms", "before peak MB", "faces", "after ms", "after peak MB",
                 "faces"], rows,
                title=f"one search by photo (decode, detect, encode), median of {repeats}, peak RSS added")
    series = [r for r in results if r["photo"].endswith(" MP PNG")]
    mp = [r["size"][0] * r["size"][1] / 1e6 for r in series]
    ms_per_mp, ms_fixed = np.polyfit(mp, [1000 * r["before"]["seconds"] for r in series], 1)
    mb_per_mp, mb_fixed = np.polyfit(mp, [r["before"]["peak_mb"] for r in series], 1)
    print(f"a PNG decoded whole ({PNG_SERIES_MP} MP, least squares): {ms_per_mp:.1f} ms and {mb_per_mp:.1f} MB "
          f"per megapixel, over {ms_fixed:.0f} ms and {mb_fixed:.0f} MB")
    write_results("big_photo_queries", {
        "photo": str(source), "dlib": runtime_info(default_model()), "detection_max_side": DetectionSettings().max_side,
        "service": ServiceSettings().model_dump(include={"max_query_pixels", "max_decoded_pixels"}),
        "png_whole_per_megapixel": {"ms": ms_per_mp, "mb": mb_per_mp, "fixed_ms": ms_fixed, "fixed_mb": mb_fixed},
        "results": results})


# -- the same matches -------------------------------------------------------------


def matches(photos: Path) -> None:
    service, detection = ServiceSettings(), DetectionSettings()
    queries = sorted(p for p in photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    stats: dict[str, dict] = {}
    model = default_model()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=tmp, indexer={"workers": 2})
        report = index_paths([photos], settings, progress=False, model=face_model(settings.encoding))
        print(f"index: {report.faces_total} faces from {report.photos_total} files of {photos}")
        store = open_published(Path(tmp), settings)
        for path in queries:
            source = Image.open(path).convert("RGB")
            variants = {name: scaled_jpeg(source, pixels) for name, pixels in MATCH_SIZES.items()}
            variants[HALF] = path.read_bytes()
            for name, data in variants.items():
                whole = decoded(data, "before")
                # At its own size: a limit just under the whole photo's pixels, so 1/2.
                reduced = (decode_query(data, service, detection) if name != HALF else
                           decode_within(data, max_decoded_pixels=whole.width * whole.height - 1))
                found = {label: _search(model, store, photo, detection) for label, photo in
                         (("whole", whole), ("reduced", reduced))}
                _compare(stats.setdefault(name, _empty()), found, str(path), reduced.scale)
        store.close()
    rows = [[name, s["queries"], s["faces_whole"], s["matched"], s["same_top1"], max(s["top1_delta"], default=0.0),
             _median(s["drift"]), max(s["drift"], default=0.0)] for name, s in stats.items()]
    print_table(["JPEG", "photos", "faces (whole)", "found both ways", "same nearest face", "max |d1 - d1'|",
                 "median drift", "max drift"], rows,
                title="decoded whole against decode_query: the nearest face among the other photos")
    by_height = _by_height(stats[HALF])
    print_table(["face height in the 1/2 copy", "faces", "median drift", "max drift"],
                [[f"{lo}-{hi} px", r["faces"], r["median_drift"], r["max_drift"]] for (lo, hi), r in by_height.items()],
                title="own size decoded at 1/2: drift by the face's height in the reduced copy")
    write_results("big_photo_matches", {
        "photos": str(photos), "index_faces": report.faces_total, "detection_max_side": detection.max_side,
        "max_decoded_pixels": service.max_decoded_pixels, "dlib": runtime_info(model),
        "results": {name: {**{k: v for k, v in s.items() if k not in ("drift", "heights", "top1_delta")},
                           "max_top1_delta": r[5], "median_drift": r[6], "max_drift": r[7]}
                    for (name, s), r in zip(stats.items(), rows)},
        "half_drift_by_face_height": {f"{lo}-{hi}": r for (lo, hi), r in by_height.items()},
    })


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _by_height(stats: dict) -> dict[tuple[int, int], dict]:
    """Drift by face height in the reduced copy (``FACE_HEIGHTS`` bins)."""
    bins = {}
    for lo, hi in zip(FACE_HEIGHTS, FACE_HEIGHTS[1:]):
        drifts = [d for h, d in zip(stats["heights"], stats["drift"]) if lo <= h < hi]
        bins[(lo, hi)] = {"faces": len(drifts), "median_drift": _median(drifts), "max_drift": max(drifts, default=0.0)}
    return bins


def _search(model: FaceModel, store, photo: ScaledPhoto,
            detection: DetectionSettings) -> list[tuple[Box, np.ndarray, list]]:
    """(box in the photo's pixels, embedding, 10 nearest faces) of each face
    of ``photo``, found by ``model`` as ``search_by_photo`` finds them."""
    faces = find_faces(model, photo.rgb, detection)
    if not faces:
        return []
    hits = nearest_faces(store, np.stack([f.embedding for f in faces]), 10)
    return [(map_box(f.box, photo.scale, photo.width, photo.height), f.embedding, h) for f, h in zip(faces, hits)]


def _empty() -> dict:
    return {"queries": 0, "scales": [], "faces_whole": 0, "matched": 0, "same_top1": 0, "top1_delta": [],
            "drift": [], "heights": [], "different": []}


def _compare(stats: dict, found: dict, own: str, scale: int) -> None:
    """Add one query's faces, decoded whole and reduced (at 1/``scale``), to ``stats``."""
    stats["queries"] += 1
    stats["scales"] = sorted(set(stats["scales"]) | {scale})
    stats["faces_whole"] += len(found["whole"])
    for box, vector, hits in found["whole"]:
        scores = [iou(box, other) for other, _, _ in found["reduced"]]
        if not scores or max(scores) < 0.5:
            continue
        other_box, other_vector, other_hits = found["reduced"][int(np.argmax(scores))]
        stats["matched"] += 1
        stats["drift"].append(float(np.linalg.norm(vector - other_vector)))
        stats["heights"].append(other_box.height / scale)
        first = next((m for m in hits if m.path != own), None)
        other_first = next((m for m in other_hits if m.path != own), None)
        if first is None or other_first is None:
            continue
        if first.face_id == other_first.face_id:
            stats["same_top1"] += 1
            stats["top1_delta"].append(abs(first.distance - other_first.distance))
        else:
            stats["different"].append({"query": own, "whole": [first.path, first.distance],
                                       "reduced": [other_first.path, other_first.distance]})


# -- face_recognition's defaults against ours ---------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, default=SOURCE, help="the photo to scale up")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--queries", action="store_true", help="what query photos cost, before and after")
    parser.add_argument("--matches", action="store_true", help="the matches of JPEGs decoded at reduced scale")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # one --queries measurement
    parser.add_argument("--mode", choices=("before", "after"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.mode, args.repeats)))
        return
    source = require_file(args.photo, "the group photo")
    if args.queries:
        queries(source, args.repeats)
        return
    if args.matches:
        matches(require_dir(PHOTOS, "the shared photos"))
        return
    model = default_model()
    model.load(["hog"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "12mp.jpg"
        buffer = io.BytesIO()
        Image.open(source).convert("RGB").resize(SIZE, Image.Resampling.LANCZOS).save(buffer, "JPEG", quality=92)
        path.write_bytes(buffer.getvalue())
        runs = {
            "plain face_recognition (HOG, upsample 1, full 12 MP)": lambda: plain(path),
            "ours (max_side 1600, upsample 1)": lambda: ours(model, path, DetectionSettings()),
            'ours (max_side 1600, upsample_policy "retry")': lambda: ours(
                model, path, DetectionSettings(upsample_policy="retry")),
        }
        results = {name: timed(run, args.repeats) for name, run in runs.items()}
    base_name = next(iter(results))
    base_s, base = results[base_name]
    rows = []
    for name, (seconds, found) in results.items():
        matched, worst = compare(base, found)
        rows.append({"run": name, "seconds": seconds, "speedup": base_s / seconds, "faces": len(found[0]),
                     "matched_plain_faces": matched, "max_embedding_distance": worst})
    print_table(["run", "s", "speed-up", "faces", "plain faces matched", "max embedding distance"],
                [[r["run"], r["seconds"], r["speedup"], r["faces"], f"{r['matched_plain_faces']}/{len(base[0])}",
                  r["max_embedding_distance"]] for r in rows],
                title=f"{SIZE[0]}x{SIZE[1]} photo ({SIZE[0] * SIZE[1] / 1e6:.1f} MP), median of {args.repeats}")
    write_results("big_photo", {"photo": str(source), "size": SIZE, "dlib": runtime_info(model), "results": rows})


if __name__ == "__main__":
    main()
