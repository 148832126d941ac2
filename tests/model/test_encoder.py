"""The ONNX encoder is dlib's network: the same embeddings (max abs 1e-4) on
every face of tests/data, an index made with dlib searched with onnx gives
the same results, a damaged cached model is converted again (never run),
a weights file of another shape is refused clearly, and random jitter
stays dlib's."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest

from config.settings import load_settings
from indexer import dlib_onnx, model, model_cache
from indexer.faces import detect_boxes
from indexer.images import decode_rgb
from tests.helpers import DATA, published_store

pytestmark = pytest.mark.model


ONNX, DLIB = model.OnnxEncoder(), model.DlibEncoder()


def faces_of_test_data() -> list[tuple[str, np.ndarray, list]]:
    detection = load_settings().detection
    found = model.face_model(load_settings().encoding)
    out = []
    for path in sorted(p for p in DATA.rglob("*") if p.suffix.lower() in (".jpg", ".png")):
        rgb = decode_rgb(path.read_bytes())
        boxes = detect_boxes(found, rgb, detection)
        if boxes:
            out.append((path.name, rgb, boxes))
    return out


def test_onnx_and_dlib_give_the_same_embeddings():
    faces = faces_of_test_data()
    assert sum(len(b) for _, _, b in faces) >= 20
    worst = 0.0
    for _name, rgb, boxes in faces:
        chips = model.face_chips(rgb, boxes)
        assert chips.shape == (len(boxes), 150, 150, 3) and chips.dtype == np.uint8
        by_dlib = DLIB.embeddings(rgb, boxes)
        by_onnx = ONNX.embeddings(rgb, boxes)
        one_by_one = np.vstack([ONNX.encode_chips(chip[None]) for chip in chips])
        assert by_onnx.dtype == np.float32 and by_onnx.flags.c_contiguous
        worst = max(worst, float(np.abs(by_onnx - by_dlib).max()), float(np.abs(one_by_one - by_dlib).max()))
    assert worst <= 1e-4, worst


def test_an_index_made_with_dlib_searched_with_onnx(tmp_path):
    from indexer.indexing import index_paths

    data_dir = tmp_path / "index"
    settings = load_settings(data_dir=data_dir, indexer={"workers": 1}, encoding={"encoder": "dlib"})
    by_dlib = model.face_model(settings.encoding)
    assert by_dlib.encoder.name == "dlib"
    assert index_paths([DATA / "lfw"], settings, progress=False, model=by_dlib).errors == []
    store = published_store(data_dir)
    _, stored = next(store.db.iter_embeddings())
    for name, rgb, boxes in faces_of_test_data():
        d_dlib, i_dlib = store.search(DLIB.embeddings(rgb, boxes), 10)
        d_onnx, i_onnx = store.search(ONNX.embeddings(rgb, boxes), 10)
        assert (i_onnx == i_dlib).all(), name
        assert np.abs(d_onnx - d_dlib).max() < 1e-5, name
    store.close()


def test_a_damaged_cached_model_is_converted_again(tmp_path, caplog):
    weights = model.weights_path()
    first, path = model_cache.onnx_model(weights, tmp_path)
    assert path is not None and path.parent == tmp_path and path.read_bytes() == first
    damaged = bytearray(first)
    damaged[len(damaged) // 2] ^= 0xFF  # one weight's bits, deep in the file
    path.write_bytes(bytes(damaged))
    with caplog.at_level(logging.WARNING, logger="indexer.model_cache"):
        again, same_path = model_cache.onnx_model(weights, tmp_path)
    assert "does not match its hash" in caplog.text
    assert same_path == path and again == first and path.read_bytes() == first
    # And the encoder over that cache folder gives dlib's vectors.
    name, rgb, boxes = faces_of_test_data()[0]
    path.write_bytes(bytes(damaged))
    by_onnx = model.OnnxEncoder(model_cache=tmp_path).embeddings(rgb, boxes)
    assert np.abs(by_onnx - DLIB.embeddings(rgb, boxes)).max() <= 1e-4


def test_an_unwritable_cache_converts_in_memory(tmp_path, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="indexer.model_cache"):
        data, path = model_cache.onnx_model(model.weights_path(), blocked / "models")
    assert path is None and "converting it at each start" in caplog.text
    converted = dlib_onnx.convert(model.weights_path().read_bytes())
    assert hashlib.sha256(data).digest() == hashlib.sha256(converted).digest()


def test_other_weights_are_refused_with_where(tmp_path):
    weights = model.weights_path().read_bytes()
    with pytest.raises(dlib_onnx.DlibFormatError, match=r"the file ends early.*\(at byte \d+\)"):
        dlib_onnx.convert(weights[: len(weights) // 2])
    with pytest.raises(dlib_onnx.DlibFormatError, match="bytes left after the network"):
        dlib_onnx.convert(weights + b"\x01\x00")
    with pytest.raises(dlib_onnx.DlibFormatError, match="loss layer: version"):
        dlib_onnx.convert(b"\x01\x07" + weights[2:])


class NoOnnx(model.OnnxEncoder):
    def encode_chips(self, chips):
        raise AssertionError("jitters > 1 must not run the ONNX model")


def test_jitter_is_dlibs_whatever_the_encoder():
    name, rgb, boxes = faces_of_test_data()[0]
    encoder = NoOnnx()
    jittered = encoder.embeddings(rgb, boxes, jitters=2)
    assert jittered.shape == (len(boxes), 128)
    with pytest.raises(AssertionError, match="must not run"):
        encoder.embeddings(rgb, boxes)


def test_the_encoder_is_named(app):
    health = app.test_client().get("/api/v1/health").get_json()
    assert health["encoder"] == "onnx"
    from click.testing import CliRunner

    from facesearch.cli import main

    out = CliRunner().invoke(main, ["--version"], env={"FACESEARCH_ENCODING__ENCODER": "dlib"}).output
    assert "encoder dlib" in out and "detection and encoding" in out
    assert "encoder onnx (onnxruntime 1." in CliRunner().invoke(main, ["--version"]).output


def test_more_chips_than_a_batch():
    name, rgb, boxes = faces_of_test_data()[0]
    chips = model.face_chips(rgb, boxes[:1])
    many = np.repeat(chips, model.BATCH_FACES + 5, axis=0)
    out = ONNX.encode_chips(many)
    assert out.shape == (len(many), 128)
    assert np.abs(out - ONNX.encode_chips(chips)).max() <= 1e-6


LFW = Path(__file__).resolve().parents[3] / "shared" / "data" / "lfw-devtrain"
# LFW photos where HOG at upsample 1 finds no face: one HOG at upsample 2
# finds, one only the CNN finds (benchmark 10, docs/benchmarks.md).
HARD = {"Yasar_Yakis/Yasar_Yakis_0002.jpg": ("hog", 2), "Tom_Daschle/Tom_Daschle_0021.jpg": ("cnn", 0)}


@pytest.mark.skipif(not LFW.is_dir(), reason=f"LFW DevTrain is not at {LFW} (../shared/data)")
class Recorded(model.DlibDetector):
    """dlib's detector, recording each (detector, upsample) it is run at."""

    def __init__(self, name: str, calls: list) -> None:
        super().__init__(name)
        self.calls = calls

    def boxes(self, rgb, *, upsample):
        self.calls.append((self.name, upsample))
        return super().boxes(rgb, upsample=upsample)


def test_the_second_pass_finds_the_faces_hog_misses(real_model):
    detection = load_settings(detection={"model": "hog"}).detection
    for name, (detector, upsample) in HARD.items():
        rgb = decode_rgb((LFW / name).read_bytes())
        assert detect_boxes(real_model, rgb, detection, second_pass=False) == [], name
        calls: list = []
        recorded = model.FaceModel({n: Recorded(n, calls) for n in model.DETECTORS}, real_model.encoder)
        boxes = detect_boxes(recorded, rgb, detection)
        assert len(boxes) == 1 and calls[-1] == (detector, upsample), (name, calls)
        box = boxes[0]
        assert 60 <= box.height <= 200 and 40 <= (box.left + box.right) / 2 <= 210  # LFW's centred face
        assert real_model.encoder.embeddings(rgb, boxes).shape == (1, 128)


@pytest.mark.skipif(not LFW.is_dir(), reason=f"LFW DevTrain is not at {LFW} (../shared/data)")
def test_yunet_finds_the_faces_hog_misses_without_a_second_pass(real_model):
    detection = load_settings().detection
    assert detection.model == "yunet"
    for name in HARD:
        rgb = decode_rgb((LFW / name).read_bytes())
        boxes = detect_boxes(real_model, rgb, detection, second_pass=False)
        assert any(60 <= b.height <= 200 and 40 <= (b.left + b.right) / 2 <= 210 for b in boxes), (name, boxes)
