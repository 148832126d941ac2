"""The process a command runs in: what it says of itself (``--version``)
and the file mode of what it creates."""

from __future__ import annotations

import os
from importlib.metadata import version

from config.settings import Settings
from indexer import model
from indexer.store.file_modes import PROCESS_UMASK


def keep_files_private() -> None:
    """Everything the process creates (SQLite's, Milvus Lite's and
    gunicorn's files too) readable by its owner only."""
    os.umask(PROCESS_UMASK)


def version_text(settings: Settings) -> str:
    """The version, the encoder, the dlib build and the model, in one line."""
    model.configure_from(settings.encoding)
    info = model.runtime_info()
    encoder = f"onnxruntime {info['onnxruntime_version']}" if info["encoder"] == "onnx" else "dlib"
    return (
        f"facesearch {version('facesearch')}, encoder {info['encoder']} ({encoder}), dlib {info['dlib_version']} "
        f"(BLAS {'on' if info['dlib_blas'] else 'off'}, CUDA {'on' if info['dlib_cuda'] else 'off'}; "
        f"detection{'' if info['encoder'] == 'onnx' else ' and encoding'}), model {info['model']}"
    )
