"""The one seam to the face model: dlib's HOG/CNN detectors and its ResNet
face descriptor, reached through face_recognition.

Nothing else in facesearch imports ``face_recognition`` or ``dlib``. The
functions here take RGB ``uint8`` arrays of shape (H, W, 3) and return plain
``Box`` tuples and ``float32`` arrays; the models load lazily, once per
process, behind a lock.
"""

from __future__ import annotations

import threading
import warnings
from types import ModuleType
from typing import NamedTuple

import numpy as np

MODEL_NAME = "dlib_face_recognition_resnet_model_v1"
EMBEDDING_DIM = 128

_lock = threading.Lock()
_face_recognition: ModuleType | None = None


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


def load() -> None:
    """Load the models now (workers call this before their first photo)."""
    _api()


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
    dlib's own threshold)."""
    if not boxes:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    encodings = _api().face_encodings(
        rgb, known_face_locations=[tuple(b) for b in boxes], num_jitters=jitters, model="small"
    )
    return np.ascontiguousarray(np.asarray(encodings, dtype=np.float32).reshape(len(boxes), EMBEDDING_DIM))


def runtime_info() -> dict[str, object]:
    """Which dlib this process runs: version and whether it uses BLAS/CUDA."""
    _api()
    info = dlib_info()
    return {
        "dlib_version": info["version"],
        "dlib_blas": info["blas"],
        "dlib_cuda": info["cuda"],
        "model": MODEL_NAME,
    }


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
        try:
            installed[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {
        "version": dlib.__version__,
        "distribution": "+".join(installed) or None,
        "distribution_version": next(iter(installed.values())) if len(installed) == 1 else None,
        "blas": bool(getattr(dlib, "DLIB_USE_BLAS", False)),
        "lapack": bool(getattr(dlib, "DLIB_USE_LAPACK", False)),
        "avx": bool(getattr(dlib, "USE_AVX_INSTRUCTIONS", False)),
        "cuda": bool(getattr(dlib, "DLIB_USE_CUDA", False)),
    }
