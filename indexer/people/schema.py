"""The layout of ``annotations.sqlite3``: its tables (clustering runs,
people, the corrections journal, recognition's suggestions, the places of
faces) and the numbered steps that bring a file of any release to it
(``indexer.store.sqlite_db``)."""

from __future__ import annotations

from indexer.store.sqlite_db import Layout, Step, adopt

SCHEMA = """
CREATE TABLE IF NOT EXISTS cluster_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  TEXT NOT NULL,               -- ISO 8601, UTC
    method      TEXT NOT NULL,
    k           INTEGER NOT NULL,            -- number of clusters
    params      TEXT NOT NULL,               -- JSON of the parameters used
    face_count  INTEGER NOT NULL,
    duration_s  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cluster_faces (
    run_id   INTEGER NOT NULL REFERENCES cluster_runs(id) ON DELETE CASCADE,
    face_id  INTEGER NOT NULL,               -- metadata face id
    cluster  INTEGER NOT NULL,               -- 0..k-1, or -1 for a stranger
    nearest  INTEGER NOT NULL,               -- own cluster, a stranger's nearest one, -1 for none
    distance REAL,                           -- Euclidean, to the centre of `nearest`; NULL for none
    PRIMARY KEY (run_id, face_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS people (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS face_people (
    face_id   INTEGER PRIMARY KEY,           -- a face has at most one person
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS face_people_person ON face_people(person_id);
CREATE TABLE IF NOT EXISTS cluster_people (
    run_id    INTEGER NOT NULL REFERENCES cluster_runs(id) ON DELETE CASCADE,
    cluster   INTEGER NOT NULL,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    PRIMARY KEY (run_id, cluster)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cluster_people_person ON cluster_people(person_id);
CREATE INDEX IF NOT EXISTS cluster_faces_cluster ON cluster_faces(run_id, cluster);
-- Corrections (indexer/people/corrections.py). Every change people make is a
-- row of `corrections`; the rows it wrote carry its id as `rev`, so an undo
-- can tell whether anything touched them since.
CREATE TABLE IF NOT EXISTS corrections (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,                 -- ISO 8601, UTC
    actor     TEXT,                          -- the API key id, "cli", or NULL without keys
    action    TEXT NOT NULL,                 -- create, name_cluster, assign, reject, merge, undo_merge, rename
    person_id INTEGER,
    faces     INTEGER NOT NULL DEFAULT 0     -- faces it changed
);
CREATE TABLE IF NOT EXISTS rejections (
    face_id   INTEGER NOT NULL,              -- "not this person"
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    rev       INTEGER NOT NULL,
    PRIMARY KEY (face_id, person_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rejections_person ON rejections(person_id);
CREATE TABLE IF NOT EXISTS suggestions (
    face_id   INTEGER PRIMARY KEY,           -- recognised automatically (indexer/people/recognition.py)
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    distance  REAL NOT NULL                  -- Euclidean, to the person's nearest confirmed face
);
CREATE INDEX IF NOT EXISTS suggestions_person ON suggestions(person_id);
CREATE TABLE IF NOT EXISTS merges (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,  -- merged into
    rev       INTEGER NOT NULL,              -- its correction
    at        TEXT NOT NULL,
    actor     TEXT,
    undone_at TEXT
);
CREATE INDEX IF NOT EXISTS merges_person ON merges(person_id);
CREATE TABLE IF NOT EXISTS merged_people (
    merge_id   INTEGER NOT NULL REFERENCES merges(id) ON DELETE CASCADE,
    person_id  INTEGER NOT NULL,             -- the person merged away (gone), as it was
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (merge_id, person_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS merge_moves (
    merge_id    INTEGER NOT NULL REFERENCES merges(id) ON DELETE CASCADE,
    from_person INTEGER NOT NULL,
    kind        TEXT NOT NULL,               -- confirmed, rejection, dropped_rejection, suggestion, cluster
    item        INTEGER NOT NULL,            -- a face id; for `cluster`, the cluster
    run_id      INTEGER NOT NULL DEFAULT 0,  -- for `cluster`: its run
    PRIMARY KEY (merge_id, kind, run_id, item)
) WITHOUT ROWID;
-- Where each face that people corrected is (indexer/people/carry_over.py): the
-- file's content hash and the box, never the face, so that a face given a
-- new id by re-encoding the same file (index --full) keeps its people.
CREATE TABLE IF NOT EXISTS face_places (
    face_id      INTEGER PRIMARY KEY,
    content_hash TEXT NOT NULL,
    top          INTEGER NOT NULL,
    right        INTEGER NOT NULL,
    bottom       INTEGER NOT NULL,
    left         INTEGER NOT NULL,
    timestamp    REAL                        -- seconds into a video (NULL for a photo)
);
-- Recognition's bookkeeping: the last face id it looked at, and the people
-- whose confirmed faces changed since it last ran (with the correction).
CREATE TABLE IF NOT EXISTS recognition_state (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS recognition_dirty (
    person_id INTEGER PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
    rev       INTEGER NOT NULL
);
"""

# Columns added to SCHEMA's tables by releases before versions (step 1 adds
# them where missing); a later change is a new step of LAYOUT.
ADDED_COLUMNS = {"face_people": [("rev", "INTEGER NOT NULL DEFAULT 0")]}

JOURNAL = """
-- What each correction changed (indexer/people/journal.py): every row it
-- wrote, before and after; NULL for a row that did not exist.
CREATE TABLE correction_labels (
    rev           INTEGER NOT NULL REFERENCES corrections(id) ON DELETE CASCADE,
    face_id       INTEGER NOT NULL,
    before_person INTEGER,
    before_rev    INTEGER,
    after_person  INTEGER,
    after_rev     INTEGER,
    PRIMARY KEY (rev, face_id)
) WITHOUT ROWID;
CREATE TABLE correction_rejections (
    rev        INTEGER NOT NULL REFERENCES corrections(id) ON DELETE CASCADE,
    face_id    INTEGER NOT NULL,
    person_id  INTEGER NOT NULL,
    before_rev INTEGER,                      -- NULL: not rejected
    after_rev  INTEGER,
    PRIMARY KEY (rev, face_id, person_id)
) WITHOUT ROWID;
CREATE TABLE correction_people (
    rev         INTEGER NOT NULL REFERENCES corrections(id) ON DELETE CASCADE,
    person_id   INTEGER NOT NULL,
    before_name TEXT,                        -- NULL: the person did not exist
    after_name  TEXT,                        -- NULL: the person no longer exists
    created_at  TEXT,
    before_cover INTEGER,                    -- people.cover_face_id before and after
    after_cover  INTEGER,
    PRIMARY KEY (rev, person_id)
) WITHOUT ROWID;
CREATE TABLE correction_clusters (
    rev           INTEGER NOT NULL REFERENCES corrections(id) ON DELETE CASCADE,
    run_id        INTEGER NOT NULL,
    cluster       INTEGER NOT NULL,
    before_person INTEGER,                   -- NULL: mapped to nobody
    after_person  INTEGER,
    PRIMARY KEY (rev, run_id, cluster)
) WITHOUT ROWID;
CREATE TABLE correction_members (
    rev            INTEGER NOT NULL REFERENCES corrections(id) ON DELETE CASCADE,
    run_id         INTEGER NOT NULL,
    face_id        INTEGER NOT NULL,
    before_cluster INTEGER,                  -- its cluster in the run (-1: a stranger)
    after_cluster  INTEGER,
    PRIMARY KEY (rev, run_id, face_id)
) WITHOUT ROWID;
-- "Different people" answers (/review, indexer/people/review.py): the two
-- sides are never offered as one person again, never put in one cluster,
-- and recognition never gives one side's faces to the other's person.
CREATE TABLE different (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    rev    INTEGER NOT NULL REFERENCES corrections(id) ON DELETE CASCADE,  -- the answer
    active INTEGER NOT NULL DEFAULT 1                                      -- 0 once undone
);
CREATE TABLE different_sides (
    link_id   INTEGER NOT NULL REFERENCES different(id) ON DELETE CASCADE,
    side      INTEGER NOT NULL,              -- 0 or 1
    person_id INTEGER,                       -- a person: their confirmed faces, whenever asked
    face_id   INTEGER                        -- else one face of a group as it was
);
CREATE INDEX different_sides_link ON different_sides(link_id);
CREATE INDEX different_sides_face ON different_sides(face_id);
ALTER TABLE cluster_runs ADD COLUMN rev INTEGER;                   -- the correction that stored it
ALTER TABLE cluster_runs ADD COLUMN undone INTEGER NOT NULL DEFAULT 0;  -- 1: undone, the run before is the last
ALTER TABLE people ADD COLUMN cover_face_id INTEGER;    -- the face chosen to show them (NULL: their first)
ALTER TABLE corrections ADD COLUMN undoes INTEGER;     -- the correction this one undid
ALTER TABLE corrections ADD COLUMN undone_by INTEGER;  -- the correction that undid this one
ALTER TABLE corrections ADD COLUMN journaled INTEGER NOT NULL DEFAULT 0;  -- 1: what it changed is kept
"""

DRAWN = """
-- Faces people drew a box around where the detector found none
-- (indexer/drawing.py): the file's content hash and the box in its pixels,
-- never the face; every index run encodes them again in a file of that
-- content (indexer/worker.py), so they survive reindexing, --full included.
CREATE TABLE drawn_faces (
    content_hash TEXT NOT NULL,
    top          INTEGER NOT NULL,
    right        INTEGER NOT NULL,
    bottom       INTEGER NOT NULL,
    left         INTEGER NOT NULL,
    drawn_at     TEXT NOT NULL,              -- ISO 8601, UTC
    PRIMARY KEY (content_hash, top, right, bottom, left)
) WITHOUT ROWID;
"""

# annotations.sqlite3 (indexer.store.sqlite_db). Step 1 adopts every layout
# of the releases before versions: clustering runs and people, then the
# corrections, recognition and `face_people.rev`, then the face places.
# Step 2: the corrections journal, so that any correction can be undone.
# Step 3: the faces people drew.
LAYOUT = Layout("annotations database", (
    Step(1, adopt(SCHEMA, ADDED_COLUMNS)),
    Step(2, JOURNAL),
    Step(3, DRAWN),
))
