"""The Milvus store: a generation's SQLite metadata (``MetadataStore``) with
its vectors in a Milvus collection, for collections that outgrow one
machine's memory (docs/scale-out.md).

One collection per data directory holds the vectors of every generation on
disk. A row is one version of a face, valid from generation ``born`` until
``died`` (exclusive); generation G sees the rows with
``floor <= born <= G < died``, where ``floor`` is the generation its line of
reindexes started from (a ``--full`` run starts a new one). A reindex
building G+1 therefore only writes what changes: new faces are rows born in
G+1, removed ones get ``died = G+1``, a moved face gets a new row (its path
changed). Searches of the published generation never see them, a killed
reindex leaves nothing it can see, and ``collect_garbage`` deletes the rows
no generation on disk can see once a new one is published. The primary key
is ``born << 40 | face id``: writing the same version twice is idempotent.

SQLite stays the source of truth: a writer's open reconciles the rows the
generation sees with its metadata (inserting what is missing, retiring what
is not there), so a killed run, a lost collection or a switch from FAISS
all end in the same state. Writes are buffered and reach Milvus at each
checkpoint, after the SQLite commit. Distances are squared L2, as FAISS's.
Connections, and the Milvus Lite server process behind a file address, are
``indexer.store.milvus_lite``'s.
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from config.settings import IndexSettings, MilvusSettings
from indexer.model import EMBEDDING_DIM, MODEL_NAME
from indexer.store.ann import ANN_FILE
from indexer.store.atomic import atomic_write_bytes
from indexer.store.base import FaceFilter, FaceStore, StoreError, StoreMismatchError
from indexer.store.embedded import INDEX_FILE
from indexer.store.generations import GENERATIONS_DIR, generation_number
from indexer.store.metadata import FileRecord, MetadataDB, NewFace, utc_now
from indexer.store.metadata_store import DB_FILE, MANIFEST_FILE, MetadataStore, open_db, read_manifest
from indexer.store.milvus_lite import Connection, load_pymilvus, resolved_uri

if TYPE_CHECKING:
    from pymilvus import CollectionSchema, MilvusClient  # untyped (no py.typed): Any to mypy, named for the reader

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FAISS_FILES = (INDEX_FILE, ANN_FILE)  # the embedded store's, never in a Milvus generation
IDENTITY_FILE = "milvus.json"  # in DATA_DIR: which collection holds this data directory's vectors
PK_SHIFT = 40  # face ids below 2**40
FACE_ID_MASK = (1 << PK_SHIFT) - 1  # a row's face id: pk & FACE_ID_MASK
ALIVE = 2**62  # ``died`` of a row still current
SEARCH_CAP = 16_384  # Milvus's limit on limit + offset of one search
MAX_PATH = 65_535  # Milvus's longest VARCHAR
WRITE_BATCH = 1_000  # rows an insert: faster on Lite than 5,000 (19k against 10k rows/s)
ID_BATCH = 1_000  # face ids per ``face_id in [...]`` filter
ROW_FIELDS = ["pk", "face_id", "vec", "born", "died", "path", "time", "kind"]


# -- filters ---------------------------------------------------------------


def visible(generation: int, floor: int) -> str:
    """The Milvus filter of the rows generation ``generation`` sees."""
    return f"born >= {floor} and born <= {generation} and died > {generation}"


def _string(value: str) -> str | None:
    """``value`` as a Milvus string literal, or None where the filter
    language could not be trusted with it (quotes, backslashes, controls)."""
    if any(c in value for c in '"\\\'') or any(ord(c) < 32 for c in value):
        return None
    return f'"{value}"'


def pushed_down(where: FaceFilter | None) -> tuple[str, bool]:
    """The Milvus filter for ``where`` and whether it says all of it (else
    the hits are checked against the metadata too)."""
    if where is None:
        return "", True
    parts: list[str] = []
    complete = True
    if where.path_prefix:
        low = _string(where.path_prefix)
        last = ord(where.path_prefix[-1])
        high = _string(where.path_prefix[:-1] + chr(last + 1)) if last < 0x10FFFF else None
        if low and high and not (0xD800 <= last + 1 <= 0xDFFF):
            parts.append(f"path >= {low} and path < {high}")
        else:
            complete = False
    if where.time_from is not None:
        parts.append(f"time >= {float(where.time_from)!r}")
    if where.time_to is not None:
        parts.append(f"time <= {float(where.time_to)!r}")
    return " and ".join(parts), complete


# -- the collection ---------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    """This data directory's collection on one Milvus."""

    conn: Connection
    name: str
    identity: str  # the id in its description and in DATA_DIR/milvus.json

    @property
    def client(self) -> MilvusClient:
        return self.conn.client


def data_root(path: Path) -> Path:
    """The data directory of a generation directory (or of the store's own
    directory, for a store outside generations)."""
    path = Path(path)
    return path.parent.parent if path.parent.name == GENERATIONS_DIR else path


def _schema(client: MilvusClient, description: str) -> CollectionSchema:
    DataType = load_pymilvus().DataType
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False, description=description)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("face_id", DataType.INT64)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=EMBEDDING_DIM)
    schema.add_field("born", DataType.INT64)
    schema.add_field("died", DataType.INT64)
    schema.add_field("path", DataType.VARCHAR, max_length=MAX_PATH)
    schema.add_field("time", DataType.DOUBLE)
    schema.add_field("kind", DataType.VARCHAR, max_length=16)
    return schema


def open_collection(settings: MilvusSettings, data_dir: Path, *, create: bool) -> tuple[Collection, bool]:
    """This data directory's collection, and whether it was just created.
    ``DATA_DIR/milvus.json`` and the collection's description hold the same
    random id, so that two data directories never share one collection:
    another index's collection is refused, and a missing one is created
    (``create``) or a ``StoreMismatchError``."""
    uri = resolved_uri(settings.uri, data_dir)
    conn = Connection.get(uri, settings.token)
    try:
        client = conn.client
        name = settings.collection
        identity_path = Path(data_dir) / IDENTITY_FILE
        recorded = _read_identity(identity_path)
        if client.has_collection(name):
            description = client.describe_collection(name).get("description", "")
            theirs = description.removeprefix("facesearch:") if description.startswith("facesearch:") else None
            if recorded is None or theirs is None or theirs != recorded.get("id"):
                raise StoreError(
                    f"the Milvus collection {name} at {_display(uri)} holds another index's faces (or "
                    f"{identity_path} is lost): set another milvus.collection, or drop that collection"
                )
            client.load_collection(name)
            return Collection(conn, name, theirs), False
        if not create:
            raise StoreMismatchError(
                f"the Milvus collection {name} is missing at {_display(uri)}: rebuild it from the metadata "
                f"(no photo is re-encoded) with `facesearch repair --data-dir {data_dir}`"
            )
        identity = uuid.uuid4().hex
        index = client.prepare_index_params()
        index.add_index(field_name="vec", index_type="FLAT", metric_type="L2")
        client.create_collection(
            name, schema=_schema(client, f"facesearch:{identity}"), index_params=index, consistency_level="Strong",
        )
        client.load_collection(name)
        atomic_write_bytes(identity_path, json.dumps(
            {"collection": name, "id": identity, "uri": _display(uri)}, indent=2).encode() + b"\n")
        return Collection(conn, name, identity), True
    except BaseException:
        conn.release()
        raise


def _read_identity(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path} ({exc})") from None
    return value if isinstance(value, dict) else None


def _display(uri: str) -> str:
    """An address without credentials, for messages and files."""
    return re.sub(r"//[^/@]*@", "//", uri)


def _query_all(collection: Collection, expr: str, fields: list[str]) -> Iterator[list[dict[str, Any]]]:
    """Every row matching ``expr``, in batches (``query`` alone stops at
    16,383 rows without saying so)."""
    iterator = collection.client.query_iterator(
        collection.name, batch_size=10_000, filter=expr, output_fields=fields
    )
    try:
        while batch := iterator.next():
            yield batch
    finally:
        iterator.close()


def _and(*parts: str) -> str:
    return " and ".join(f"({p})" for p in parts if p)


def collect_garbage(settings: MilvusSettings, data_dir: Path, *, purge: bool = False) -> int:
    """Delete the rows no generation left on disk can see (after a publish;
    an erasure's publish leaves one generation, so its faces' rows go), and
    with ``purge`` have their bytes rewritten away (``Connection.purge``).
    Rows born after the newest published generation are kept: they belong
    to a reindex that may be running. Returns the rows deleted."""
    data_dir = Path(data_dir)
    unseen: list[str] = []
    newest = -1
    for path in sorted((data_dir / GENERATIONS_DIR).glob("g??????")):
        manifest = read_manifest(path / MANIFEST_FILE) or {}
        number = generation_number(path.name)
        newest = max(newest, number)
        milvus = manifest.get("milvus") if manifest.get("backend") == "milvus" else None
        if isinstance(milvus, dict):  # the rows it does not see (Milvus Lite has no `not`)
            floor = int(milvus["floor"])
            unseen.append(f"(born < {floor} or born > {number} or died <= {number})")
    if newest < 0 or not (data_dir / IDENTITY_FILE).exists():
        return 0
    collection, _ = open_collection(settings, data_dir, create=False)
    try:
        expr = " and ".join([f"born <= {newest}", *unseen])
        before = _count(collection, expr)
        if before:
            collection.client.delete(collection.name, filter=expr)
        if purge:
            collection.conn.purge(collection.name)
        return before
    except load_pymilvus().MilvusException as exc:
        raise StoreError(f"Milvus refused to delete old rows ({exc})") from None
    finally:
        collection.conn.release()


def _count(collection: Collection, expr: str) -> int:
    rows = collection.client.query(collection.name, filter=expr, output_fields=["count(*)"])
    return int(rows[0]["count(*)"]) if rows else 0


# -- the store -------------------------------------------------------------


class MilvusStore(MetadataStore, FaceStore):
    """One generation: its SQLite metadata in ``data_dir`` and the rows of
    this data directory's Milvus collection it sees. Open with
    ``MilvusStore.open``."""

    backend = "milvus"

    def __init__(self, data_dir: Path, db: MetadataDB, manifest: dict[str, Any], collection: Collection,
                 generation: int, floor: int, settings: MilvusSettings, readonly: bool) -> None:
        super().__init__(data_dir, db, manifest)
        self.collection = collection
        self.generation = generation
        self.floor = floor
        self.settings = settings
        self.readonly = readonly
        self._filter = visible(generation, floor)
        self._pending_add: set[int] = set()
        self._pending_remove: set[int] = set()
        self._count: int | None = None
        self._closed = False

    # -- opening -----------------------------------------------------------

    @classmethod
    def open(cls, data_dir: Path | str, settings: MilvusSettings, *, readonly: bool = False,
             repair: bool = False) -> MilvusStore:
        """Open (or, when writable, create) the generation in ``data_dir``.
        Readers need its rows to match its metadata (``StoreMismatchError``
        naming `facesearch repair` otherwise); a writer with ``repair``
        reconciles them."""
        data_dir = Path(data_dir).expanduser().resolve()
        db_path = data_dir / DB_FILE
        if readonly and not db_path.exists():
            raise StoreError(f"no index in {data_dir}: run `facesearch index --data-dir {data_dir} PATH...` first")
        manifest = read_manifest(data_dir / MANIFEST_FILE) or {}
        ours = manifest.get("backend") == "milvus" and isinstance(manifest.get("milvus"), dict)
        if readonly and manifest and not ours:
            raise StoreError(
                f"the index in {data_dir} keeps its vectors in {manifest.get('backend', 'faiss')}, not in Milvus: "
                "run `facesearch index` with store.backend = \"milvus\" once to move them (no photo is re-encoded), "
                "or set store.backend back"
            )
        number = generation_number(data_dir.name) if data_dir.parent.name == GENERATIONS_DIR else 0
        generation = max(number, 0)
        db = open_db(data_dir, readonly=readonly)
        try:
            collection, created = open_collection(settings, data_root(data_dir), create=not readonly)
        except BaseException:
            db.close()
            raise
        recorded = manifest.get("milvus") if ours else None
        if recorded and recorded.get("id") != collection.identity:
            recorded = None  # the collection was made again: every row is rebuilt
        if readonly and recorded is None:
            collection.conn.release()
            db.close()
            raise StoreMismatchError(
                f"the Milvus collection {collection.name} was made again since generation {data_dir.name} was "
                f"published: rebuild it from the metadata with `facesearch repair --data-dir {data_root(data_dir)}`"
            )
        floor = int(recorded["floor"]) if recorded and not created else generation
        if not readonly:
            for stale in FAISS_FILES:  # copied from a FAISS generation being moved into Milvus
                (data_dir / stale).unlink(missing_ok=True)
        store = cls(data_dir, db, manifest, collection, generation, floor, settings, readonly)
        try:
            if readonly or not repair:
                problem = store.consistency_problem()
                if problem:
                    raise StoreMismatchError(
                        f"the index in {data_dir} is inconsistent: {problem}. Rebuild its Milvus rows from the "
                        f"metadata (no photo is re-encoded) with `facesearch repair --data-dir {data_root(data_dir)}`"
                    )
            else:
                fresh = (recorded or {}).get("generation") != generation
                if fresh:
                    store.start_fresh()
                changed = store.reconcile()
                if changed:
                    store.repaired = f"{changed} Milvus rows disagreed with the metadata"
                    log.warning("repaired %s: %s", data_dir, store.repaired)
                if changed or fresh:
                    store._save()
            return store
        except BaseException:
            store.close()
            raise

    def consistency_problem(self) -> str | None:
        milvus = self.count()
        db_count = self.db.face_count()
        if milvus != db_count:
            return f"the Milvus collection holds {milvus} faces of this generation but the metadata holds {db_count}"
        if self.manifest and self.manifest.get("faces") != db_count:
            return f"the manifest says {self.manifest.get('faces')} faces but the metadata holds {db_count}"
        return None

    def start_fresh(self) -> None:
        """Before a generation's first write: undo what abandoned reindexes
        left for it or later ones (rows born then, ``died`` marks set then).
        Published generations are older, so they see no difference."""
        client, name = self.collection.client, self.collection.name
        client.delete(name, filter=f"born >= {self.generation}")
        for batch in _query_all(self.collection, f"died >= {self.generation} and died < {ALIVE}", ROW_FIELDS):
            client.upsert(name, [_plain({**r, "died": ALIVE}) for r in batch])

    def reconcile(self) -> int:
        """Make the rows this generation sees exactly its metadata's faces
        (id, path, time, kind): rows of faces it lacks are retired, faces
        without a row get one. Returns the number of rows changed."""
        rows: dict[int, tuple[str, float, str]] = {}  # face id -> its row's path, time, kind
        stale: list[int] = []
        for batch in _query_all(self.collection, self._filter, ["pk", "face_id", "path", "time", "kind"]):
            for row in batch:
                face_id = int(row["face_id"])
                if face_id in rows:
                    stale.append(face_id)
                rows[face_id] = (row["path"], row["time"], row["kind"])
        wrong: set[int] = set(stale)
        missing: list[int] = []
        for part in self.db.vector_rows(embeddings=False):
            for face_id, path, time, kind in zip(part.ids.tolist(), part.paths, part.times, part.kinds):
                have = rows.pop(face_id, None)
                if have is None:
                    missing.append(face_id)
                elif have[0] != path or have[2] != kind or not _same(have[1], time):
                    wrong.add(face_id)
        wrong.update(rows)  # rows of faces the metadata does not hold
        self._retire(sorted(wrong))
        self._write(sorted(wrong - set(rows)) + missing)
        self._count = None
        return len(wrong) + len(missing)

    def rebuild_index(self) -> int:
        """Rebuild this generation's rows from the metadata (``repair``)."""
        self.reconcile()
        return self.count()

    # -- reading -----------------------------------------------------------

    def count(self) -> int:
        self._settle()
        if self._count is None or not self.readonly:
            self._count = _count(self.collection, self._filter)
        return self._count

    @property
    def index_type(self) -> str:
        return "Milvus FLAT"

    @property
    def search_description(self) -> str:
        return f"exact (Milvus FLAT, collection {self.collection.name})"

    def prepare_search(self, index_settings: IndexSettings) -> None:
        """Milvus searches its FLAT index exactly; the FAISS index settings
        do not apply."""
        if index_settings.search == "approximate":
            log.info("index.search = approximate does not apply to Milvus: its FLAT index is searched exactly")

    def search(self, x: np.ndarray, k: int, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` by squared L2, exact (FLAT); FAISS's padding past the
        end (id -1, the largest float32). Milvus returns at most 16,384
        neighbours: past that, the rest is padding."""
        x = _matrix(x)
        if k <= 0:
            raise ValueError("k must be positive")
        self._settle()
        distances = np.full((len(x), k), np.finfo(np.float32).max, dtype=np.float32)
        ids = np.full((len(x), k), -1, dtype=np.int64)
        for start in range(0, len(x), 256):
            found = self._search(x[start : start + 256], min(k, SEARCH_CAP), {})
            for row, hits in enumerate(found, start):
                d, i = _hits(hits)
                distances[row, : len(d)] = d
                ids[row, : len(i)] = i
        return distances, ids

    def range_search(self, x: np.ndarray, radius_sq: float,
                     where: FaceFilter | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every face within squared L2 ``radius_sq`` (exclusive, as FAISS)
        and matching ``where`` (pushed down into Milvus where the filter
        language can say it, else checked against the metadata)."""
        x = _matrix(x)
        self._settle()
        expr, complete = pushed_down(where)
        lims = [0]
        all_d: list[np.ndarray] = []
        all_i: list[np.ndarray] = []
        for query in x:
            d, i = self._range_one(query, float(radius_sq), expr)
            if where is not None and not complete and len(i):
                keep = self.matching(i, where)
                d, i = d[keep], i[keep]
            all_d.append(d)
            all_i.append(i)
            lims.append(lims[-1] + len(i))
        if not all_i:
            return np.zeros(1, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64)
        return np.asarray(lims, dtype=np.int64), np.concatenate(all_d), np.concatenate(all_i)

    def vectors_of(self, face_ids: np.ndarray) -> np.ndarray:
        """From the metadata (the same float32 values Milvus holds)."""
        wanted = np.asarray(face_ids, dtype=np.int64).reshape(-1)
        found: dict[int, np.ndarray] = {}
        for batch in self.db.vector_rows(wanted.tolist()):
            found.update(zip(batch.ids.tolist(), batch.x))
        missing = [i for i in wanted.tolist() if i not in found]
        if missing:
            raise KeyError(f"faces not in the index: {missing[:5]}")
        if not len(wanted):
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        return np.stack([found[i] for i in wanted.tolist()])

    def _search(
        self, x: np.ndarray, limit: int, params: dict[str, float], expr: str = ""
    ) -> list[list[dict[str, Any]]]:
        hits: list[list[dict[str, Any]]] = self.collection.client.search(
            self.collection.name, data=[q.tolist() for q in x], limit=limit, anns_field="vec",
            filter=_and(self._filter, expr), output_fields=[],
            search_params={"metric_type": "L2", "params": params},
        )
        return hits

    def _range_one(self, query: np.ndarray, radius_sq: float, expr: str) -> tuple[np.ndarray, np.ndarray]:
        """One query's hits: one search when they are fewer than the cap,
        else paged (``milvus.range_pages``)."""
        first = self._search(query[None, :], SEARCH_CAP, {"radius": radius_sq}, expr)[0]
        if len(first) < SEARCH_CAP:
            return _hits(first)
        if self.settings.range_pages == "iterator":
            try:
                return self._iterate(query, radius_sq, expr)
            except Exception as exc:  # servers' iterators have had bugs; bands only need plain searches
                log.warning("Milvus's search iterator failed (%s); paging by distance bands", exc)
        return self._bands(query, radius_sq, expr, first)

    def _iterate(self, query: np.ndarray, radius_sq: float, expr: str) -> tuple[np.ndarray, np.ndarray]:
        iterator = self.collection.client.search_iterator(
            self.collection.name, data=[query.tolist()], batch_size=SEARCH_CAP, anns_field="vec",
            filter=_and(self._filter, expr), output_fields=[],
            search_params={"metric_type": "L2", "params": {"radius": radius_sq}},
        )
        found: dict[int, float] = {}
        try:
            while batch := iterator.next():
                for hit in batch:
                    found.setdefault(int(hit["id"]), float(hit["distance"]))
        finally:
            iterator.close()
        return _from_dict(found, radius_sq)

    def _bands(
        self, query: np.ndarray, radius_sq: float, expr: str, first: list[dict[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Page by distance: each search returns the nearest hits at or
        beyond the farthest distance the previous one reached (Milvus's
        ``range_filter <= d < radius``); hits at exactly that distance come
        twice and are counted once."""
        found = {int(h["id"]): float(h["distance"]) for h in first}
        low = max(found.values())
        while True:
            page = self._search(query[None, :], SEARCH_CAP, {"radius": radius_sq, "range_filter": low}, expr)[0]
            for hit in page:
                found.setdefault(int(hit["id"]), float(hit["distance"]))
            if len(page) < SEARCH_CAP:
                return _from_dict(found, radius_sq)
            farthest = max(float(h["distance"]) for h in page)
            if farthest <= low:
                raise StoreError(f"more than {SEARCH_CAP} faces lie at exactly one distance: cannot page past them")
            low = farthest

    # -- writing -----------------------------------------------------------

    def put_file(self, record: FileRecord, faces: list[NewFace]) -> tuple[int, int]:
        faces = self._not_erased(record.content_hash, faces)
        new_ids, removed = self.db.put_file(record, faces)
        self._removing(removed)
        self._pending_add.update(new_ids)
        return len(new_ids), len(removed)

    def add_faces(self, path: str, content_hash: str, faces: list[NewFace]) -> list[int]:
        new_ids = self.db.add_faces(path, content_hash, self._not_erased(content_hash, faces))
        self._pending_add.update(new_ids)
        return new_ids

    def move_file(self, old_path: str, new_path: str, size: int, mtime_ns: int) -> int:
        """The faces keep their ids; their rows are written again with the
        new path (the published generation keeps the old rows)."""
        ids = self.db.face_ids_of(old_path)
        count = self.db.move_file(old_path, new_path, size, mtime_ns)
        self._pending_remove.update(ids)
        self._pending_add.update(ids)
        return count

    def remove_file(self, path: str) -> int:
        removed = self.db.remove_file(path)
        self._removing(removed)
        return len(removed)

    def erase_faces(self, face_ids: list[int], *, remember: bool = True) -> list[tuple[int, str]]:
        """The rows are retired here and deleted when the erasure's
        generation is published alone (``collect_garbage``)."""
        erased = self.db.erase_faces(face_ids, remember=remember)
        self._removing([face_id for face_id, _ in erased])
        return erased

    def _removing(self, ids: list[int]) -> None:
        self._pending_add.difference_update(ids)
        self._pending_remove.update(ids)

    def checkpoint(self, **manifest_extra: object) -> None:
        """SQLite first, then Milvus: Milvus never holds a face the metadata
        may yet lose; a kill between the two leaves rows missing, which the
        next writer's reconcile adds."""
        self.db.commit()
        self._flush()
        self.manifest.update(manifest_extra)
        self._save()

    def plan_search(self, index_settings: IndexSettings) -> None:
        """Nothing to plan: Milvus searches its FLAT index exactly."""

    def seal(self, **manifest_extra: object) -> None:
        """The last checkpoint before publishing (no approximate index:
        Milvus searches FLAT)."""
        self.manifest["ann"] = None
        self.checkpoint(**manifest_extra)
        self.db.seal()

    def _settle(self) -> None:
        """Before a writer counts or searches: its changes committed and in
        Milvus (only committed faces may reach Milvus)."""
        if not self.readonly and (self._pending_add or self._pending_remove):
            self.db.commit()
            self._flush()

    def _flush(self) -> None:
        """Buffered changes into Milvus; only after they are committed."""
        if self.readonly or not (self._pending_add or self._pending_remove):
            return
        removing, adding = sorted(self._pending_remove), sorted(self._pending_add)
        self._retire(removing)
        self._write(adding)
        self._pending_remove.clear()
        self._pending_add.clear()
        self._count = None

    def _retire(self, face_ids: list[int]) -> None:
        """This generation stops seeing these faces: rows born in it are
        deleted, older ones get ``died`` = this generation."""
        client, name = self.collection.client, self.collection.name
        for start in range(0, len(face_ids), ID_BATCH):
            chunk = face_ids[start : start + ID_BATCH]
            rows = client.query(name, filter=_and(self._filter, f"face_id in {chunk}"), output_fields=ROW_FIELDS)
            own = [int(r["pk"]) for r in rows if int(r["born"]) == self.generation]
            older = [{**r, "died": self.generation} for r in rows if int(r["born"]) != self.generation]
            if own:
                client.delete(name, ids=own)
            if older:
                client.upsert(name, [_plain(r) for r in older])

    def _write(self, face_ids: list[int]) -> None:
        """Rows born in this generation for these faces, from the metadata.
        Inserted, not upserted (an upsert looks for the key first: on Milvus
        Lite 16k rows/s become 2k at 1M rows): no such row can exist, since a
        face's row born here is deleted when it is retired, ``start_fresh``
        deletes what abandoned runs wrote, and only committed faces are ever
        written (a kill cannot give their ids to other faces). Should one be
        there all the same, ``reconcile`` finds the face twice and mends it."""
        client, name = self.collection.client, self.collection.name
        for batch in self.db.vector_rows(face_ids, batch=WRITE_BATCH):
            rows = [
                {"pk": (self.generation << PK_SHIFT) | face_id, "face_id": face_id, "vec": vec.tolist(),
                 "born": self.generation, "died": ALIVE, "path": path, "time": time, "kind": kind}
                for face_id, vec, path, time, kind in zip(batch.ids.tolist(), batch.x, batch.paths, batch.times,
                                                          batch.kinds)
            ]
            for start in range(0, len(rows), WRITE_BATCH):
                client.insert(name, rows[start : start + WRITE_BATCH])

    def _save(self) -> None:
        self.manifest.update(
            format_version=FORMAT_VERSION,
            model=MODEL_NAME,
            dimension=EMBEDDING_DIM,
            index_type=self.index_type,
            metric="L2",
            faces=self.count(),
            photos=self.db.file_count(),
            updated_at=utc_now(),
            backend="milvus",
            milvus={"collection": self.collection.name, "id": self.collection.identity, "floor": self.floor,
                    "generation": self.generation, "uri": _display(self.collection.conn.uri)},
        )
        self._write_manifest()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            super().close()
        finally:
            self.collection.conn.release()


def _matrix(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != EMBEDDING_DIM:
        raise ValueError(f"expected vectors of {EMBEDDING_DIM} values, got shape {x.shape}")
    return x


def _hits(hits: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    d = np.fromiter((h["distance"] for h in hits), dtype=np.float32, count=len(hits))
    i = np.fromiter((int(h["id"]) & FACE_ID_MASK for h in hits), dtype=np.int64, count=len(hits))
    return d, i


def _from_dict(found: dict[int, float], radius_sq: float) -> tuple[np.ndarray, np.ndarray]:
    pairs = sorted((d, pk & FACE_ID_MASK) for pk, d in found.items() if d < radius_sq)
    return (np.array([p[0] for p in pairs], dtype=np.float32), np.array([p[1] for p in pairs], dtype=np.int64))


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A queried row as an upsert wants it (plain values)."""
    return {"pk": int(row["pk"]), "face_id": int(row["face_id"]), "vec": [float(v) for v in row["vec"]],
            "born": int(row["born"]), "died": int(row["died"]), "path": row["path"], "time": float(row["time"]),
            "kind": row["kind"]}


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b
