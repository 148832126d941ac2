"""dlib's parts of the model, reached through face_recognition: the HOG
and CNN detectors, the 5-point landmarks and face chips, and the ResNet
face descriptor run by dlib itself (``DlibEncoder``). face_recognition is
imported once per process, at first use."""

from __future__ import annotations

import contextlib
import threading
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from indexer.model.base import CHIP_PADDING, CHIP_SIZE, EMBEDDING_DIM, Box

_lock = threading.Lock()
_face_recognition: ModuleType | None = None
_predictor_5: object = None  # dlib's 5-point shape predictor, loaded alone (face_recognition loads every model)


def face_recognition_api() -> ModuleType:
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


class DlibDetector:
    """dlib's HOG (``"hog"``: ~170 ms at 640x480, upsample 1) or CNN
    (``"cnn"``: finds turned and covered faces, ~0.36 s at 250x250 on a CPU)
    face detector."""

    def __init__(self, name: str) -> None:
        self.name = name

    def boxes(self, rgb: np.ndarray, *, upsample: int) -> list[Box]:
        locations = face_recognition_api().face_locations(rgb, number_of_times_to_upsample=upsample, model=self.name)
        return [Box(int(top), int(right), int(bottom), int(left)) for (top, right, bottom, left) in locations]

    def load(self) -> None:
        face_recognition_api()


class DlibEncoder:
    """dlib's ResNet descriptor run by dlib itself (``encoding.encoder =
    "dlib"``), and the one that re-samples faces (``jitters`` > 1) whatever
    the encoder."""

    name = "dlib"

    def embeddings(self, rgb: np.ndarray, boxes: list[Box], *, jitters: int = 1) -> np.ndarray:
        if not boxes:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        encodings = face_recognition_api().face_encodings(
            rgb, known_face_locations=[tuple(b) for b in boxes], num_jitters=jitters, model="small"
        )
        return np.ascontiguousarray(np.asarray(encodings, dtype=np.float32).reshape(len(boxes), EMBEDDING_DIM))

    def chips(self, rgb: np.ndarray, boxes: list[Box]) -> np.ndarray:
        return face_chips(rgb, boxes)

    def encode_chips(self, chips: np.ndarray) -> np.ndarray:
        """Descriptors (n, 128) of aligned chips (n, 150, 150, 3), by dlib's own network."""
        if not len(chips):
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        network: Any = face_recognition_api().api.face_encoder
        out = network.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
        return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(len(chips), EMBEDDING_DIM))

    def load(self) -> None:
        face_recognition_api()


def models_package() -> ModuleType:
    """face_recognition_models, where dlib's weights are, imported without
    face_recognition (whose import loads every model: ~0.8 s) and without
    its ``pkg_resources`` deprecation warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pkg_resources.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        import face_recognition_models
    return face_recognition_models


def predictor_5_point() -> object:
    """dlib's 5-point shape predictor, loaded once (~10 ms), by itself."""
    global _predictor_5
    if _predictor_5 is None:
        with _lock:
            if _predictor_5 is None:
                import dlib

                _predictor_5 = dlib.shape_predictor(models_package().pose_predictor_five_point_model_location())
    return _predictor_5


def face_chips(rgb: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """The aligned 150x150 face chips of ``boxes`` (uint8, (n, 150, 150, 3)),
    cut by dlib from 5-point landmarks exactly as its
    ``compute_face_descriptor`` cuts them (the same predictor file as
    face_recognition's ``pose_predictor_5_point``)."""
    import dlib

    predictor: Any = predictor_5_point()
    shapes = dlib.full_object_detections()
    for b in boxes:
        shapes.append(predictor(rgb, dlib.rectangle(b.left, b.top, b.right, b.bottom)))
    return np.stack(dlib.get_face_chips(rgb, shapes, size=CHIP_SIZE, padding=CHIP_PADDING))


def weights_path() -> Path:
    """dlib's ResNet weights, as installed by face_recognition_models."""
    return Path(models_package().face_recognition_model_location())


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
