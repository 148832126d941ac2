"""The "retry" upsample policy: upsample 0 first, the configured upsample
only where that found no face; the second pass (HOG at upsample + 1, then
the CNN detector, on small photos where HOG found nothing, never on video
frames); and their place in the detection signature."""

from __future__ import annotations

import numpy as np
import pytest

from config.settings import DetectionSettings, load_settings
from indexer.faces import detect_boxes
from indexer.indexing import detection_from_signature, detection_signature
from indexer.model import Box, FaceModel
from tests.helpers import scripted_model


def bright_or_small(name: str, rgb: np.ndarray, upsample: int) -> list[Box]:
    """A 100 px face at upsample 0 only in bright images, and a 30 px one at
    upsample 1 in every image."""
    if upsample == 0:
        return [Box(0, 100, 100, 0)] if rgb.mean() > 128 else []
    return [Box(0, 100, 100, 0), Box(150, 190, 180, 160)] if rgb.mean() > 128 else [Box(150, 190, 180, 160)]


def image(bright: bool) -> np.ndarray:
    return np.full((200, 200, 3), 200 if bright else 50, dtype=np.uint8)


def test_retry_stops_at_upsample_0_when_it_finds_a_face():
    found, calls = scripted_model(bright_or_small)
    retry = DetectionSettings(model="hog", upsample=1, upsample_policy="retry")
    assert detect_boxes(found, image(True), retry) == [Box(0, 100, 100, 0)]  # the small face is not looked for
    assert calls == [("hog", 0)]


def test_retry_searches_again_where_upsample_0_found_nothing():
    found, calls = scripted_model(bright_or_small)
    retry = DetectionSettings(model="hog", upsample=1, upsample_policy="retry")
    assert detect_boxes(found, image(False), retry) == [Box(150, 190, 180, 160)]
    assert calls == [("hog", 0), ("hog", 1)]


def test_a_face_under_the_minimum_size_does_not_stop_the_retry():
    found, calls = scripted_model(bright_or_small)
    retry = DetectionSettings(model="hog", upsample=1, upsample_policy="retry", min_face_size=120, second_pass=False)
    assert detect_boxes(found, image(True), retry) == []
    assert calls == [("hog", 0), ("hog", 1)]


def test_fixed_searches_once_at_the_configured_upsample():
    found, calls = scripted_model(bright_or_small)
    assert len(detect_boxes(found, image(True), DetectionSettings(model="hog", upsample=1))) == 2
    assert calls == [("hog", 1)]


def test_the_default_policy_keeps_the_signature_of_older_indexes():
    fixed = detection_signature(load_settings())
    assert "upsample_policy" not in fixed  # as written before the policy existed
    assert detection_from_signature(fixed).upsample_policy == "fixed"
    retry = detection_signature(load_settings(detection={"upsample_policy": "retry"}))
    assert retry != fixed and detection_from_signature(retry).upsample_policy == "retry"


def hog_needs_light(name: str, rgb: np.ndarray, upsample: int) -> list[Box]:
    """HOG finds nothing below upsample 2 in dark images and nothing at all
    in very dark ones, where only the CNN finds a face."""
    if name == "cnn":
        return [Box(10, 90, 90, 10)]
    if rgb.mean() < 20 or (rgb.mean() < 128 and upsample < 2):
        return []
    return [Box(0, 100, 100, 0)]


@pytest.fixture
def picky() -> tuple[FaceModel, list[tuple[str, int]]]:
    """The model of ``hog_needs_light`` and the (detector, upsample) of each call."""
    return scripted_model(hog_needs_light)


def dark(level: int, side: int = 200) -> np.ndarray:
    return np.full((side, side, 3), level, dtype=np.uint8)


def test_the_second_pass_upsamples_once_more_then_asks_the_cnn(picky):
    found, calls = picky
    detection = DetectionSettings(model="hog", upsample=1)
    assert detect_boxes(found, dark(50), detection) == [Box(0, 100, 100, 0)]
    assert calls == [("hog", 1), ("hog", 2)]
    calls.clear()
    assert detect_boxes(found, dark(10), detection) == [Box(10, 90, 90, 10)]
    assert calls == [("hog", 1), ("hog", 2), ("cnn", 0)]


def test_no_second_pass_where_a_face_was_found_for_large_photos_or_video(picky):
    found, calls = picky
    detection = DetectionSettings(model="hog", upsample=1)
    assert detect_boxes(found, dark(200), detection) and calls == [("hog", 1)]
    calls.clear()
    big = DetectionSettings(model="hog", upsample=1, second_pass_max_pixels=200 * 200 - 1)
    assert detect_boxes(found, dark(10), big) == [] and calls == [("hog", 1)]
    calls.clear()
    assert detect_boxes(found, dark(10), detection, second_pass=False) == [] and calls == [("hog", 1)]
    calls.clear()
    no_second = DetectionSettings(model="hog", upsample=1, second_pass=False)
    assert detect_boxes(found, dark(10), no_second) == [] and calls == [("hog", 1)]


def test_the_second_pass_is_not_part_of_the_signature():
    plain = detection_signature(load_settings())
    assert detection_signature(load_settings(detection={"second_pass": False})) == plain
    assert detection_signature(load_settings(detection={"second_pass_max_pixels": 10})) == plain
    assert "second_pass" not in plain


def test_no_second_pass_after_yunet(picky):
    """YuNet finds a face in every LFW DevTrain photo by itself: a second
    pass would only cost time where there is none."""
    found, calls = picky
    assert detect_boxes(found, dark(10), DetectionSettings(model="yunet", upsample=1)) == []
    assert calls == [("yunet", 1)]
