"""The ONNX form of dlib's face ResNet, converted once and kept on disk.

The file is named after the source weights' SHA-256 and the converter's
version, and a ``.sha256`` file beside it holds the hash of the ONNX bytes:
a cached model whose bytes do not match (a torn write, a disk error, an edit)
is converted again, never run. Writes are atomic (``atomic_write_bytes``),
so concurrent workers converting at once each leave a whole file. Where
the folder cannot be written, the model is converted in memory at each
start (~0.9 s) and a warning says so."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from indexer import dlib_onnx
from indexer.store.atomic import atomic_write_bytes

log = logging.getLogger(__name__)


def default_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "facesearch" / "models"


def cached_path(weights: bytes, folder: Path) -> Path:
    source = hashlib.sha256(weights).hexdigest()[:16]
    return folder / f"dlib_face_recognition_resnet_model_v1.{source}.c{dlib_onnx.CONVERTER_VERSION}.onnx"


def onnx_model(weights_path: Path, folder: Path | None = None) -> tuple[bytes, Path | None]:
    """The ONNX model's bytes for the dlib weights at ``weights_path``, and
    the cached file they came from (None when it could not be written)."""
    weights = Path(weights_path).read_bytes()
    path = cached_path(weights, folder or default_folder())
    digest_file = path.with_name(path.name + ".sha256")
    try:
        model = path.read_bytes()
        expected = digest_file.read_text().strip()
    except OSError:
        model, expected = None, None
    if model is not None and hashlib.sha256(model).hexdigest() == expected:
        return model, path
    if model is not None:
        log.warning("the cached face model %s does not match its hash: converting it again", path)
    model = dlib_onnx.convert(weights)
    try:
        atomic_write_bytes(path, model)
        atomic_write_bytes(digest_file, hashlib.sha256(model).hexdigest().encode() + b"\n")
    except OSError as exc:
        log.warning("cannot keep the converted face model in %s (%s): converting it at each start", path.parent, exc)
        return model, None
    return model, path

