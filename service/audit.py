"""The audit log: who asked what, and when.

One JSON object per line in ``audit.jsonl`` in the data directory (not inside
an index generation: it outlives them), appended and never rewritten. Each
API request except ``GET /health`` and ``GET /openapi.json`` adds a line:

* ``time`` (UTC, ISO 8601, milliseconds), ``key`` (the key id, see
  ``service.access``; ``null`` when the service runs without keys, ``"invalid"``
  for a wrong key), ``address`` (the client's address as the WSGI server saw
  it), ``method``, ``path``, ``status``, ``duration_ms``;
* for searches: ``query`` (SHA-256 of each probe: the uploaded file's bytes,
  or an embedding's float32 bytes; the probe itself is never logged),
  ``params`` (the request's other parameters) and ``results`` (matches
  returned; for recall also ``total``);
* for erasure and other changes: what they changed (``params``, ``results``).

Each line is written with a single ``write`` on a file opened ``O_APPEND``,
so lines from several server processes never interleave. A line is not
fsynced: a power cut may lose the last lines, never corrupt earlier ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

FILE_NAME = "audit.jsonl"


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> AuditLog:
        return cls(Path(data_dir) / FILE_NAME)

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps({"time": _now(), **record}, separators=(",", ":"), default=str) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        """Every record, oldest first (for tests and tools)."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_embeddings(vectors: np.ndarray) -> list[str]:
    """One SHA-256 per embedding, over its float32 bytes."""
    x = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, vectors.shape[-1])
    return [hash_bytes(row.tobytes()) for row in x]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
