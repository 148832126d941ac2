"""YuNet's hand-over to dlib's 5-point predictor: fit and check the boxes
"as HOG would draw them" that ``indexer.model.yunet`` derives from YuNet's
5 landmarks (``LANDMARK_BOX``: least squares on the landmarks' offsets;
``FRAME_BOX``: the landmarks' frame alone, 4 medians).

dlib's predictor was trained on HOG's boxes. For each photo, HOG (upsample
1) and YuNet (its default threshold) are run; the face is HOG's box nearest
the image centre (LFW's rule) paired with YuNet's that overlaps it most
(IoU >= 0.5 for YuNet's own box); HOG boxes cut by the image's edge are
left out.

The fit (``--fit``, default ``singletons``: the LFW DevTrain photos of
people with one photo, who are never a query of benchmarks.identification;
``all``: every photo) is printed as Python to paste into ``yunet.py``. The
check: the median IoU with HOG's box of each hand-over, with the constants
shipped and those just fitted, on ``--check`` photos spread over the people
with 2+ photos (default 600; 0: none).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.detection_handover [--fit singletons|all] [--check 600]

Results: ``benchmarks/results/detection_handover.json``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import (
    DEFAULT_LFW,
    LFW_HINT,
    lfw_photos,
    now,
    print_table,
    require_dir,
    spread_subset,
    write_results,
)
from indexer.model import DlibDetector, yunet
from indexer.model.yunet import YunetDetector, face_frame, hog_like

MIN_IOU = 0.5
Frame = tuple[float, float, float, float]  # FRAME_BOX's dx, dy, w, h


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes (n, 4: x1, y1, x2, y2) row by row."""
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area - inter, 1e-9)


def paired_faces(photos: list[Path]) -> dict[str, np.ndarray]:
    """HOG's box (n, 4), YuNet's box (n, 4) and landmarks (n, 5, 2) of the
    central face of each photo where both find it."""
    hog, detector = DlibDetector("hog"), YunetDetector()
    rows: dict[str, list] = {"hog": [], "yunet": [], "marks": []}
    for path in photos:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        height, width = rgb.shape[:2]
        found = hog.boxes(rgb, upsample=1)
        if not found:
            continue
        box = min(found, key=lambda b: np.hypot((b.left + b.right - width) / 2, (b.top + b.bottom - height) / 2))
        if box.left <= 0 or box.top <= 0 or box.right >= width or box.bottom >= height:
            continue
        hog_box = np.array([[box.left, box.top, box.right, box.bottom]], dtype=np.float64)
        boxes, _, marks = detector.detect(rgb)
        if not len(boxes):
            continue
        overlap = iou(np.repeat(hog_box, len(boxes), axis=0), boxes.astype(np.float64))
        if overlap.max() < MIN_IOU:
            continue
        rows["hog"].append(hog_box[0])
        rows["yunet"].append(boxes[overlap.argmax()])
        rows["marks"].append(marks[overlap.argmax()])
    return {k: np.array(v, dtype=np.float64) for k, v in rows.items()}


def targets(marks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """HOG's boxes as (dx, dy, w, h) in the frame of YuNet's landmarks:
    the centre's offset from the landmarks' mean and the sides, in units of
    the face's size."""
    centre, size = face_frame(marks)
    return np.stack([
        ((boxes[:, 0] + boxes[:, 2]) / 2 - centre[:, 0]) / size,
        ((boxes[:, 1] + boxes[:, 3]) / 2 - centre[:, 1]) / size,
        (boxes[:, 2] - boxes[:, 0]) / size,
        (boxes[:, 3] - boxes[:, 1]) / size,
    ], axis=1)


def fit(faces: dict[str, np.ndarray]) -> tuple[np.ndarray, Frame]:
    """(``LANDMARK_BOX``, ``FRAME_BOX``) fitted on ``faces``."""
    marks = faces["marks"]
    centre, size = face_frame(marks)
    offsets = ((marks[:, :4] - centre[:, None]) / size[:, None, None]).reshape(len(marks), 8)
    features = np.concatenate([offsets, np.ones((len(marks), 1))], axis=1)
    target = targets(marks, faces["hog"])
    landmark_box, *_ = np.linalg.lstsq(features, target, rcond=None)
    dx, dy, w, h = (float(v) for v in np.median(target, axis=0))
    return landmark_box, (dx, dy, w, h)


def check(faces: dict[str, np.ndarray], landmark_box: np.ndarray, frame_box: Frame) -> dict[str, float]:
    """Median IoU with HOG's box of each hand-over, with these constants."""
    shipped = yunet.LANDMARK_BOX, yunet.FRAME_BOX
    try:
        yunet.LANDMARK_BOX, yunet.FRAME_BOX = landmark_box, frame_box
        handed = {"raw": faces["yunet"], "hog": hog_like(faces["yunet"]),
                  "landmarks": yunet.landmark_box(faces["marks"]), "frame": yunet.frame_box(faces["marks"])}
    finally:
        yunet.LANDMARK_BOX, yunet.FRAME_BOX = shipped
    return {name: float(np.median(iou(boxes, faces["hog"]))) for name, boxes in handed.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW DevTrain folder")
    parser.add_argument("--fit", choices=("singletons", "all"), default="singletons",
                        help="the photos fitted on: of people with one photo (never a query), or all")
    parser.add_argument("--check", type=int, default=600, help="photos of people with 2+ photos checked (0: none)")
    args = parser.parse_args()
    lfw = require_dir(args.lfw, "the LFW DevTrain photos", LFW_HINT)
    photos = lfw_photos(lfw)
    count = Counter(p.parent.name for p in photos)
    fit_photos = [p for p in photos if args.fit == "all" or count[p.parent.name] == 1]
    started = now()
    faces = paired_faces(fit_photos)
    print(f"fit: {len(faces['hog'])} faces of {len(fit_photos)} photos ({now() - started:.1f} s)")
    landmark_box, frame_box = fit(faces)
    rows = "".join(f"    ({', '.join(f'{v:.4f}' for v in row)}),\n" for row in landmark_box)
    print(f"LANDMARK_BOX = np.array([\n{rows}], dtype=np.float64)")
    print(f"FRAME_BOX = ({', '.join(f'{v:.4f}' for v in frame_box)})")
    result: dict = {"fit": args.fit, "fit_photos": len(fit_photos), "fit_faces": len(faces["hog"]),
                    "landmark_box": landmark_box.tolist(), "frame_box": list(frame_box),
                    "fit_iou_median": check(faces, landmark_box, frame_box)}
    if args.check:
        checked = paired_faces(spread_subset([p for p in photos if count[p.parent.name] >= 2], args.check))
        result["check_faces"] = len(checked["hog"])
        result["check_iou_median"] = {"shipped": check(checked, yunet.LANDMARK_BOX, yunet.FRAME_BOX),
                                      "fitted": check(checked, landmark_box, frame_box)}
        print_table(["hand-over", "shipped", "fitted"],
                    [[name, iou_shipped, result["check_iou_median"]["fitted"][name]]
                     for name, iou_shipped in result["check_iou_median"]["shipped"].items()],
                    title=f"median IoU with HOG's box, {len(checked['hog'])} faces of people with 2+ photos")
    write_results("detection_handover", result)


if __name__ == "__main__":
    main()
