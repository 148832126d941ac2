"""The one seam to the face model: the YuNet detector (``yunet``, run by
onnxruntime), dlib's HOG/CNN detectors and landmarks, reached through
face_recognition, and its ResNet face descriptor, run by
onnxruntime (the network converted from dlib's weights: ``dlib_onnx``) or
by dlib itself.

Nothing else in facesearch imports ``face_recognition``, ``dlib`` or
``onnxruntime``. What finds or encodes faces is given a ``FaceModel``
(``face_model`` makes the real one from the settings); its parts take RGB
``uint8`` arrays of shape (H, W, 3) and return plain ``Box`` tuples and
``float32`` arrays, and load lazily, once, behind a lock.
"""

from __future__ import annotations

from pathlib import Path

from config.settings import EncodingSettings
from indexer.model.base import (
    CHIP_PADDING,
    CHIP_SIZE,
    DETECTORS,
    EMBEDDING_DIM,
    ENCODERS,
    MODEL_NAME,
    Box,
    Detector,
    Encoder,
    FaceModel,
)
from indexer.model.dlib_models import DlibDetector, DlibEncoder, dlib_info, face_chips, weights_path
from indexer.model.onnx_encoder import BATCH_FACES, OnnxEncoder, onnxruntime_version
from indexer.model.yunet import YunetDetector

__all__ = [
    "BATCH_FACES", "CHIP_PADDING", "CHIP_SIZE", "DETECTORS", "EMBEDDING_DIM", "ENCODERS", "MODEL_NAME", "Box",
    "Detector", "DlibDetector", "DlibEncoder", "Encoder", "FaceModel", "OnnxEncoder", "YunetDetector", "dlib_info",
    "face_chips", "face_model", "runtime_info", "weights_path",
]


def face_model(encoding: EncodingSettings, *, threads: int = 1) -> FaceModel:
    """The real model the settings describe: YuNet and dlib's detectors and the
    ``encoding.encoder`` (``"onnx"`` with ``threads`` intra-op threads and
    the converted network kept in ``encoding.model_cache``, or ``"dlib"``;
    both give the same embeddings within 1e-6). Loads nothing."""
    if encoding.encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoding.encoder!r}: one of {', '.join(ENCODERS)}")
    encoder: Encoder = (
        DlibEncoder() if encoding.encoder == "dlib" else
        OnnxEncoder(threads=threads,
                    model_cache=Path(encoding.model_cache).expanduser() if encoding.model_cache else None)
    )
    return FaceModel({"yunet": YunetDetector(threads=threads), "hog": DlibDetector("hog"), "cnn": DlibDetector("cnn")},
                     encoder)


def runtime_info(model: FaceModel) -> dict[str, object]:
    """What ``model`` encodes with: the encoder (``onnx`` or ``dlib``),
    onnxruntime's version, and the dlib build (version, BLAS, CUDA), which
    detects and cuts the chips either way."""
    info = dlib_info()
    return {
        "encoder": model.encoder.name,
        "onnxruntime_version": onnxruntime_version(),
        "dlib_version": info["version"],
        "dlib_blas": info["blas"],
        "dlib_cuda": info["cuda"],
        "model": MODEL_NAME,
    }
