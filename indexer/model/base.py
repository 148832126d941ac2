"""What the rest of facesearch knows of a face model: the ``Box`` a detector
returns, the ``Detector`` and ``Encoder`` interfaces, and ``FaceModel``,
the pair of them that is passed in to whatever finds or encodes faces (the
indexer's workers, the query by photo, the sightings page). The real
implementations are in ``dlib_models`` and ``onnx_encoder``; tests pass
fakes (``tests/helpers.py``). Nothing here imports a model library."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple, Protocol

import numpy as np

MODEL_NAME = "dlib_face_recognition_resnet_model_v1"
EMBEDDING_DIM = 128
CHIP_SIZE, CHIP_PADDING = 150, 0.25  # dlib's face chip, as compute_face_descriptor cuts it
ENCODERS = ("onnx", "dlib")
DETECTORS = ("yunet", "hog", "cnn")


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


class Detector(Protocol):
    """Finds faces. ``boxes`` takes an RGB ``uint8`` array (H, W, 3) and
    returns the boxes of the faces it finds, clipped to the image;
    ``upsample`` is how many times the image is doubled first (smaller
    faces found, ~4x the cost each). ``load`` loads the weights now
    (otherwise at first use); both are safe from several threads."""

    name: str

    def boxes(self, rgb: np.ndarray, *, upsample: int) -> list[Box]: ...

    def load(self) -> None: ...


class Encoder(Protocol):
    """Turns faces into dlib's 128-d descriptors: ``embeddings`` takes an
    RGB ``uint8`` array and boxes in it, and returns a C-contiguous
    ``float32`` array (len(boxes), 128); compare them by Euclidean distance
    (0.6 = same person, by dlib's own threshold). ``jitters`` > 1 re-samples
    each face that many times (dlib's own, slower). ``name`` is what
    ``GET /api/v1/health`` reports."""

    name: str

    def embeddings(self, rgb: np.ndarray, boxes: list[Box], *, jitters: int = 1) -> np.ndarray: ...

    def chips(self, rgb: np.ndarray, boxes: list[Box]) -> np.ndarray:
        """The aligned ``CHIP_SIZE`` face chips the descriptors are computed
        from, uint8 (n, 150, 150, 3)."""
        ...

    def encode_chips(self, chips: np.ndarray) -> np.ndarray:
        """Descriptors (n, 128) float32 of chips as ``chips`` cuts them: the
        similarity maps encode altered chips (``application.compare``)."""
        ...

    def load(self) -> None: ...


class FaceModel:
    """A detector per name (``detection.model``: ``"yunet"``, ``"hog"``, ``"cnn"``) and
    the one encoder, passed in to what finds and encodes faces. Cheap to
    make and to pickle: each part loads its weights at first use (a worker
    process loads them at start, ``load``)."""

    def __init__(self, detectors: Mapping[str, Detector], encoder: Encoder) -> None:
        self.detectors = dict(detectors)
        self.encoder = encoder

    def detector(self, name: str) -> Detector:
        """The detector called ``name``; ``ValueError`` naming the known ones."""
        try:
            return self.detectors[name]
        except KeyError:
            raise ValueError(f"unknown detector {name!r}: one of {', '.join(self.detectors)}") from None

    def load(self, detectors: Iterable[str] = ()) -> None:
        """Load the encoder and the ``detectors`` named now rather than at
        their first use (a worker process, before its first photo)."""
        for name in detectors:
            self.detector(name).load()
        self.encoder.load()
