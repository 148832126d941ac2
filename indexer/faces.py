"""Find and encode every face of a photo: detection on a downscaled copy,
boxes mapped back to the original pixels, encoding on the full-resolution
photo. Shared by the indexer and the query-by-photo endpoint, so that indexed
faces and query faces are found the same way."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from config.settings import DetectionSettings, ThumbnailSettings
from indexer.model import Box, FaceModel


@dataclass(frozen=True)
class Face:
    """One face of a photo: its box in original-image pixels and its 128-d
    float32 embedding."""

    box: Box
    embedding: np.ndarray


def detection_scale(width: int, height: int, max_side: int) -> float:
    """Factor (<= 1) that brings the longest side down to ``max_side``."""
    longest = max(width, height)
    if max_side <= 0 or longest <= max_side:
        return 1.0
    return max_side / longest


def detect_boxes(model: FaceModel, rgb: np.ndarray, detection: DetectionSettings, *,
                 second_pass: bool = True) -> list[Box]:
    """Face boxes found by ``model``'s detector ``detection.model``, in
    ``rgb``'s own pixel coordinates, largest first, at least
    ``detection.min_face_size`` pixels high. Detection runs on a copy whose
    longest side is at most ``detection.max_side``. HOG's cost grows with the
    pixel count (upsample 1, measured here: ~700 ms at 1920x1080, ~480 ms at
    1600x900, ~170 ms at 640x480); the price is that faces smaller than
    ~40 px *in the downscaled copy* are missed. With ``upsample_policy``
    "retry", the copy is searched at upsample 0 first (a quarter of the cost,
    faces from ~80 px) and again at ``upsample`` only when that found no
    face of the minimum size.

    The second pass (``detection.second_pass``; ``second_pass=False`` for
    video frames, most of which show nobody): a copy of at most
    ``second_pass_max_pixels`` where HOG found nothing is searched by HOG at
    ``upsample`` + 1 (~4x the cost), then by dlib's CNN detector at upsample
    0 (~0.36 s at 250x250 with dlib-bin). On LFW it finds a face in each of
    the 0.5% of photos HOG misses (turned, tilted or covered faces)."""
    height, width = rgb.shape[:2]
    scale = detection_scale(width, height, detection.max_side)
    if scale < 1.0:
        small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = np.asarray(Image.fromarray(rgb).resize(small_size, Image.Resampling.BILINEAR))
    else:
        small = rgb
    factor = 1.0 / scale if scale < 1.0 else 1.0

    def found_at(upsample: int, detector: str = detection.model) -> list[Box]:
        found = model.detector(detector).boxes(small, upsample=upsample)
        boxes = [map_box(b, factor, width, height) for b in found]
        return [b for b in boxes if b.height >= detection.min_face_size and b.width > 0]

    boxes = []
    if detection.upsample_policy == "retry" and detection.upsample > 0:
        boxes = found_at(0)
    if not boxes:
        boxes = found_at(detection.upsample)
    small_enough = small.shape[0] * small.shape[1] <= detection.second_pass_max_pixels
    # Not after YuNet: on LFW DevTrain it finds a face in all 9,525 photos by
    # itself, so the second pass would only cost time where there is no face.
    if not boxes and second_pass and detection.second_pass and detection.model == "hog" and small_enough:
        boxes = found_at(detection.upsample + 1) or found_at(0, "cnn")
    boxes.sort(key=lambda b: (-b.area, b.top, b.left))
    return boxes


def map_box(box: Box, factor: float, width: int, height: int) -> Box:
    """Scale a box by ``factor`` and clip it to a ``width`` x ``height`` image."""
    return Box(
        top=max(0, min(height, round(box.top * factor))),
        right=max(0, min(width, round(box.right * factor))),
        bottom=max(0, min(height, round(box.bottom * factor))),
        left=max(0, min(width, round(box.left * factor))),
    )


def find_faces(
    model: FaceModel, rgb: np.ndarray, detection: DetectionSettings, max_faces: int | None = None,
    boxes: list[Box] | None = None, *, second_pass: bool = True,
) -> list[Face]:
    """Every face of the photo, found and encoded by ``model`` (the
    ``max_faces`` largest when given: only they are encoded), largest first, with its embedding computed on the
    full-resolution photo. ``boxes``: from ``detect_boxes`` already;
    ``second_pass``: as there (False for video frames)."""
    boxes = (detect_boxes(model, rgb, detection, second_pass=second_pass) if boxes is None else boxes)[:max_faces]
    embeddings = model.encoder.embeddings(rgb, boxes, jitters=detection.jitters)
    return [Face(box=b, embedding=embeddings[i]) for i, b in enumerate(boxes)]


def thumbnail_jpeg(rgb: np.ndarray, box: Box, settings: ThumbnailSettings) -> bytes:
    """A JPEG of the face at ``box`` with ``settings.margin`` of the box added on
    each side, longest side at most ``settings.size`` pixels."""
    height, width = rgb.shape[:2]
    pad_y = round(box.height * settings.margin)
    pad_x = round(box.width * settings.margin)
    top, bottom = max(0, box.top - pad_y), min(height, box.bottom + pad_y)
    left, right = max(0, box.left - pad_x), min(width, box.right + pad_x)
    crop = Image.fromarray(rgb[top:bottom, left:right])
    # Bilinear after a box pre-reduction: half the cost of Lanczos, and at
    # 160 px the difference does not show.
    crop.thumbnail((settings.size, settings.size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = io.BytesIO()
    crop.save(out, format="JPEG", quality=settings.jpeg_quality)
    return out.getvalue()
