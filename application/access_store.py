"""What every server worker must agree on about access: the web sessions
and the wrong keys each client address sent, in ``access.sqlite3`` in the
data directory (0600, WAL, so that workers read while one writes).

**Sessions** (``start``, ``key_of``, ``end``). Signing in makes a random
token (256 bits) that the browser keeps in its signed cookie; the server
keeps only the token's SHA-256, with the digest of the key that signed in,
when, and when it was last used. A session is over, and its row deleted,
after ``max_age_s``, after ``idle_s`` without a request, or at sign-out; a
copied cookie then finds no row. The key is looked up among the keys
configured *now* by the caller, so a removed or rotated key ends its
sessions at their next request.

**Wrong keys** (``blocked_for``, ``failed``). Each client address's wrong
keys of the last minute are kept (times only, at most ``limit``); the
``limit``-th within a minute blocks the address for ``BLOCK_S`` seconds,
doubling at each block that follows within ``STRIKES_RESET_S`` of the last
(up to ``MAX_BLOCK_S``). A blocked address gets 429 before its key is even
looked at, so a right guess during a block tells it nothing. The check and
the count are two steps: guesses arriving at the same instant on several
workers may each be looked at before the block is on record (one more per
worker at most); each is then answered 429 all the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import threading
from pathlib import Path

from indexer.store.sqlite_db import Layout, Step, migrate

FILE_NAME = "access.sqlite3"
WINDOW_S = 60.0
BLOCK_S = 60.0
MAX_BLOCK_S = 3600.0
STRIKES_RESET_S = 3600.0
# A session's last use is written at most this often (a page loads dozens
# of thumbnails): the idle timeout is exact to within this many seconds.
SEEN_RESOLUTION_S = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY,
    key_digest BLOB NOT NULL,
    created REAL NOT NULL,
    seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS key_failures (
    address TEXT PRIMARY KEY,
    times TEXT NOT NULL DEFAULT '[]',
    strikes INTEGER NOT NULL DEFAULT 0,
    blocked_until REAL NOT NULL DEFAULT 0,
    last_failure REAL NOT NULL DEFAULT 0
);
"""
# Versioned (indexer.store.sqlite_db): step 1 also adopts a file made before versions.
LAYOUT = Layout("access database", (Step(1, SCHEMA),))


class AccessStore:
    """One per server worker; the connection is opened at first use (after
    the fork) and reopened in a forked child."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> AccessStore:
        return cls(Path(data_dir) / FILE_NAME)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))  # SQLite's -wal, -shm follow
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            migrate(conn, LAYOUT, self.path)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def prepare(self) -> None:
        """Create the file or bring its layout up to date now, and close it:
        ``serve`` does so before its workers start, so that a file of a
        newer facesearch stops it with the message."""
        with self._lock:
            self._db()
        self.close()

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    # -- sessions ------------------------------------------------------------

    def start(self, key_digest: bytes, now: float, *, max_age_s: float) -> str:
        """A new session for the key with this digest; returns its token.
        Sessions past ``max_age_s`` are deleted on the way."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            db = self._db()
            db.execute("DELETE FROM sessions WHERE created < ?", (now - max_age_s,))
            db.execute("INSERT INTO sessions (token_sha256, key_digest, created, seen) VALUES (?, ?, ?, ?)",
                       (_sha(token), key_digest, now, now))
        return token

    def key_of(self, token: str | None, now: float, *, max_age_s: float, idle_s: float) -> bytes | None:
        """The digest of the key that signed the session ``token`` in, or
        None: no such session, or it is over (and then deleted)."""
        if not token or not isinstance(token, str):
            return None
        with self._lock:
            db = self._db()
            row = db.execute("SELECT key_digest, created, seen FROM sessions WHERE token_sha256 = ?",
                             (_sha(token),)).fetchone()
            if row is None:
                return None
            digest, created, seen = row
            if now - created > max_age_s or now - seen > idle_s:
                db.execute("DELETE FROM sessions WHERE token_sha256 = ?", (_sha(token),))
                return None
            if now - seen > SEEN_RESOLUTION_S:
                db.execute("UPDATE sessions SET seen = ? WHERE token_sha256 = ?", (now, _sha(token)))
            return bytes(digest)

    def end(self, token: str | None) -> None:
        """Sign-out: the session is gone for every copy of its cookie."""
        if token and isinstance(token, str):
            with self._lock:
                self._db().execute("DELETE FROM sessions WHERE token_sha256 = ?", (_sha(token),))

    def sessions(self) -> int:
        """Sessions on record (expired ones included until next touched)."""
        with self._lock:
            count: int = self._db().execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
            return count

    # -- wrong keys ----------------------------------------------------------

    def blocked_for(self, address: str, now: float) -> float | None:
        """Seconds ``address`` stays blocked, or None."""
        with self._lock:
            row = self._db().execute("SELECT blocked_until FROM key_failures WHERE address = ?",
                                     (address,)).fetchone()
        if row is None or row[0] <= now:
            return None
        blocked_until: float = row[0]
        return blocked_until - now

    def failed(self, address: str, now: float, *, limit: int) -> float | None:
        """Record a wrong key from ``address``; returns the seconds of the
        block it started, or None."""
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT times, strikes, blocked_until FROM key_failures WHERE address = ?",
                                 (address,)).fetchone()
                times, strikes, blocked_until = (json.loads(row[0]), row[1], row[2]) if row else ([], 0, 0.0)
                if blocked_until > now:  # looked at while another worker started the block: refused too
                    db.execute("COMMIT")
                    return blocked_until - now
                times = [t for t in times if now - t < WINDOW_S][-(limit - 1):] if limit > 1 else []
                times.append(now)
                block = None
                if len(times) >= limit:
                    strikes = strikes + 1 if now - blocked_until < STRIKES_RESET_S else 1
                    block = min(BLOCK_S * 2 ** (strikes - 1), MAX_BLOCK_S)
                    times, blocked_until = [], now + block
                db.execute(
                    "INSERT INTO key_failures (address, times, strikes, blocked_until, last_failure) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(address) DO UPDATE SET times = excluded.times, "
                    "strikes = excluded.strikes, blocked_until = excluded.blocked_until, "
                    "last_failure = excluded.last_failure",
                    (address, json.dumps(times), strikes, blocked_until, now))
                # Addresses quiet for longer than a strike lasts are forgotten.
                forget = now - STRIKES_RESET_S
                db.execute("DELETE FROM key_failures WHERE last_failure < ? AND blocked_until < ?", (forget, forget))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return block


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
