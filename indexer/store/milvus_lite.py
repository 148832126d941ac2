"""Connections to Milvus, and the Milvus Lite server process behind a file
address: what ``indexer.store.milvus`` asks of Milvus goes through a
``Connection`` from here.

``milvus.uri`` names a Milvus server (``http://host:19530``) or a Milvus
Lite file (any address without ``://``; a relative one is inside the data
directory). For a Lite file, the ``milvus_lite`` package starts a server
process when the first client connects (~0.5 s), and only one process may
hold a file at a time. So a process keeps one ``Connection`` per address
(``Connection.get``), shared by every store open on it, and closes it with
the last user (``release``), which stops the Lite server and frees the file
for other processes; ``hold`` keeps it open across stores opened one after
another. Lite keeps the bytes of deleted rows in its file until the file
is vacuumed, which needs the server stopped (``Connection.purge``).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from config.settings import MilvusSettings
from indexer.store.errors import StoreError
from indexer.store.file_modes import create_private_file, private_dir

if TYPE_CHECKING:
    from pymilvus import MilvusClient  # untyped (no py.typed): Any to mypy, named for the reader

LITE_NAME = re.compile(r"^[A-Za-z0-9.\-_]{1,36}$")  # what Milvus Lite accepts as a file name


def load_pymilvus() -> ModuleType:
    """The Milvus client library (``StoreError`` with the install command
    when it is missing)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # milvus_lite imports the deprecated pkg_resources
            import pymilvus
    except ImportError:
        raise StoreError(
            "store.backend = \"milvus\" needs the Milvus client: install it with `make install SCALE=1` "
            "(pymilvus and milvus-lite)"
        ) from None
    # An iterator over Milvus Lite warns at every use that it picks the
    # timestamp on the client side (the same consistency: Strong).
    logging.getLogger("pymilvus.orm.iterator").setLevel(logging.ERROR)
    module: ModuleType = pymilvus  # Any to mypy: pymilvus ships no type information
    return module


def is_lite(uri: str) -> bool:
    """Whether ``uri`` names a Milvus Lite file rather than a server."""
    return "://" not in uri


def resolved_uri(uri: str, data_dir: Path) -> str:
    """A server address as it is; a Lite file path made absolute (a relative
    one is inside the data directory)."""
    if not is_lite(uri):
        return uri
    path = Path(uri).expanduser()
    return str(path if path.is_absolute() else (Path(data_dir) / path).resolve())


class Connection:
    """One ``MilvusClient`` per address in a process, shared by every store
    open on it and closed with the last. Milvus Lite runs a server process
    per file that only one process may hold: it is stopped with the last
    store, then, after an erasure, its file is vacuumed (Lite keeps deleted
    rows' bytes until then)."""

    _lock = threading.Lock()
    _open: dict[tuple[str, str], Connection] = {}

    def __init__(self, uri: str, token: str, client: MilvusClient) -> None:
        self.uri = uri
        self.token = token
        self.client = client
        self.users = 0

    @classmethod
    def get(cls, uri: str, token: str) -> Connection:
        """The connection to ``uri`` (resolved: ``resolved_uri``), made when
        it is the first; one more user until ``release``."""
        with cls._lock:
            conn = cls._open.get((uri, token))
            if conn is None:
                conn = cls(uri, token, _client(uri, token))
                cls._open[(uri, token)] = conn
            conn.users += 1
            return conn

    def release(self) -> None:
        """One user fewer; the last closes the client (and stops Lite's server)."""
        with self._lock:
            self.users -= 1
            if self.users > 0:
                return
            del self._open[(self.uri, self.token)]
        try:
            self.client.close()
        finally:
            if is_lite(self.uri):
                _stop_lite(self.uri)

    def purge(self, collection: str) -> None:
        """Have deleted rows' bytes rewritten away: a server compacts the
        collection (in the background; object storage keeps the old
        segments until its garbage collection, docs/scale-out.md); Milvus
        Lite is stopped, its file vacuumed and started again (a request of
        another thread meanwhile fails)."""
        if not is_lite(self.uri):
            self.client.compact(collection)
            return
        with self._lock:
            self.client.close()
            _stop_lite(self.uri)
            conn = sqlite3.connect(self.uri)
            try:
                conn.execute("VACUUM")
            finally:
                conn.close()
            self.client = _client(self.uri, self.token)


@contextmanager
def hold(settings: MilvusSettings, data_dir: Path) -> Iterator[None]:
    """One more user of the connection for the block (see ``connection_held``)."""
    conn = Connection.get(resolved_uri(settings.uri, data_dir), settings.token)
    try:
        yield
    finally:
        conn.release()


def _client(uri: str, token: str) -> MilvusClient:
    """A new client; for a Lite file, its server started (the file made
    0600 first), or a ``StoreError`` saying which process holds it."""
    pymilvus = load_pymilvus()
    if is_lite(uri):
        path = Path(uri)
        if not LITE_NAME.match(path.name):
            raise StoreError(
                f"milvus.uri {uri}: Milvus Lite needs a file name of at most 36 letters, digits, '.', '-' or '_'"
            )
        private_dir(path.parent)
        create_private_file(path)  # 0600 (Milvus Lite accepts an empty file and keeps its mode)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pymilvus.MilvusClient(uri=uri, token=token or "")
    except pymilvus.MilvusException as exc:
        if is_lite(uri) and "Open local milvus failed" in str(exc):
            raise StoreError(
                f"the Milvus Lite file {uri} is open in another process (a running `facesearch serve`, `index` or "
                "`watch`): Milvus Lite serves one process at a time. Stop that process, or run a Milvus server "
                "and set milvus.uri = \"http://host:19530\" (docs/scale-out.md)"
            ) from None
        raise StoreError(f"cannot reach Milvus at {uri} ({exc})") from None


def _stop_lite(path: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from milvus_lite.server_manager import server_manager_instance
    server_manager_instance.release_server(path)
