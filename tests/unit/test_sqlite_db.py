"""Versioned layouts of SQLite files (indexer.store.sqlite_db) on a made-up
layout: steps applied once each and recorded, all or nothing, a newer file
refused untouched, nothing written when there is nothing to do. Each real
database from its older layouts: test_layouts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from indexer.store.sqlite_db import Layout, NewerDatabaseError, Step, adopt, check_version, migrate, statements
from tests.helpers import file_sha256, layout_version

CREATED = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"


def add_author(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE notes SET text = text || ' (unsigned)'")


LAYOUT = Layout("notes database", (
    Step(1, adopt(CREATED, {"notes": [("pinned", "INTEGER NOT NULL DEFAULT 0")]})),
    Step(2, "ALTER TABLE notes ADD COLUMN author TEXT; -- a comment; with a semicolon\n"
            "CREATE INDEX notes_author ON notes(author);"),
    Step(3, add_author),
))


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_a_new_file_gets_every_step_and_records_the_last(tmp_path: Path):
    conn = connect(tmp_path / "notes.sqlite3")
    assert migrate(conn, LAYOUT, tmp_path / "notes.sqlite3") == 0
    columns = [row[1] for row in conn.execute("PRAGMA table_info(notes)")]
    assert columns == ["id", "text", "pinned", "author"] and LAYOUT.version == 3
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    assert not conn.in_transaction
    assert migrate(conn, LAYOUT, tmp_path / "notes.sqlite3") == 3  # and again: nothing to do


def test_an_older_file_gets_only_the_steps_it_lacks(tmp_path: Path):
    path = tmp_path / "notes.sqlite3"
    conn = connect(path)
    migrate(conn, Layout("notes database", LAYOUT.steps[:1]), path)
    conn.execute("INSERT INTO notes (text) VALUES ('hello')")
    assert migrate(conn, LAYOUT, path) == 1
    assert conn.execute("SELECT text, pinned, author FROM notes").fetchall() == [("hello (unsigned)", 0, None)]
    assert migrate(conn, LAYOUT, path) == 3
    assert conn.execute("SELECT text FROM notes").fetchall() == [("hello (unsigned)",)]  # step 3 ran once


def test_a_file_made_before_versions_is_adopted_whatever_it_lacks(tmp_path: Path, caplog):
    path = tmp_path / "notes.sqlite3"
    conn = connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")  # no `pinned`
    conn.execute("INSERT INTO notes (text) VALUES ('old')")
    caplog.set_level("INFO", logger="indexer.store.sqlite_db")
    assert migrate(conn, LAYOUT, path) == 0
    assert conn.execute("SELECT text, pinned FROM notes").fetchall() == [("old (unsigned)", 0)]
    assert "notes database brought from version 0 (made before versions) to version 3" in caplog.text


def test_a_failing_step_leaves_the_file_as_it_was(tmp_path: Path):
    path = tmp_path / "notes.sqlite3"
    conn = connect(path)
    migrate(conn, Layout("notes database", LAYOUT.steps[:1]), path)
    conn.execute("INSERT INTO notes (text) VALUES ('kept')")
    before = file_sha256(path)

    def fail(conn: sqlite3.Connection) -> None:
        raise RuntimeError("step 4 failed")

    broken = Layout("notes database", (*LAYOUT.steps, Step(4, fail)))
    with pytest.raises(RuntimeError, match="step 4 failed"):
        migrate(conn, broken, path)
    assert not conn.in_transaction and layout_version(path) == 1
    assert [row[1] for row in conn.execute("PRAGMA table_info(notes)")] == ["id", "text", "pinned"]
    assert conn.execute("SELECT text FROM notes").fetchall() == [("kept",)]
    conn.close()
    assert file_sha256(path) == before


def test_a_newer_file_is_refused_and_left_untouched(tmp_path: Path):
    path = tmp_path / "notes.sqlite3"
    conn = connect(path)
    migrate(conn, LAYOUT, path)
    conn.execute("PRAGMA user_version = 4")
    before = file_sha256(path)
    for check in (migrate, check_version):
        with pytest.raises(NewerDatabaseError, match=r"\(notes database\) has layout version 4, and this "
                                                     r"facesearch knows versions up to 3: a newer facesearch wrote it"):
            check(conn, LAYOUT, path)
    assert not conn.in_transaction
    conn.close()
    assert file_sha256(path) == before


def test_an_up_to_date_file_is_not_written(tmp_path: Path):
    path = tmp_path / "notes.sqlite3"
    migrate(connect(path), LAYOUT, path)
    before = (file_sha256(path), path.stat().st_mtime_ns)
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert check_version(reader, LAYOUT, path) == 3
    assert migrate(connect(path), LAYOUT, path) == 3
    assert (file_sha256(path), path.stat().st_mtime_ns) == before


def test_a_second_process_waits_then_finds_nothing_to_do(tmp_path: Path):
    path = tmp_path / "notes.sqlite3"
    first, second = connect(path), sqlite3.connect(path, isolation_level=None, timeout=0.1)
    first.execute("BEGIN IMMEDIATE")  # as if migrating
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        migrate(second, LAYOUT, path)
    first.execute("ROLLBACK")
    migrate(first, LAYOUT, path)
    assert migrate(second, LAYOUT, path) == 3


def test_steps_are_numbered_from_one_in_order():
    with pytest.raises(ValueError, match=r"numbered 1, 2, 3... in order, not \[1, 3\]"):
        Layout("notes database", (Step(1, CREATED), Step(3, CREATED)))


def test_a_script_is_split_into_statements_where_sqlite_ends_them():
    script = "CREATE TABLE a (x TEXT DEFAULT ';');\n-- a comment; still one\nCREATE TABLE b (y);\n"
    assert [s.strip() for s in statements(script)] == [
        "CREATE TABLE a (x TEXT DEFAULT ';');", "-- a comment; still one\nCREATE TABLE b (y);"]
