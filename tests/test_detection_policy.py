"""The "retry" upsample policy: upsample 0 first, the configured upsample
only where that found no face; and its place in the detection signature."""

from __future__ import annotations

import numpy as np
import pytest

from config.settings import DetectionSettings, load_settings
from indexer import model
from indexer.faces import detect_boxes
from indexer.indexing import detection_from_signature, detection_signature
from indexer.model import Box


@pytest.fixture
def detector(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A detector that finds a 100 px face at upsample 0 only in bright
    images, and a 30 px one at upsample 1 in every image; records the
    upsample of each call."""
    calls: list[int] = []

    def face_boxes(rgb, *, model="hog", upsample=1):
        calls.append(upsample)
        if upsample == 0:
            return [Box(0, 100, 100, 0)] if rgb.mean() > 128 else []
        return [Box(0, 100, 100, 0), Box(150, 190, 180, 160)] if rgb.mean() > 128 else [Box(150, 190, 180, 160)]

    monkeypatch.setattr(model, "face_boxes", face_boxes)
    return calls


def image(bright: bool) -> np.ndarray:
    return np.full((200, 200, 3), 200 if bright else 50, dtype=np.uint8)


def test_retry_stops_at_upsample_0_when_it_finds_a_face(detector):
    retry = DetectionSettings(upsample=1, upsample_policy="retry")
    assert detect_boxes(image(True), retry) == [Box(0, 100, 100, 0)]  # the small face is not looked for
    assert detector == [0]


def test_retry_searches_again_where_upsample_0_found_nothing(detector):
    retry = DetectionSettings(upsample=1, upsample_policy="retry")
    assert detect_boxes(image(False), retry) == [Box(150, 190, 180, 160)]
    assert detector == [0, 1]


def test_a_face_under_the_minimum_size_does_not_stop_the_retry(detector, monkeypatch):
    retry = DetectionSettings(upsample=1, upsample_policy="retry", min_face_size=120)
    assert detect_boxes(image(True), retry) == []
    assert detector == [0, 1]


def test_fixed_searches_once_at_the_configured_upsample(detector):
    assert len(detect_boxes(image(True), DetectionSettings(upsample=1))) == 2
    assert detector == [1]


def test_the_default_policy_keeps_the_signature_of_older_indexes():
    fixed = detection_signature(load_settings())
    assert "upsample_policy" not in fixed  # as written before the policy existed
    assert detection_from_signature(fixed).upsample_policy == "fixed"
    retry = detection_signature(load_settings(detection={"upsample_policy": "retry"}))
    assert retry != fixed and detection_from_signature(retry).upsample_policy == "retry"
