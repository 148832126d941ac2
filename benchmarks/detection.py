"""Detection policies: how many faces each finds and what it costs.

Policies (``detection.upsample``, ``upsample_policy`` and ``second_pass``),
all with the HOG detector and the default downscale to ``max_side`` 1600 px:

* ``upsample 1``: the default; finds faces from ~40 px;
* ``upsample 0``: a quarter of the cost, faces from ~80 px;
* ``retry``: upsample 0 first, upsample 1 only on photos where it found no
  face (``upsample_policy = "retry"``);
* ``upsample 1 + second pass``: the default: where upsample 1 found no face
  in a photo of at most ``second_pass_max_pixels``, HOG at upsample 2, then
  the CNN detector (``detection.second_pass``). The first three without it.

On two sets, in one process, one photo at a time (decoding not timed):
LFW DevTrain (250x250 crops, one person each; ``--limit`` photos spread from
A to Z, 0 = all 9,525) and every full-size photo under
``../shared/data/photos`` (group shots, 240p to 1080p, crops, a blank).
For each: photos with a face, faces found, and faces matching the ``upsample
1`` boxes (IoU >= 0.5): found by both, missed, and extra; detection ms per
photo and photos per second.

Run::

    .venv/bin/python -m benchmarks.detection [--limit 0]

Results: ``benchmarks/results/detection.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import (
    DEFAULT_LFW,
    LFW_HINT,
    SHARED_DATA,
    lfw_photos,
    print_table,
    require_dir,
    spread_subset,
    write_results,
)
from config.settings import DetectionSettings, EncodingSettings
from indexer.faces import detect_boxes
from indexer.images import ImageError, decode_rgb
from indexer.model import Box, FaceModel, face_model
from indexer.tracks import iou

POLICIES = {
    "upsample 1": DetectionSettings(upsample=1, second_pass=False),
    "upsample 0": DetectionSettings(upsample=0, second_pass=False),
    "retry (0, then 1 if none)": DetectionSettings(upsample=1, upsample_policy="retry", second_pass=False),
    "upsample 1 + second pass (default)": DetectionSettings(upsample=1),
}
REFERENCE = "upsample 1"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def matched(boxes: list[Box], reference: list[Box]) -> int:
    """How many reference boxes have a box of ``boxes`` over IoU 0.5 (greedy)."""
    left = list(boxes)
    hits = 0
    for ref in reference:
        best = max(left, key=lambda b: iou(b, ref), default=None)
        if best is not None and iou(best, ref) >= 0.5:
            left.remove(best)
            hits += 1
    return hits


def run_set(model: FaceModel, name: str, paths: list[Path]) -> list[dict]:
    images = []
    for path in paths:
        try:
            images.append(decode_rgb(path.read_bytes()))
        except (OSError, ImageError):
            continue
    found: dict[str, list[list[Box]]] = {}
    seconds: dict[str, float] = {}
    for policy, detection in POLICIES.items():
        start = time.perf_counter()
        found[policy] = [detect_boxes(model, rgb, detection) for rgb in images]
        seconds[policy] = time.perf_counter() - start
    rows = []
    reference = found[REFERENCE]
    total_reference = sum(len(r) for r in reference)
    for policy in POLICIES:
        boxes = found[policy]
        both = sum(matched(b, r) for b, r in zip(boxes, reference))
        faces = sum(len(b) for b in boxes)
        rows.append({
            "set": name, "policy": policy, "photos": len(images),
            "photos_with_a_face": sum(1 for b in boxes if b), "faces": faces,
            "matching_upsample_1": both, "missed_vs_upsample_1": total_reference - both,
            "extra_vs_upsample_1": faces - both,
            "ms_per_photo": 1000 * seconds[policy] / max(len(images), 1),
            "photos_per_s": len(images) / seconds[policy] if seconds[policy] else 0.0,
            "speedup_vs_upsample_1": seconds[REFERENCE] / seconds[policy] if seconds[policy] else 0.0,
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW DevTrain folder")
    parser.add_argument("--photos", type=Path, default=SHARED_DATA / "photos", help="full-size photos")
    parser.add_argument("--limit", type=int, default=0, help="LFW photos (0 = all)")
    args = parser.parse_args()
    lfw = require_dir(args.lfw, "the LFW DevTrain photos", LFW_HINT)
    photos_dir = require_dir(args.photos, "the shared photos")
    model = face_model(EncodingSettings())  # dlib's detectors (the encoder is not used)
    model.load(["hog", "cnn"])
    lfw_paths = spread_subset(lfw_photos(lfw), args.limit)
    photo_paths = sorted(p for p in photos_dir.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES
                         and p.stat().st_size > 20_000)  # full-size photos, not the small crops
    rows = run_set(model, "LFW DevTrain", lfw_paths) + run_set(model, "shared photos", photo_paths)
    print_table(
        ["set", "policy", "photos", "with a face", "faces", "same as up 1", "missed", "extra", "ms/photo",
         "photos/s", "speed-up"],
        [[r["set"], r["policy"], r["photos"], r["photos_with_a_face"], r["faces"], r["matching_upsample_1"],
          r["missed_vs_upsample_1"], r["extra_vs_upsample_1"], r["ms_per_photo"], r["photos_per_s"],
          r["speedup_vs_upsample_1"]] for r in rows],
        title="HOG detection policies (max_side 1600), one process",
    )
    write_results("detection", {"lfw": str(lfw), "photos": str(photos_dir), "results": rows})


if __name__ == "__main__":
    main()
