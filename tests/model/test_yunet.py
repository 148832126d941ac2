"""The YuNet detector: the vendored file is checked before it is used, it
finds the faces of tests/data (one per LFW photo, the five of the group
photo) where dlib's HOG finds them, at every scale it runs, and its boxes
are handed to dlib's landmarks as HOG draws them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.model import DlibDetector
from indexer.model.yunet import HAND_OVERS, ModelFileError, YunetDetector, nms, read_weights
from indexer.tracks import iou
from tests.helpers import DATA

pytestmark = pytest.mark.model


def rgb_of(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_a_model_file_that_is_not_the_one_shipped_is_refused(tmp_path: Path):
    wrong = tmp_path / "yunet.onnx"
    wrong.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="SHA-256 differs"):
        read_weights(wrong)
    with pytest.raises(ModelFileError, match="missing"):
        read_weights(tmp_path / "gone.onnx")
    assert len(read_weights()) == 229_738


def test_non_maximum_suppression_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=np.float32)
    assert nms(boxes, np.array([0.8, 0.9, 0.7]), 0.3) == [1, 2]


def test_yunet_finds_the_faces_hog_finds():
    yunet, hog = YunetDetector(), DlibDetector("hog")
    for photo in sorted((DATA / "lfw").glob("*/*.jpg")) + [DATA / "group" / "bbt3.jpg"]:
        rgb = rgb_of(photo)
        found, expected = yunet.boxes(rgb), hog.boxes(rgb, upsample=1)
        assert len(found) >= len(expected), photo.name
        for box in expected:  # each of HOG's faces, boxed alike (the hand-over reshapes YuNet's box as HOG's)
            assert max(iou(box, other) for other in found) > 0.5, (photo.name, box, found)


def test_a_face_larger_than_yunet_sees_is_found_at_the_coarse_scale():
    rgb = rgb_of(DATA / "lfw" / "Tony_Blair" / "Tony_Blair_0001.jpg")
    close_up = np.asarray(Image.fromarray(rgb).resize((1000, 1000)))  # the face ~500 px
    boxes = YunetDetector().boxes(close_up)
    assert max(box.height for box in boxes) > 300


def test_every_hand_over_boxes_the_faces_as_hog_does():
    """The default (the landmarks' frame) and the alternatives the
    benchmark compares all give dlib's predictor a box close to HOG's."""
    hog = DlibDetector("hog")
    photos = sorted((DATA / "lfw").glob("*/*.jpg"))
    for hand_over in HAND_OVERS:
        yunet = YunetDetector(hand_over=hand_over)
        overlaps = []
        for photo in photos:
            rgb = rgb_of(photo)
            for box in hog.boxes(rgb, upsample=1):
                overlaps.append(max(iou(box, other) for other in yunet.boxes(rgb)))
        assert np.median(overlaps) > (0.65 if hand_over == "raw" else 0.78), (hand_over, overlaps)
    assert YunetDetector().hand_over == "frame"
