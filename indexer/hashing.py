"""The content hash of a file: blake2b-256 of its bytes, hex (``files.content_hash``).

Change detection, move detection and erasure records use it when indexing;
serving a photo checks it again, so that what is served is exactly what
was indexed. Files are read in chunks: a multi-gigabyte video never sits in
memory (about 0.8 GB/s here).
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from indexer.safe_open import open_regular

HASH_CHUNK = 1 << 20  # bytes read at a time


def content_hash(data: bytes) -> str:
    """The hash of bytes in memory (a photo as read)."""
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def file_hash(path: str) -> tuple[int, str]:
    """(size in bytes, hash) of the regular file at ``path``
    (``indexer.safe_open``: a FIFO or device is ``NotRegularFile``)."""
    with open_regular(path) as handle:
        return hash_stream(handle)


def hash_stream(handle: BinaryIO) -> tuple[int, str]:
    """(bytes read, hash) of an open file, from where it stands to its end."""
    digest = hashlib.blake2b(digest_size=32)
    size = 0
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()
