"""The one seam to the face model: dlib's HOG/CNN detectors and landmarks,
reached through face_recognition, and its ResNet face descriptor, run by
onnxruntime (the network converted from dlib's weights: ``dlib_onnx``) or
by dlib itself (``configure``).

Nothing else in facesearch imports ``face_recognition``, ``dlib`` or
``onnxruntime``. The functions here take RGB ``uint8`` arrays of shape
(H, W, 3) and return plain ``Box`` tuples and ``float32`` arrays; the models
load lazily, once per process, behind a lock.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from config.settings import EncodingSettings

MODEL_NAME = "dlib_face_recognition_resnet_model_v1"
EMBEDDING_DIM = 128
CHIP_SIZE, CHIP_PADDING = 150, 0.25  # dlib's face chip, as compute_face_descriptor cuts it
ENCODERS = ("onnx", "dlib")

_lock = threading.Lock()
_face_recognition: ModuleType | None = None
_session_lock = threading.Lock()
_session: Any = None  # the onnxruntime session, made at first use
_encoder: dict[str, Any] = {"kind": "onnx", "threads": 1, "cache": None}
BATCH_FACES = 32  # chips a network run takes at most: a crowd photo's 300 faces stay within ~0.5 GB


class Box(NamedTuple):
    """A face box in pixel coordinates, face_recognition's (top, right,
    bottom, left) order; ``bottom``/``right`` are exclusive."""

    top: int
    right: int
    bottom: int
    left: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def area(self) -> int:
        return max(self.height, 0) * max(self.width, 0)


def _api() -> ModuleType:
    """Import face_recognition once. face_recognition_models 0.3.0 finds its
    weights through ``pkg_resources``, whose import warns that it is
    deprecated; the warning is expected (setuptools is pinned below 81, where
    it still exists) and would otherwise end up in every user's terminal.
    The import also turns on Pillow's LOAD_TRUNCATED_IMAGES; it is put back."""
    global _face_recognition
    if _face_recognition is None:
        with _lock:
            if _face_recognition is None:
                from PIL import ImageFile

                truncated = ImageFile.LOAD_TRUNCATED_IMAGES
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*pkg_resources.*")
                    warnings.filterwarnings("ignore", category=DeprecationWarning)
                    import face_recognition
                # face_recognition's import sets this process-wide; a truncated
                # photo must stay an error, not a half-grey image.
                ImageFile.LOAD_TRUNCATED_IMAGES = truncated

                _face_recognition = face_recognition
    return _face_recognition


def configure(encoder: str = "onnx", *, threads: int = 1, model_cache: Path | None = None) -> None:
    """Which program runs the face descriptor: ``"onnx"`` (onnxruntime, with
    ``threads`` intra-op threads, the converted model kept in
    ``model_cache``) or ``"dlib"``. Both give the same embeddings within
    1e-6. A change takes effect at the next encoding."""
    global _session
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}: one of {', '.join(ENCODERS)}")
    wanted = {"kind": encoder, "threads": int(threads), "cache": model_cache}
    with _session_lock:
        if any(_encoder[k] != v for k, v in wanted.items()):
            _encoder.update(wanted)
            _session = None


def configure_from(encoding: EncodingSettings, *, threads: int = 1) -> None:
    """``configure`` from ``config.settings.EncodingSettings``."""
    configure(encoding.encoder, threads=threads,
              model_cache=Path(encoding.model_cache).expanduser() if encoding.model_cache else None)


def encoder() -> str:
    """The configured encoder, ``"onnx"`` or ``"dlib"`` (loads nothing)."""
    return _encoder["kind"]


def load() -> None:
    """Load the models now (workers call this before their first photo)."""
    _api()
    if _encoder["kind"] == "onnx":
        _onnx_session()


def weights_path() -> Path:
    """dlib's ResNet weights, as installed by face_recognition_models."""
    _api()
    import face_recognition_models

    return Path(face_recognition_models.face_recognition_model_location())


def _onnx_session() -> Any:
    """The onnxruntime session over the converted model, made once: one
    sequential executor with the configured threads (processes give the
    parallelism, as for BLAS)."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                import onnxruntime

                from indexer import model_cache

                model, _ = model_cache.onnx_model(weights_path(), _encoder["cache"])
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = _encoder["threads"]
                options.inter_op_num_threads = 1
                options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
                _session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return _session


def face_boxes(rgb: np.ndarray, *, model: str = "hog", upsample: int = 1) -> list[Box]:
    """Boxes of the faces the detector finds in ``rgb``, clipped to the image.

    ``model`` is ``"hog"`` or ``"cnn"``; ``upsample`` is how many times the
    image is doubled before detection (finds smaller faces, ~4x the cost each).
    """
    locations = _api().face_locations(rgb, number_of_times_to_upsample=upsample, model=model)
    return [Box(int(top), int(right), int(bottom), int(left)) for (top, right, bottom, left) in locations]


def face_embeddings(rgb: np.ndarray, boxes: list[Box], *, jitters: int = 1) -> np.ndarray:
    """The 128-d descriptors of the faces at ``boxes`` in ``rgb``: a C-contiguous
    ``float32`` array of shape (len(boxes), 128). Landmarks use the 5-point
    predictor the ResNet model was trained with. Embeddings are not unit
    length; compare them with Euclidean distance (0.6 = same person, by
    dlib's own threshold). The chips of all the boxes are encoded in one
    batch; ``jitters`` > 1 (random re-sampling) is dlib's own, whatever the
    encoder."""
    if not boxes:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    if _encoder["kind"] == "dlib" or jitters > 1:
        encodings = _api().face_encodings(
            rgb, known_face_locations=[tuple(b) for b in boxes], num_jitters=jitters, model="small"
        )
        return np.ascontiguousarray(np.asarray(encodings, dtype=np.float32).reshape(len(boxes), EMBEDDING_DIM))
    return encode_chips(face_chips(rgb, boxes))


def face_chips(rgb: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """The aligned 150x150 face chips of ``boxes`` (uint8, (n, 150, 150, 3)),
    cut by dlib from 5-point landmarks exactly as its
    ``compute_face_descriptor`` cuts them."""
    import dlib

    predictor = _api().api.pose_predictor_5_point
    shapes = dlib.full_object_detections()
    for b in boxes:
        shapes.append(predictor(rgb, dlib.rectangle(b.left, b.top, b.right, b.bottom)))
    return np.stack(dlib.get_face_chips(rgb, shapes, size=CHIP_SIZE, padding=CHIP_PADDING))


def encode_chips(chips: np.ndarray) -> np.ndarray:
    """Descriptors (n, 128) float32 of face chips (n, 150, 150, 3) uint8, by
    the converted network in onnxruntime, ``BATCH_FACES`` chips a run."""
    session = _onnx_session()
    out = [session.run(["descriptors"], {"chips": np.ascontiguousarray(
               chips[i : i + BATCH_FACES].transpose(0, 3, 1, 2), dtype=np.float32)})[0]
           for i in range(0, len(chips), BATCH_FACES)]
    return np.ascontiguousarray(np.vstack(out), dtype=np.float32)


def runtime_info() -> dict[str, object]:
    """What this process encodes with: the encoder (``onnx`` or ``dlib``),
    onnxruntime's version, and the dlib build (version, BLAS, CUDA), which
    detects and cuts the chips either way."""
    _api()
    info = dlib_info()
    return {
        "encoder": _encoder["kind"],
        "onnxruntime_version": _onnxruntime_version(),
        "dlib_version": info["version"],
        "dlib_blas": info["blas"],
        "dlib_cuda": info["cuda"],
        "model": MODEL_NAME,
    }


def _onnxruntime_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        return None


def dlib_info() -> dict[str, object]:
    """The dlib module this process runs and how it was built: ``version``
    (dlib's own), ``blas``, ``lapack``, ``avx`` (dlib's AVX code paths;
    the fast build also has AVX2/FMA), ``cuda`` (booleans), and
    ``distribution``: ``"dlib-bin"`` (the prebuilt wheel, no BLAS),
    ``"dlib"`` (built from source, e.g. by ``make install FAST=1``), or
    ``"dlib-bin+dlib"`` when both are installed over each other (the files
    are those of whichever came last: ``make install FAST=1`` or ``FAST=0``
    repairs it); ``distribution_version`` is its version (``None`` when
    unknown, and for the mixed case). Imports ``dlib`` but loads no model."""
    from importlib import metadata

    import dlib

    installed = {}
    for name in ("dlib-bin", "dlib"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            installed[name] = metadata.version(name)
    return {
        "version": dlib.__version__,
        "distribution": "+".join(installed) or None,
        "distribution_version": next(iter(installed.values())) if len(installed) == 1 else None,
        "blas": bool(getattr(dlib, "DLIB_USE_BLAS", False)),
        "lapack": bool(getattr(dlib, "DLIB_USE_LAPACK", False)),
        "avx": bool(getattr(dlib, "USE_AVX_INSTRUCTIONS", False)),
        "cuda": bool(getattr(dlib, "DLIB_USE_CUDA", False)),
    }
