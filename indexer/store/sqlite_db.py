"""What every SQLite database of the data directory shares: the id an
INSERT made, versioned layouts, SQLite's own check of a file.

**Versions.** Each kind of database file declares its layout as a
``Layout``: a name for messages and a tuple of ``Step``s numbered 1, 2,
3..., each SQL (one or more statements) or a function of the connection.
A file records the number of the last step applied to it in ``PRAGMA
user_version`` (0: none yet, or a file made before versions).

* ``migrate`` (every writable open) applies the missing steps and records
  the new version in one ``BEGIN IMMEDIATE`` transaction: a failing step or
  a kill leaves the file as it was, and openers in other processes (the
  server's workers) wait for the one migrating (their busy timeout), then
  find nothing left to do. A file already up to date costs one read of its
  header and takes no lock.
* ``check_version`` (every read-only open) only reads the version: nothing
  is written, so a published generation stays as its checksums say. An
  older file is read as it is (its reader copes with what the older layout
  lacks) and is migrated when a writer opens it (for a generation: the
  next index run's copy).
* Both refuse a file newer than the code (``NewerDatabaseError``): a later
  release wrote it, whose steps may have changed what its tables mean, so
  reading it could give wrong answers and writing it could lose data.

**Files from before versions.** The databases of the data directory
existed before they were versioned, and each release then created the
tables and columns it lacked at every writable open: an unversioned file
can have any earlier layout, or one that an open killed half-way left. So
step 1 of each adopts what it finds: ``CREATE ... IF NOT EXISTS``
statements, through ``adopt`` where columns were added to a table over the
releases. That is also what creates a new file. Every later step runs
exactly once, on a file known to be at the version before it, so it is
plain SQL assuming that layout. Steps are only ever appended: a released
step is never edited or renumbered.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from indexer.store.errors import StoreError

log = logging.getLogger(__name__)


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid the INSERT that ``cursor`` ran made."""
    if cursor.lastrowid is None:
        raise sqlite3.InterfaceError("the statement inserted no row")
    return cursor.lastrowid


class NewerDatabaseError(StoreError):
    """A database file of a later layout version than this code knows."""


@dataclass(frozen=True)
class Step:
    """One change of a layout: ``number``, the version a file is at once it
    is applied, and ``change``, SQL statements or a function of the
    connection, run inside the migration's transaction (so nothing that
    commits: no ``executescript``, no ``VACUUM``)."""

    number: int
    change: str | Callable[[sqlite3.Connection], None]

    def apply(self, conn: sqlite3.Connection) -> None:
        if isinstance(self.change, str):
            for statement in statements(self.change):
                conn.execute(statement)
        else:
            self.change(conn)


@dataclass(frozen=True)
class Layout:
    """The layout of one kind of database file, as the steps that make it;
    ``name`` says which in messages ("metadata database")."""

    name: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        numbers = [step.number for step in self.steps]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"the steps of the {self.name} must be numbered 1, 2, 3... in order, not {numbers}")

    @property
    def version(self) -> int:
        """The version of a file once every step is applied."""
        return len(self.steps)


def check_version(conn: sqlite3.Connection, layout: Layout, path: Path) -> int:
    """The version ``conn``'s file (``path``, for the message) records, read
    from its header without writing; ``NewerDatabaseError`` when ``layout``
    does not know it."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if not 0 <= found <= layout.version:
        raise NewerDatabaseError(
            f"{path} ({layout.name}) has layout version {found}, and this facesearch knows versions up to "
            f"{layout.version}: a newer facesearch wrote it. Use that version with this data directory (or "
            "restore a backup made by this one)"
        )
    return found


def migrate(conn: sqlite3.Connection, layout: Layout, path: Path) -> int:
    """Bring ``conn``'s file (``path``, for messages) to ``layout.version``:
    the missing steps and the new version in one transaction, all or
    nothing. Returns the version it was at. ``conn`` must have no open
    transaction; ``NewerDatabaseError`` leaves a newer file untouched."""
    if check_version(conn, layout, path) == layout.version:
        return layout.version
    conn.execute("BEGIN IMMEDIATE")  # one migrating process at a time; the others wait here
    try:
        found = check_version(conn, layout, path)  # another process may have migrated it meanwhile
        adopted = found == 0 and _has_tables(conn)
        if found < layout.version:
            for step in layout.steps[found:]:
                step.apply(conn)
            conn.execute(f"PRAGMA user_version = {layout.version}")
    except BaseException:
        if conn.in_transaction:  # SQLite rolls some failures back itself (a full disk)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    if found < layout.version and (found or adopted):
        before = " (made before versions)" if adopted else ""
        log.info("%s: %s brought from version %d%s to version %d", path, layout.name, found, before, layout.version)
    return found


def adopt(sql: str, added_columns: Mapping[str, Sequence[tuple[str, str]]]) -> Callable[[sqlite3.Connection], None]:
    """Step 1 of a file made before versions: run ``sql`` (``CREATE ... IF
    NOT EXISTS`` statements: what is there stays) and add each column of
    ``added_columns`` (table -> [(name, declaration)]) its table lacks, so
    that whichever unversioned layout a file has, it ends with the last
    one."""

    def step(conn: sqlite3.Connection) -> None:
        for statement in statements(sql):
            conn.execute(statement)
        for table, columns in added_columns.items():
            have = columns_of(conn, table)
            for name, declaration in columns:
                if name not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")

    return step


def columns_of(conn: sqlite3.Connection, table: str) -> set[str]:
    """The column names of ``table`` (none when it is missing)."""
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def statements(sql: str) -> Iterator[str]:
    """The statements of an SQL script, one at a time, for ``execute``
    (``executescript`` would commit the open transaction first). A ``;`` in
    a comment or a string does not end a statement."""
    pending = ""
    for part in sql.split(";"):
        pending += part
        if not sqlite3.complete_statement(pending + ";"):
            pending += ";"
            continue
        if pending.strip():
            yield pending + ";"
        pending = ""


def quick_check(path: Path, limit: int = 5) -> str | None:
    """What SQLite's ``PRAGMA quick_check`` finds wrong with the database at
    ``path`` (its first ``limit`` complaints), or None when it is sound.
    Read-only; a file that is not a database at all is a problem too."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = [row[0] for row in conn.execute(f"PRAGMA quick_check({int(limit)})")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if rows == ["ok"] else "; ".join(str(r) for r in rows)


def _has_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").fetchone() is not None
