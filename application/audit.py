"""The audit log: who asked what, and when.

One JSON object per line in ``audit.jsonl`` in the data directory (not inside
an index generation: it outlives them), appended and never rewritten. Each
API request except ``GET /health`` and ``GET /openapi.json``, and each page
request, adds a line:

* ``time`` (UTC, ISO 8601, milliseconds), ``key`` (the key id, see
  ``application.access``; ``null`` when the service runs without keys, ``"invalid"``
  for a wrong key), ``address`` (the client's address, ``application.client``),
  ``method``, ``path``, ``status``, ``duration_ms``;
* for searches: ``query`` (SHA-256 of each probe: the uploaded file's bytes,
  or an embedding's float32 bytes; the probe itself is never logged),
  ``params`` (the request's other parameters) and ``results`` (matches
  returned; for recall also ``total``);
* for erasure and other changes: what they changed (``params``, ``face_ids``,
  ``results``).

**Bounds, enforced here whatever the caller passes** (``bounded``): a string
longer than ``MAX_VALUE_CHARS`` and any bytes are kept as their length and
SHA-256; a list holding more than ``MAX_FLOATS`` floats (an embedding, raw or
parsed) as its length and SHA-256; a dict keeps its first ``MAX_KEYS`` keys,
each at most ``MAX_KEY_CHARS``. So no line holds an embedding, photo bytes or
a base64 blob, only digests. A line is at most ``MAX_LINE_BYTES``: a long
list (the face ids of a large erasure) continues on lines of its own that
share the main line's ``request`` id (``{"request", "field", "part", "of",
"values"}``); a dict still too large is kept as its digest.

**Rotation.** When ``audit.jsonl`` would pass ``max_bytes`` it is renamed
``audit.jsonl.1`` (``.1`` to ``.2`` and so on; ``files`` files are kept in
all, the oldest dropped), under an ``flock`` on ``audit.lock`` so that the
server's workers rotate once between them. Every file is 0600.

**Fail closed.** ``check()`` says before a request runs whether a line can
be written (the file opens for appending and at least ``RESERVE_BYTES`` are
free on its disk); the service refuses requests with 507 when it cannot
(``service.api``), so nothing is answered unaudited.

Each line is written with a single ``write`` on a file opened ``O_APPEND``,
so lines from several server processes never interleave. A line is not
fsynced: a power cut may lose the last lines, never corrupt earlier ones.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

FILE_NAME = "audit.jsonl"
LOCK_NAME = "audit.lock"
MAX_LINE_BYTES = 8192
MAX_VALUE_CHARS = 256
MAX_KEY_CHARS = 64
MAX_KEYS = 32
MAX_FLOATS = 8
# Free bytes the disk must keep for the log before a request is answered:
# room for more than a hundred maximal lines, so that a request let through
# can write its own.
RESERVE_BYTES = 1024 * 1024
MIB = 1024 * 1024


class AuditUnavailable(Exception):
    """No audit line can be written now; the message says what to free."""


class AuditLog:
    def __init__(self, path: Path, *, max_bytes: int = 50 * MIB, files: int = 10) -> None:
        if files < 2:
            raise ValueError("the audit log keeps at least 2 files (the current one and one rotated)")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.files = files

    @classmethod
    def in_data_dir(cls, data_dir: Path, *, max_mb: float = 50, files: int = 10) -> AuditLog:
        return cls(Path(data_dir) / FILE_NAME, max_bytes=int(max_mb * MIB), files=files)

    @classmethod
    def of(cls, data_dir: Path, service_settings: Any) -> AuditLog:
        """The log of ``data_dir`` with the service settings' size and count."""
        return cls.in_data_dir(data_dir, max_mb=service_settings.audit_max_mb, files=service_settings.audit_files)

    # -- writing -------------------------------------------------------------

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` (bounded, see the module), with its ``time``.
        Raises ``OSError`` when the line cannot be written whole."""
        data = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines_of(record)).encode()
        fd = self._open()
        try:
            if os.fstat(fd).st_size + len(data) > self.max_bytes:
                os.close(fd)
                fd = -1
                self._rotate(len(data))
                fd = self._open()
            written = os.write(fd, data)
            if written != len(data):  # a full disk may take part of it
                raise OSError(errno.ENOSPC, f"only {written} of {len(data)} bytes of an audit line were written")
        finally:
            if fd >= 0:
                os.close(fd)

    def check(self) -> None:
        """Raise ``AuditUnavailable`` when a line could not be written now."""
        try:
            fd = self._open()
            os.close(fd)
            stats = os.statvfs(self.path.parent)
        except OSError as exc:
            raise AuditUnavailable(self.advice(f"{exc.strerror or exc}")) from None
        free = stats.f_bavail * stats.f_frsize
        if free < RESERVE_BYTES:
            raise AuditUnavailable(self.advice(
                f"{free / 1024:,.0f} KiB free on its disk, {RESERVE_BYTES // 1024:,} KiB needed"))

    def advice(self, reason: str) -> str:
        return (f"the audit log {self.path} cannot be written ({reason}), and facesearch answers no request it "
                f"cannot audit: free space on the disk holding {self.path.parent} (rotated {FILE_NAME}.N files "
                "can be moved elsewhere) or fix its permissions, then retry")

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def _rotate(self, incoming: int) -> None:
        """Shift the files by one, unless another process just did."""
        lock = os.open(self.path.with_name(LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if self.path.stat().st_size + incoming <= self.max_bytes:
                    return
            except FileNotFoundError:
                return
            for number in range(self.files - 2, 0, -1):
                older = self._rotated(number)
                if older.exists():
                    os.replace(older, self._rotated(number + 1))
            os.replace(self.path, self._rotated(1))
        finally:
            os.close(lock)

    def _rotated(self, number: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{number}")

    # -- reading -------------------------------------------------------------

    def read(self) -> list[dict[str, Any]]:
        """Every record still kept, oldest first (for tests and tools)."""
        records = []
        for path in [self._rotated(n) for n in range(self.files - 1, 0, -1)] + [self.path]:
            if path.exists():
                with path.open(encoding="utf-8") as f:
                    records += [json.loads(line) for line in f if line.strip()]
        return records


# -- bounding ------------------------------------------------------------------


def lines_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """``record`` bounded and stamped, as one line of at most
    ``MAX_LINE_BYTES``, followed by the continuation lines of its long lists."""
    main: dict[str, Any] = {"time": _now(), **bounded(record)}
    if _size(main) <= MAX_LINE_BYTES:
        return [main]
    request = main.setdefault("request", secrets.token_hex(8))
    extra: list[dict[str, Any]] = []
    lists = sorted((k for k, v in main.items() if isinstance(v, list)), key=lambda k: -_size(main[k]))
    for name in lists:
        if _size(main) <= MAX_LINE_BYTES:
            break
        chunks = _chunks(main[name])
        main[name] = {"count": len(main[name]), "parts": len(chunks)}
        extra += [{"time": main["time"], "request": request, "field": name, "part": i, "of": len(chunks),
                   "values": chunk} for i, chunk in enumerate(chunks, start=1)]
    for name in sorted((k for k, v in main.items() if isinstance(v, dict)), key=lambda k: -_size(main[k])):
        if _size(main) <= MAX_LINE_BYTES:
            break
        main[name] = {**_digest(json.dumps(main[name], sort_keys=True).encode()), "truncated": True}
    if _size(main) > MAX_LINE_BYTES:  # only long top-level strings are left: keep the digest of the whole
        main = {"time": main["time"], "request": request, **_digest(json.dumps(record, default=str).encode()),
                "truncated": True}
    return [main] + extra


def bounded(value: Any) -> Any:
    """``value`` as the audit log may hold it (see the module)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        if len(value) <= MAX_VALUE_CHARS:
            return value
        return {"chars": len(value), **_digest(value.encode("utf-8", "replace"))}
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return {"bytes": len(data), **_digest(data)}
    if isinstance(value, np.ndarray):
        return {"numbers": int(value.size), **_digest(np.ascontiguousarray(value).tobytes())}
    if isinstance(value, np.generic):
        return bounded(value.item())
    if isinstance(value, dict):
        out = {_key(k): bounded(v) for k, v in list(value.items())[:MAX_KEYS]}
        if len(value) > MAX_KEYS:
            out["more_keys"] = len(value) - MAX_KEYS
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        if sum(isinstance(v, float | np.floating) for v in items) > MAX_FLOATS:
            return {"numbers": len(items), **_digest(json.dumps([float(v) if isinstance(v, float | np.floating)
                                                                  else str(v) for v in items]).encode())}
        return [bounded(v) for v in items]
    return bounded(str(value))


def _key(key: Any) -> str:
    text = str(key)
    if len(text) <= MAX_KEY_CHARS:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


def _digest(data: bytes) -> dict[str, str]:
    return {"sha256": hashlib.sha256(data).hexdigest()}


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"))) + 1


def _chunks(values: list[Any]) -> list[list[Any]]:
    """``values`` cut into lists that fit a continuation line each."""
    room = MAX_LINE_BYTES - 200  # the continuation line's other fields
    chunks: list[list[Any]] = [[]]
    used = 2
    for value in values:
        size = _size(value)
        if chunks[-1] and used + size > room:
            chunks.append([])
            used = 2
        chunks[-1].append(value)
        used += size
    return chunks


# -- hashing probes --------------------------------------------------------------


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_embeddings(vectors: np.ndarray) -> list[str]:
    """One SHA-256 per embedding, over its float32 bytes."""
    x = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, vectors.shape[-1])
    return [hash_bytes(row.tobytes()) for row in x]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
