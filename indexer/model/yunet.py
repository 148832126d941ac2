"""YuNet, the default face detector (``detection.model = "yunet"``): a
230 KB network (Shiqi Yu et al., "YuNet: A tiny millisecond-level face
detector", 2023; OpenCV Zoo; MIT, ``weights/LICENSE.yunet``) run by
onnxruntime, the runtime the encoder already uses. It finds faces of about
10 to a few hundred pixels at the size it is run at, with 5 landmarks, in a few
milliseconds where dlib's HOG takes hundreds.

The file is vendored (``weights/``) and its SHA-256 checked when it is
loaded: nothing is downloaded. The embeddings stay dlib's 128-d: dlib's
5-point shape predictor finds the landmarks inside the box and cuts the
chip. That predictor was trained on HOG's boxes, which are wider and
shorter than YuNet's; the hand-over (``hand_over``) gives it the box HOG
would draw, placed by the frame of YuNet's own 5 landmarks (their mean
and the face's size: ``FRAME_BOX``, 4 numbers fitted on faces that are
never queries of the benchmark). Measured on LFW DevTrain
(docs/benchmarks.md, 23), leave-one-out top-1 over 6,671 queries at
``SCORE_THRESHOLD`` 0.7: 0.9646 (236 misses) with the frame, 0.9639 (241)
with HOG's box predicted from the landmarks by a 36-number linear fit
(``LANDMARK_BOX``), 0.9642 (239) with HOG's own boxes: every hand-over
tried is within ~5 queries of HOG, while swapping one for another changes
60-80 queries each way (McNemar p ~0.6): YuNet matches HOG within noise.
At OpenCV Zoo's score threshold 0.9 the threshold mattered more than the
box (0.957-0.960: YuNet missed a few central faces and found a bystander).

No second pass follows it (``indexer.faces``): on LFW DevTrain it finds a
face in all 9,525 photos by itself (HOG misses 46).

Scales (``boxes``): the photo is searched at its own size (rounded up to a
multiple of 32 with padding), and, when it is large enough to hold a face
over ``LARGEST_FACE`` pixels, also at a coarse scale whose longest side is
``COARSE_SIDE``; the two sets of boxes are merged by non-maximum
suppression.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from indexer.model.base import Box
from indexer.model.onnx_encoder import cpu_session

WEIGHTS = Path(__file__).parent / "weights" / "face_detection_yunet_2026may.onnx"
SHA256 = "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"
STRIDES = (8, 16, 32)
SCORE_THRESHOLD = 0.7  # sqrt(class x objectness): OpenCV Zoo's 0.9 misses real faces (docs/benchmarks.md, 23)
NMS_IOU = 0.3
# The coarse scale: its longest side, and the photos it is run on, those that
# can hold a face larger than LARGEST_FACE pixels (shortest side). Measured on
# 200 LFW photos enlarged: at the photo's own size YuNet finds a face of
# ~440 px in 199 of them and one of ~660 px in 169; with a coarse scale of 640,
# 480 or 400 px, in 199 both; 400 costs least (docs/benchmarks.md, 23).
COARSE_SIDE = 400
LARGEST_FACE = 450
# YuNet's box as HOG would draw it, for dlib's shape predictor (trained on
# HOG's boxes): the centre moved by (dx * width, dy * height), the sides
# scaled by (sx, sy). The medians over the 9,525 faces of LFW DevTrain found
# by both (benchmarks/detection_handover.py).
HOG_LIKE = (-0.038, 0.035, 1.125, 0.849)
# The same from YuNet's 5 landmarks (eyes, nose, mouth corners) instead of
# its box (the "landmarks" hand-over): HOG's box centre and sides, in units
# of the face's size (eye distance + eyes-to-mouth), as a linear function of
# the first 4 landmarks' offsets from their mean and 1 (least squares over
# the same faces: IoU with HOG's box 0.86 median, against 0.82 for HOG_LIKE
# and 0.73 raw).
LANDMARK_BOX = np.array([
    (0.6836, -1.1784, -1.4856, -1.5107),
    (0.1174, -0.5465, -3.1541, -3.2769),
    (-0.6363, 0.6630, 0.4437, 0.4105),
    (-0.1354, -0.7939, -3.4232, -3.6014),
    (-0.3851, -0.1663, -0.5522, -0.5531),
    (-0.4379, -0.8039, -0.9096, -1.0428),
    (-0.1808, -0.2790, -0.9724, -0.9141),
    (-0.8399, -0.3756, -0.8757, -1.1497),
    (0.4558, -0.7774, -0.9364, -0.9354),
], dtype=np.float64)
# HOG's box placed by the same frame alone (the "frame" hand-over, the
# default; IoU with HOG's box 0.852 median on held-out faces): its centre
# moved by (dx, dy) from the landmarks' mean and its sides (w, h), in units of
# the face's size, whatever the pose. The medians over the 2,823 faces HOG and
# YuNet both find in the LFW DevTrain photos of people with one photo, who are
# never queries of benchmarks.identification (benchmarks/detection_handover.py).
FRAME_BOX = (-0.0538, -0.0210, 1.2023, 1.1933)


class ModelFileError(RuntimeError):
    """The vendored model file is missing or is not the file it should be."""


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, best score first.
    ``boxes``: (n, 4) x1, y1, x2, y2."""
    order = np.argsort(-scores)
    keep: list[int] = []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while len(order):
        best, rest = order[0], order[1:]
        keep.append(int(best))
        x1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        overlap = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return keep


# The boxes handed to dlib's predictor: HOG's placed by the frame of YuNet's
# landmarks (the default), HOG's predicted from the landmarks by a linear fit,
# YuNet's box reshaped as HOG's, or YuNet's own box; the others are kept for
# benchmarks.identification --yunet-box (docs/benchmarks.md, 23).
HAND_OVERS = ("frame", "landmarks", "hog", "raw")


class YunetDetector:
    """YuNet in one onnxruntime session, made at first use behind a lock
    (``threads`` intra-op threads); pickles as its settings."""

    name = "yunet"

    def __init__(self, *, threads: int = 1, score_threshold: float = SCORE_THRESHOLD,
                 hand_over: str = HAND_OVERS[0]) -> None:
        if hand_over not in HAND_OVERS:
            raise ValueError(f"unknown hand-over {hand_over!r}: one of {', '.join(HAND_OVERS)}")
        self.threads = int(threads)
        self.score_threshold = float(score_threshold)
        self.hand_over = hand_over
        self._lock = threading.Lock()
        self._session: Any = None

    def __getstate__(self) -> dict[str, object]:
        return {"threads": self.threads, "score_threshold": self.score_threshold, "hand_over": self.hand_over}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def load(self) -> None:
        self._onnx_session()

    def boxes(self, rgb: np.ndarray, *, upsample: int = 0) -> list[Box]:
        """Every face's box in ``rgb``'s pixels, best first (``upsample`` is
        HOG's: YuNet finds faces from ~10 px at the photo's own size)."""
        found, scores, marks = self.detect(rgb)
        if self.hand_over == "hog" and len(found):
            found = hog_like(found)
        elif self.hand_over == "landmarks" and len(found):
            found = landmark_box(marks)
        elif self.hand_over == "frame" and len(found):
            found = frame_box(marks)
        height, width = rgb.shape[:2]
        out = []
        for x1, y1, x2, y2 in found[np.argsort(-scores)]:
            box = Box(top=max(0, round(y1)), right=min(width, round(x2)), bottom=min(height, round(y2)),
                      left=max(0, round(x1)))
            if box.right > box.left and box.bottom > box.top:
                out.append(box)
        return out

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes (n, 4) x1, y1, x2, y2, scores (n,), landmarks (n, 5, 2))
        in ``rgb``'s pixels: at its own size and, for a photo that can hold
        a face larger than ``LARGEST_FACE``, at the coarse scale too."""
        height, width = rgb.shape[:2]
        runs = [self._run(rgb, 1.0)]
        if min(height, width) > LARGEST_FACE and max(height, width) > COARSE_SIDE:
            factor = COARSE_SIDE / max(height, width)
            small = np.asarray(Image.fromarray(rgb).resize(
                (max(1, round(width * factor)), max(1, round(height * factor))), Image.Resampling.BILINEAR))
            runs.append(self._run(small, factor))
        boxes = np.concatenate([r[0] for r in runs])
        scores = np.concatenate([r[1] for r in runs])
        marks = np.concatenate([r[2] for r in runs])
        keep = nms(boxes, scores, NMS_IOU) if len(boxes) else []
        return boxes[keep], scores[keep], marks[keep]

    def _run(self, rgb: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One pass over ``rgb`` (a copy scaled by ``factor``), its results
        in the original's pixels."""
        height, width = rgb.shape[:2]
        padded_h, padded_w = -(-height // 32) * 32, -(-width // 32) * 32
        blob = np.zeros((1, 3, padded_h, padded_w), dtype=np.float32)
        blob[0, :, :height, :width] = rgb[:, :, ::-1].transpose(2, 0, 1)  # RGB -> BGR, HWC -> CHW
        outputs = dict(zip(self._names, self._onnx_session().run(self._names, {"input": blob}), strict=True))
        boxes, scores, marks = [], [], []
        for stride in STRIDES:
            cols = padded_w // stride
            score = np.sqrt(np.clip(outputs[f"cls_{stride}"][0, :, 0], 0, 1)
                            * np.clip(outputs[f"obj_{stride}"][0, :, 0], 0, 1))
            hit = np.nonzero(score >= self.score_threshold)[0]
            if not len(hit):
                continue
            r, c = (hit // cols).astype(np.float32), (hit % cols).astype(np.float32)
            bbox = outputs[f"bbox_{stride}"][0, hit]
            cx, cy = (c + bbox[:, 0]) * stride, (r + bbox[:, 1]) * stride
            w, h = np.exp(bbox[:, 2]) * stride, np.exp(bbox[:, 3]) * stride
            boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1))
            kps = outputs[f"kps_{stride}"][0, hit].reshape(-1, 5, 2)
            marks.append(np.stack([(kps[:, :, 0] + c[:, None]) * stride, (kps[:, :, 1] + r[:, None]) * stride],
                                  axis=2))
            scores.append(score[hit])
        if not boxes:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
        return (np.concatenate(boxes) / factor, np.concatenate(scores), np.concatenate(marks) / factor)

    _names = [f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in STRIDES]

    def _onnx_session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = cpu_session(read_weights(), self.threads)
        return self._session


def hog_like(boxes: np.ndarray) -> np.ndarray:
    """``boxes`` (n, 4: x1, y1, x2, y2) as HOG would draw them (``HOG_LIKE``)."""
    dx, dy, sx, sy = HOG_LIKE
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2 + dx * w, (boxes[:, 1] + boxes[:, 3]) / 2 + dy * h
    return np.stack([cx - sx * w / 2, cy - sy * h / 2, cx + sx * w / 2, cy + sy * h / 2], axis=1)


def landmark_box(marks: np.ndarray) -> np.ndarray:
    """Boxes (n, 4: x1, y1, x2, y2) as HOG would draw them, from YuNet's
    landmarks (n, 5, 2) (``LANDMARK_BOX``)."""
    centre, size = face_frame(marks)
    offsets = ((marks[:, :4] - centre[:, None]) / size[:, None, None]).reshape(len(marks), 8)
    cx, cy, w, h = (np.concatenate([offsets, np.ones((len(marks), 1))], axis=1) @ LANDMARK_BOX).T
    cx, cy, w, h = centre[:, 0] + cx * size, centre[:, 1] + cy * size, w * size, h * size
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def frame_box(marks: np.ndarray) -> np.ndarray:
    """Boxes (n, 4: x1, y1, x2, y2) as HOG would draw them, placed by the
    frame of YuNet's landmarks (n, 5, 2) alone (``FRAME_BOX``)."""
    centre, size = face_frame(marks)
    dx, dy, w, h = FRAME_BOX
    cx, cy = centre[:, 0] + dx * size, centre[:, 1] + dy * size
    return np.stack([cx - w * size / 2, cy - h * size / 2, cx + w * size / 2, cy + h * size / 2], axis=1)


def face_frame(marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre (n, 2), size (n,)) of faces from YuNet's landmarks (n, 5, 2):
    their mean, and the distance between the eyes plus that from the eyes'
    midpoint to the mouth's (between its corners)."""
    eyes, mouth = (marks[:, 0] + marks[:, 1]) / 2, (marks[:, 3] + marks[:, 4]) / 2
    size = np.linalg.norm(marks[:, 0] - marks[:, 1], axis=1) + np.linalg.norm(eyes - mouth, axis=1)
    return marks.mean(axis=1), size


def read_weights(path: Path = WEIGHTS) -> bytes:
    """The vendored model's bytes, after checking its SHA-256
    (``ModelFileError`` naming the fix otherwise)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"the YuNet detector's file is missing ({exc}): reinstall facesearch") from None
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise ModelFileError(f"{path} is not the YuNet model facesearch ships (its SHA-256 differs): reinstall "
                             "facesearch")
    return data
