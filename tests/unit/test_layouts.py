"""Every SQLite file of the data directory from each layout the releases
before versions left (their CREATE statements, from the history of
indexer/store/metadata.py, annotations.py and service/access_store.py): a
writable open brings it to the layout of a new file, rows kept; a read-only
open of an old generation serves it and writes nothing, so its checksums
hold, and the next index run's copy is brought up to date; a file of a
newer release is refused, untouched. The mechanism: test_sqlite_db."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from application.access_store import FILE_NAME as ACCESS_FILE
from application.access_store import LAYOUT as ACCESS
from application.access_store import AccessStore
from indexer.indexing import index_paths
from indexer.model import Box
from indexer.people.annotations import ANNOTATIONS_FILE, AnnotationsDB, NothingToUndoError
from indexer.people.schema import LAYOUT as ANNOTATIONS
from indexer.store.checksums import seal_manifest, verify_generation
from indexer.store.generations import GENERATIONS_DIR, current_dir
from indexer.store.metadata import ADDED_COLUMNS, FaceTime, FileRecord, MetadataDB, NewFace
from indexer.store.metadata import LAYOUT as METADATA
from indexer.store.sqlite_db import NewerDatabaseError
from indexer.store.verified_record import VerifiedRecord
from tests.helpers import file_sha256, layout_version, published_store

# -- metadata.sqlite3 -------------------------------------------------------

FIRST_FILES = """CREATE TABLE files (id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, content_hash TEXT NOT NULL, width INTEGER NOT NULL,
    height INTEGER NOT NULL, face_count INTEGER NOT NULL, detection TEXT NOT NULL, model TEXT NOT NULL,
    indexed_at TEXT NOT NULL"""
FIRST_FACES = """CREATE TABLE faces (id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE, top INTEGER NOT NULL, right INTEGER NOT NULL,
    bottom INTEGER NOT NULL, left INTEGER NOT NULL, embedding BLOB NOT NULL, indexed_at TEXT NOT NULL"""
THUMBNAILS = """CREATE INDEX faces_file_id ON faces(file_id);
CREATE TABLE thumbnails (face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE, jpeg BLOB NOT NULL);
"""
FIRST = f"{FIRST_FILES});\n{FIRST_FACES});\n{THUMBNAILS}"  # a1929cd, 5509540 (generations)
RUNS = """CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL, report TEXT NOT NULL);"""  # a1929cd only
ADDED = "".join(f"ALTER TABLE {table} ADD COLUMN {name} {declaration};\n"
                for table, columns in ADDED_COLUMNS.items() for name, declaration in columns)
VIDEO = (f"{FIRST_FILES}, kind TEXT NOT NULL DEFAULT 'photo', taken_at REAL, duration_s REAL);\n"
         f"{FIRST_FACES}, timestamp REAL, track INTEGER, track_start REAL, track_end REAL);\n{THUMBNAILS}")  # 7d2b13d
ERASURES = """CREATE TABLE erasures (id INTEGER PRIMARY KEY AUTOINCREMENT, content_hash TEXT NOT NULL,
    top INTEGER NOT NULL, right INTEGER NOT NULL, bottom INTEGER NOT NULL, left INTEGER NOT NULL, timestamp REAL,
    erased_at TEXT NOT NULL);
CREATE INDEX erasures_content_hash ON erasures(content_hash);
"""  # cf24ed1
HASHES = "CREATE INDEX files_content_hash ON files(content_hash);"  # c8d0404

METADATA_LAYOUTS = {
    "first release": FIRST + RUNS,
    "generations": FIRST,
    "first release, then opened by the video release": FIRST + RUNS + ADDED,
    "video": VIDEO,
    "erasures": VIDEO + ERASURES,
    "the last before versions": VIDEO + ERASURES + HASHES,
}
FIRST_COLUMNS = {
    "files": "id, path, size, mtime_ns, content_hash, width, height, face_count, detection, model, indexed_at",
    "faces": "id, file_id, top, right, bottom, left, embedding, indexed_at",
    "thumbnails": "face_id, jpeg",
}
EMBEDDING = np.arange(128, dtype="<f4") / 128


def old_file(path: Path, script: str, rows: str) -> Path:
    """A database made with ``script`` (its layout) holding ``rows``, unversioned."""
    conn = sqlite3.connect(path)
    conn.executescript(script + rows)
    conn.close()
    return path


def old_metadata(path: Path, layout: str) -> Path:
    return old_file(path, METADATA_LAYOUTS[layout], """
        INSERT INTO files (path, size, mtime_ns, content_hash, width, height, face_count, detection, model,
                           indexed_at) VALUES ('/p/a.jpg', 10, 1, 'h1', 40, 30, 1, '{}', 'm', '2024-01-01');""")


def add_old_face(path: Path) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO faces (file_id, top, right, bottom, left, embedding, indexed_at) "
                     "VALUES (1, 1, 9, 8, 2, ?, '2024-01-01')", (EMBEDDING.tobytes(),))
        conn.execute("INSERT INTO thumbnails (face_id, jpeg) VALUES (1, x'ff')")
    conn.close()


def shape(path: Path) -> dict[str, list[str]]:
    """Each table's columns and each index (by name) of a database; the
    first release's `runs`, which nothing reads since, left out."""
    conn = sqlite3.connect(path)
    try:
        names = conn.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                             "AND name != 'runs' ORDER BY name").fetchall()
        return {name: [r[1] for r in conn.execute(f"PRAGMA table_info({name})")] if kind == "table" else ["index"]
                for kind, name in names}
    finally:
        conn.close()


@pytest.fixture
def new_metadata(tmp_path: Path) -> Path:
    MetadataDB(tmp_path / "new" / "metadata.sqlite3").close()
    return tmp_path / "new" / "metadata.sqlite3"


def test_new_files_are_at_the_last_version(tmp_path: Path, new_metadata: Path):
    AnnotationsDB.open(tmp_path).close()
    AccessStore(tmp_path / ACCESS_FILE).sessions()
    assert layout_version(new_metadata) == METADATA.version == 1
    assert layout_version(tmp_path / ANNOTATIONS_FILE) == ANNOTATIONS.version == 3
    assert layout_version(tmp_path / ACCESS_FILE) == ACCESS.version == 1


@pytest.mark.parametrize("layout", METADATA_LAYOUTS)
def test_a_metadata_database_of_an_older_layout_is_read_as_it_is(tmp_path: Path, layout: str):
    path = old_metadata(tmp_path / "metadata.sqlite3", layout)
    add_old_face(path)
    before = file_sha256(path)
    db = MetadataDB(path, readonly=True)
    try:
        face = db.faces([1])[1]
        assert (face.path, face.box, face.kind, face.taken_at, face.timestamp) == (
            "/p/a.jpg", Box(1, 9, 8, 2), "photo", None, None)
        assert db.face_times([1]) == {1: None} and db.photo(1).kind == "photo"
        np.testing.assert_array_equal(db.all_embeddings()[2], EMBEDDING[None, :])
        assert db.id_sequences() == {"files": 1, "faces": 1}
        assert db.erasure_rows() == []
    finally:
        db.close()
    assert file_sha256(path) == before and layout_version(path) == 0


@pytest.mark.parametrize("layout", METADATA_LAYOUTS)
def test_a_metadata_database_of_an_older_layout_is_brought_up_to_date(tmp_path: Path, layout: str,
                                                                       new_metadata: Path):
    path = old_metadata(tmp_path / "metadata.sqlite3", layout)
    add_old_face(path)
    db = MetadataDB(path)
    try:
        assert db.faces([1])[1].box == Box(1, 9, 8, 2)
        video = FileRecord(path="/p/v.mp4", size=5, mtime_ns=2, content_hash="h2", width=40, height=30,
                           detection="{}", model="m", taken_at=1e9, kind="video", duration_s=4.0)
        new_ids, _ = db.put_file(video, [NewFace(Box(1, 9, 8, 2), EMBEDDING, b"jpeg", FaceTime(1.5, 0, 1.0, 2.0))])
        assert new_ids == [2] and db.faces([2])[2].time == 1e9 + 1.5
        assert db.erase_faces([1]) == [(1, "/p/a.jpg")] and len(db.erasure_rows()) == 1
        db.commit()
    finally:
        db.close()
    assert layout_version(path) == METADATA.version
    assert shape(path) == shape(new_metadata)


def test_a_published_generation_of_an_older_layout_is_served_unwritten_and_copied_up_to_date(
        fake_model, settings, photos):
    index_paths([photos], settings, progress=False, model=fake_model)
    data_dir = settings.data_dir
    old = current_dir(data_dir)
    db = old / "metadata.sqlite3"
    copied = "".join(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM new.{table};\n"
                     for table, columns in FIRST_COLUMNS.items())
    old_file(old / "old.sqlite3", FIRST, f"ATTACH '{db}' AS new;\n{copied}DETACH new;")
    (old / "old.sqlite3").replace(db)  # the layout of the release that added generations, rows kept
    VerifiedRecord(data_dir).remember({f"{GENERATIONS_DIR}/{old.name}/{name}": hashed
                                       for name, hashed in seal_manifest(old).items()})
    before = file_sha256(db)

    store = published_store(data_dir)
    try:
        ids = store.face_ids().tolist()
        records = store.faces(ids)
        assert len(ids) == 15 and {r.kind for r in records.values()} == {"photo"}
        assert {r.taken_at for r in records.values()} == {None}  # what the old layout did not record
    finally:
        store.close()
    assert file_sha256(db) == before and layout_version(db) == 0
    assert verify_generation(old, data_dir, full=True).ok

    (photos / "extra.jpg").write_bytes((photos / "Tony_Blair" / "Tony_Blair_0001.jpg").read_bytes() + b"x")
    report = index_paths([photos], settings, progress=False, model=fake_model)
    assert report.generation == "g000002" and report.images_indexed == 1
    new = current_dir(data_dir) / "metadata.sqlite3"
    assert layout_version(new) == METADATA.version and "kind" in shape(new)["files"]
    store = published_store(data_dir)
    try:
        assert set(ids) < set(store.face_ids().tolist())  # every face kept its id
    finally:
        store.close()
    assert file_sha256(db) == before and verify_generation(old, data_dir, full=True).ok  # the previous one, kept


# -- annotations.sqlite3 ------------------------------------------------------

CLUSTERING = """CREATE TABLE cluster_runs (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL,
    method TEXT NOT NULL, k INTEGER NOT NULL, params TEXT NOT NULL, face_count INTEGER NOT NULL,
    duration_s REAL NOT NULL);
CREATE TABLE cluster_faces (run_id INTEGER NOT NULL REFERENCES cluster_runs(id) ON DELETE CASCADE,
    face_id INTEGER NOT NULL, cluster INTEGER NOT NULL, nearest INTEGER NOT NULL, distance REAL,
    PRIMARY KEY (run_id, face_id)) WITHOUT ROWID;
CREATE TABLE people (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at TEXT NOT NULL);
CREATE TABLE face_people (face_id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE);
CREATE INDEX face_people_person ON face_people(person_id);
CREATE TABLE cluster_people (run_id INTEGER NOT NULL REFERENCES cluster_runs(id) ON DELETE CASCADE,
    cluster INTEGER NOT NULL, person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    PRIMARY KEY (run_id, cluster)) WITHOUT ROWID;
CREATE INDEX cluster_people_person ON cluster_people(person_id);
"""  # 05864b1
CORRECTIONS = """CREATE INDEX cluster_faces_cluster ON cluster_faces(run_id, cluster);
CREATE TABLE corrections (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT, action TEXT NOT NULL,
    person_id INTEGER, faces INTEGER NOT NULL DEFAULT 0);
CREATE TABLE rejections (face_id INTEGER NOT NULL, person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    rev INTEGER NOT NULL, PRIMARY KEY (face_id, person_id)) WITHOUT ROWID;
CREATE INDEX rejections_person ON rejections(person_id);
CREATE TABLE suggestions (face_id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE, distance REAL NOT NULL);
CREATE INDEX suggestions_person ON suggestions(person_id);
CREATE TABLE merges (id INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE, rev INTEGER NOT NULL, at TEXT NOT NULL,
    actor TEXT, undone_at TEXT);
CREATE INDEX merges_person ON merges(person_id);
CREATE TABLE merged_people (merge_id INTEGER NOT NULL REFERENCES merges(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL,
    PRIMARY KEY (merge_id, person_id)) WITHOUT ROWID;
CREATE TABLE merge_moves (merge_id INTEGER NOT NULL REFERENCES merges(id) ON DELETE CASCADE,
    from_person INTEGER NOT NULL, kind TEXT NOT NULL, item INTEGER NOT NULL, run_id INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (merge_id, kind, run_id, item)) WITHOUT ROWID;
CREATE TABLE recognition_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE recognition_dirty (person_id INTEGER PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
    rev INTEGER NOT NULL);
"""  # 7e855c3, in one transaction; then, in another:
REV = "ALTER TABLE face_people ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;\n"
PLACES = """CREATE TABLE face_places (face_id INTEGER PRIMARY KEY, content_hash TEXT NOT NULL, top INTEGER NOT NULL,
    right INTEGER NOT NULL, bottom INTEGER NOT NULL, left INTEGER NOT NULL, timestamp REAL);
"""  # 05a345d

ANNOTATIONS_LAYOUTS = {
    "clustering and names": CLUSTERING,
    "corrections, an open killed before it added face_people.rev": CLUSTERING + CORRECTIONS,
    "corrections": CLUSTERING + CORRECTIONS + REV,
    "the last before versions": CLUSTERING + CORRECTIONS + REV + PLACES,
}


@pytest.mark.parametrize("layout", ANNOTATIONS_LAYOUTS)
def test_an_annotations_database_of_an_older_layout_is_brought_up_to_date(tmp_path: Path, layout: str):
    (tmp_path / "old").mkdir()
    old_file(tmp_path / "old" / ANNOTATIONS_FILE, ANNOTATIONS_LAYOUTS[layout], """
        INSERT INTO people (name, created_at) VALUES ('Anna', '2024-01-01');
        INSERT INTO face_people (face_id, person_id) VALUES (7, 1);
        INSERT INTO cluster_runs (created_at, method, k, params, face_count, duration_s)
            VALUES ('2024-01-01', 'kmeans', 1, '{}', 2, 0.5);
        INSERT INTO cluster_faces (run_id, face_id, cluster, nearest, distance)
            VALUES (1, 7, 0, 0, 0.1), (1, 9, 0, 0, 0.2);
        INSERT INTO cluster_people (run_id, cluster, person_id) VALUES (1, 0, 1);""")
    db = AnnotationsDB.open(tmp_path / "old")
    try:
        assert db.highest_face_id() == 9
        assert db.assign(1, [8]).changed == 1  # a correction: its journal, face_people.rev
        db.remember_places({8: ("h", (1, 9, 8, 2), None)})
        anna = db.person(1)
        assert (anna.name, anna.face_count, anna.clusters) == ("Anna", 2, [0])
    finally:
        db.close()
    AnnotationsDB.open(tmp_path / "new").close()
    assert layout_version(tmp_path / "old" / ANNOTATIONS_FILE) == ANNOTATIONS.version
    assert shape(tmp_path / "old" / ANNOTATIONS_FILE) == shape(tmp_path / "new" / ANNOTATIONS_FILE)


def test_an_annotations_database_of_version_1_gets_the_corrections_journal(tmp_path: Path):
    """The release before the journal: its corrections stay, cannot be
    undone (nothing was kept of them), and the next ones can."""
    path = tmp_path / "v1" / ANNOTATIONS_FILE
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    ANNOTATIONS.steps[0].apply(conn)
    conn.executescript("""
        PRAGMA user_version = 1;
        INSERT INTO people (name, created_at) VALUES ('Anna', '2024-01-01');
        INSERT INTO corrections (at, action, person_id, faces) VALUES ('2024-01-01', 'create', 1, 1);
        INSERT INTO face_people (face_id, person_id, rev) VALUES (7, 1, 1);""")
    conn.close()
    db = AnnotationsDB.open(path.parent)
    try:
        assert db.correction(1).action == "create" and not db.correction(1).undoable
        with pytest.raises(NothingToUndoError, match="kept nothing to undo it with"):
            db.undo(1)
        assert db.person(1).face_count == 1
        moved = db.create_person("Ben", [7])
        db.undo(moved.rev)
        assert db.attributions([7])[7].name == "Anna"
    finally:
        db.close()
    AnnotationsDB.open(tmp_path / "new").close()
    assert layout_version(path) == ANNOTATIONS.version == 3
    db = AnnotationsDB.open(path.parent)
    assert db.drawn() == {}  # and the table of drawn faces
    db.close()
    assert shape(path) == shape(tmp_path / "new" / ANNOTATIONS_FILE)


# -- access.sqlite3 -------------------------------------------------------------

def test_an_access_database_made_before_versions_is_brought_up_to_date(tmp_path: Path):
    old_file(tmp_path / "old.sqlite3", """
        CREATE TABLE sessions (token_sha256 TEXT PRIMARY KEY, key_digest BLOB NOT NULL, created REAL NOT NULL,
            seen REAL NOT NULL);
        CREATE TABLE key_failures (address TEXT PRIMARY KEY, times TEXT NOT NULL DEFAULT '[]',
            strikes INTEGER NOT NULL DEFAULT 0, blocked_until REAL NOT NULL DEFAULT 0,
            last_failure REAL NOT NULL DEFAULT 0);""", "INSERT INTO sessions VALUES ('t', x'00', 1.0, 1.0);")
    access = AccessStore(tmp_path / "old.sqlite3")
    assert access.sessions() == 1
    access.close()
    AccessStore(tmp_path / "new.sqlite3").sessions()
    assert layout_version(tmp_path / "old.sqlite3") == ACCESS.version
    assert shape(tmp_path / "old.sqlite3") == shape(tmp_path / "new.sqlite3")


# -- from a newer release --------------------------------------------------------

def open_metadata(path: Path) -> None:
    MetadataDB(path).close()


def open_metadata_readonly(path: Path) -> None:
    MetadataDB(path, readonly=True).close()


def open_annotations(path: Path) -> None:
    AnnotationsDB.open(path.parent).close()


def open_access(path: Path) -> None:
    AccessStore(path).sessions()


@pytest.mark.parametrize(("name", "opened", "layout"), [
    ("metadata.sqlite3", open_metadata, METADATA),
    ("metadata.sqlite3", open_metadata_readonly, METADATA),
    (ANNOTATIONS_FILE, open_annotations, ANNOTATIONS),
    (ACCESS_FILE, open_access, ACCESS),
])
def test_a_database_of_a_newer_release_is_refused_untouched(tmp_path: Path, name, opened, layout):
    path = tmp_path / name
    (open_metadata if opened is open_metadata_readonly else opened)(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {layout.version + 1}")
    conn.close()
    before = file_sha256(path)
    with pytest.raises(NewerDatabaseError, match=rf"{name} \({layout.name}\) has layout version {layout.version + 1}, "
                                                 rf"and this facesearch knows versions up to {layout.version}: "
                                                 "a newer facesearch wrote it"):
        opened(path)
    assert file_sha256(path) == before and layout_version(path) == layout.version + 1
