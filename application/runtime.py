"""The process a command runs in: the face model its use cases are given
(``Runtime``), what it says of itself (``--version``) and the file mode of
what it creates."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import version

from config.settings import Settings
from indexer.model import FaceModel, face_model, runtime_info
from indexer.store.file_modes import PROCESS_UMASK


@dataclass(frozen=True)
class Runtime:
    """What a command's use cases are given besides its settings: the face
    model. ``model`` None: the real one the settings describe
    (``indexer.model.face_model``); tests pass a fake
    (``CliRunner().invoke(main, args, obj=Runtime(model=fake))``)."""

    model: FaceModel | None = None

    def face_model(self, settings: Settings, *, threads: int = 1) -> FaceModel:
        """The model to find and encode faces with, ``threads`` intra-op
        threads for the real encoder (loads nothing)."""
        return self.model if self.model is not None else face_model(settings.encoding, threads=threads)


def keep_files_private() -> None:
    """Everything the process creates (SQLite's, Milvus Lite's and
    gunicorn's files too) readable by its owner only."""
    os.umask(PROCESS_UMASK)


def version_text(model: FaceModel) -> str:
    """The version, ``model``'s encoder, the dlib build and the model, in one line."""
    info = runtime_info(model)
    encoder = f"onnxruntime {info['onnxruntime_version']}" if info["encoder"] == "onnx" else "dlib"
    return (
        f"facesearch {version('facesearch')}, encoder {info['encoder']} ({encoder}), dlib {info['dlib_version']} "
        f"(BLAS {'on' if info['dlib_blas'] else 'off'}, CUDA {'on' if info['dlib_cuda'] else 'off'}; "
        f"detection{'' if info['encoder'] == 'onnx' else ' and encoding'}), model {info['model']}"
    )
