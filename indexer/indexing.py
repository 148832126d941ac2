"""Bring the store up to date with photo folders: find what is new, changed
or gone, encode what must be, write it, and report what happened."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from config.settings import DetectionSettings, Settings
from indexer.drawing import redrawn
from indexer.hashing import file_hash
from indexer.model import MODEL_NAME, FaceModel
from indexer.people.annotations import ANNOTATIONS_FILE, AnnotationsDB, highest_annotated_face
from indexer.scanner import ScannedFile, is_under, scan
from indexer.store import FaceStore, FileRecord, StoreError, after_publish, generations, open_published, open_store
from indexer.store.ann import AnnPlan
from indexer.store.backends import connection_held
from indexer.store.checksums import FILES_KEY, VECTOR_FILES, require_intact
from indexer.store.file_modes import private_dir, tighten
from indexer.store.generations import IndexLock, current_dir, current_name
from indexer.store.metadata import FileState, utc_now
from indexer.store.metadata_store import MANIFEST_FILE, MetadataStore, read_manifest
from indexer.store.runs import append_run
from indexer.worker import PhotoResult, init_worker, process_file

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 0.5  # how often a run says how far it is, at most


@dataclass
class IndexReport:
    """Summary of one run; the CLI prints it and ``--json`` emits it."""

    images_seen: int = 0
    images_indexed: int = 0
    images_unchanged: int = 0
    images_without_faces: int = 0
    images_removed: int = 0
    images_moved: int = 0
    faces_added: int = 0
    faces_removed: int = 0
    faces_total: int = 0
    photos_total: int = 0
    workers: int = 1  # processes that took part: local ones, or the Dask workers that processed a file
    scheduler: str | None = None  # the Dask scheduler's address, when the work went to a cluster
    duration_s: float = 0.0
    generation: str | None = None  # the published generation after the run
    published: bool = False  # whether this run published it
    # The generation's approximate index for top-k searches (factory, faces,
    # trained_faces: the size its lists were trained at), None: exact search.
    approximate_index: dict | None = None
    # What recognition of named people did after the run (indexer.people.recognition:
    # evaluated, suggested, ...), None when it had nothing to do, {"error": ...}
    # when it failed (the index was published all the same).
    recognition: dict | None = None
    # Corrected faces that got new ids (re-encoded: --full) and kept their people.
    faces_carried_over: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)  # the folders indexed (a reindex from the index page takes them)
    # A video's sampled frames the detector searched, and those motion gating spared (video.motion_gating).
    video_frames_searched: int = 0
    video_frames_skipped: int = 0
    detector: str = ""  # what found the faces: the settings', or the one the index was built with (kept_detector)

    def to_dict(self) -> dict:
        return asdict(self)


def detection_signature(settings: Settings) -> str:
    """The settings that decide which faces are found and their embeddings,
    as canonical JSON. Photos indexed under another signature are not mixed.
    The default ``upsample_policy`` ("fixed") is left out, so that indexes
    made before the policy existed keep their signature; so is the second
    pass, which only adds faces, encoded the same way, to photos where the
    first found none."""
    detection = settings.detection.model_dump(exclude={"second_pass", "second_pass_max_pixels"})
    if detection["upsample_policy"] == "fixed":
        del detection["upsample_policy"]
    return json.dumps({"embedding_model": MODEL_NAME, **detection}, sort_keys=True)


def detection_from_signature(signature: object) -> DetectionSettings | None:
    """The detection settings an index was built with (from its manifest), or
    None when the signature is missing or unreadable."""
    if not isinstance(signature, str):
        return None
    try:
        data = json.loads(signature)
        data.pop("embedding_model", None)
        return DetectionSettings(**data)
    except (ValueError, TypeError, AttributeError):  # pydantic's ValidationError is a ValueError
        return None


def kept_detector(settings: Settings, published: Path | None) -> Settings:
    """``settings`` with the detector the ``published`` generation was
    built with, when ``detection.model`` is the default, not set: an index
    keeps its detector (its embeddings are not mixed with another's) until
    ``index --full`` rebuilds it with the default. Set explicitly, a
    different detector is refused as any other detection change is."""
    if "model" in settings.detection.model_fields_set or published is None:
        return settings
    built = built_with(published)
    if built is None or built.model == settings.detection.model:
        return settings
    detection = settings.detection.model_copy(update={"model": built.model})
    return settings.model_copy(update={"detection": detection})


def built_with(generation: Path) -> DetectionSettings | None:
    """The detection settings a generation's photos were indexed with (None
    for an empty or unreadable one)."""
    return detection_from_signature((read_manifest(generation / MANIFEST_FILE) or {}).get("detection"))


def worker_count(settings: Settings) -> int:
    return settings.indexer.workers or os.cpu_count() or 1


@dataclass
class Plan:
    """What a run must do, from the stored file states and a scan."""

    jobs: list[tuple[str, int, int, str | None]] = field(default_factory=list)
    moves: list[tuple[str, str, int, int]] = field(default_factory=list)  # old path, new path, size, mtime
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    kept_empty_roots: dict[str, int] = field(default_factory=dict)  # root -> indexed photos kept

    @property
    def empty(self) -> bool:
        return not (self.jobs or self.moves or self.removed)


def plan_changes(
    known: dict[str, FileState], entries: list[ScannedFile], roots: list[str], allow_empty: bool = False
) -> Plan:
    """Compare a scan of ``roots`` with the stored files: unchanged (same
    size and mtime: skipped on the stat alone), to (re)encode (new, or size
    or mtime changed: the worker hashes it first and re-encodes only a new
    content), moved (a new path whose content hash is that of a stored file
    gone from its path: re-pathed, not re-encoded) and removed. A root with
    no photo left at all looks like an unmounted disk, not a deletion: its
    indexed photos are kept (listed in ``kept_empty_roots``) unless
    ``allow_empty``."""
    plan = Plan()
    seen: set[str] = set()
    new: list[ScannedFile] = []
    for entry in entries:
        seen.add(entry.path)
        state = known.get(entry.path)
        if state is None:
            new.append(entry)
        elif state.size == entry.size and state.mtime_ns == entry.mtime_ns:
            plan.unchanged += 1
        else:
            plan.jobs.append((entry.path, entry.size, entry.mtime_ns, state.content_hash))
    gone = {path: known[path] for path in known if path not in seen and is_under(path, roots)}
    if not allow_empty:
        for root in roots:
            if not any(is_under(path, [root]) for path in seen):
                kept = [path for path in gone if is_under(path, [root])]
                if kept:
                    plan.kept_empty_roots[root] = len(kept)
                    for path in kept:
                        del gone[path]
    # A new file may be a gone one, moved: compare content hashes, reading
    # only new files whose size matches a gone file's.
    by_content: dict[tuple[int, str], list[str]] = {}
    for path, state in sorted(gone.items()):
        by_content.setdefault((state.size, state.content_hash), []).append(path)
    sizes = {size for size, _ in by_content}
    for entry in new:
        if entry.size in sizes:
            try:
                same = by_content.get((entry.size, file_hash(entry.path)[1]))
            except OSError:
                same = None
            if same:
                old = same.pop(0)
                del gone[old]
                plan.moves.append((old, entry.path, entry.size, entry.mtime_ns))
                continue
        plan.jobs.append((entry.path, entry.size, entry.mtime_ns, None))
    plan.removed = sorted(gone)
    return plan


def index_paths(
    paths: Iterable[Path],
    settings: Settings,
    *,
    full: bool = False,
    allow_empty: bool = False,
    model: FaceModel,
    progress: bool | None = None,
    on_result: Callable[[PhotoResult], None] | None = None,
) -> IndexReport:
    """Bring the index in ``settings.data_dir`` in line with the photos under
    ``paths`` and publish it as a new generation (``store/generations.py``),
    finding and encoding faces with ``model`` (in each worker process).

    New files are encoded; files whose size or mtime changed are hashed and
    re-encoded if their content changed (their old faces removed); moved or
    renamed files are re-pathed by content hash, keeping their face ids;
    files under ``paths`` that are gone are removed. ``full`` rebuilds from
    nothing. A run with nothing to change publishes nothing. Only one run at
    a time (``IndexBusyError`` otherwise); a killed run's work is resumed by
    the next run over the same folders and settings. A folder with no photo
    left keeps its indexed photos (an unmounted disk is not a deletion)
    unless ``allow_empty``, and says so in the report's errors. ``progress``:
    show a bar (default: when stderr is a terminal). The published generation
    is verified against its checksums first (``DamagedIndexError`` with the
    fix), except by ``full``, which reads nothing of it but the ids and
    erasures to carry over (the way out of a damaged metadata database). The
    data directory is made private on the way (``file_modes.tighten``).
    """
    started = time.perf_counter()
    started_at = utc_now()
    roots = [str(Path(p).expanduser().resolve()) for p in paths]
    data_dir = Path(settings.data_dir).expanduser().resolve()
    if not full:
        settings = kept_detector(settings, current_dir(data_dir))
    signature = detection_signature(settings)
    report = IndexReport(workers=0 if settings.indexer.scheduler else worker_count(settings),
                         scheduler=settings.indexer.scheduler or None)
    tighten(private_dir(data_dir))
    report.roots = roots
    report.detector = settings.detection.model
    with IndexLock(data_dir, command="facesearch index " + " ".join(roots)) as lock, \
            connection_held(data_dir, settings):
        published = current_dir(data_dir)
        if not full and published is not None:
            require_intact(published, data_dir)
        extensions = settings.indexer.extensions + settings.indexer.video_extensions
        entries = list(scan([Path(r) for r in roots], extensions, exclude=[data_dir],
                            on_skipped=lambda path, reason: _report_skipped(path, reason, report)))
        report.images_seen = len(entries)
        key = {"roots": roots, "detection": signature}
        base = _published_states(published, signature) if not full and published is not None else {}
        plan: Plan | None = None  # against the published generation, when the next one starts as its copy
        if not full and not generations.resumable(data_dir, full=full, key=key):
            plan = plan_changes(base, entries, roots, allow_empty)
            if plan.empty and published is not None and not _out_of_date(published, settings):
                report.approximate_index = (read_manifest(published / MANIFEST_FILE) or {}).get("ann")
                _report_kept(plan, report)
                _recognise(data_dir, settings, report, only_if_needed=True)
                _finish(data_dir, report, started, started_at, current_name(data_dir), published=False, base=base)
                return report
        wip = generations.begin(data_dir, full=full, key=key,
                                reserved_face_id=highest_annotated_face(data_dir) if full else 0)
        store = open_store(wip.path, settings, repair=True)
        try:
            if wip.resumed or plan is None:
                plan = plan_changes(store.file_states(), entries, roots, allow_empty)
            _report_kept(plan, report)
            _run(store, plan, settings, model, signature, report, progress, on_result, lock, _drawn(data_dir))
            report.faces_total = store.count()
            report.photos_total = store.photo_count()
            store.plan_search(settings.index)
            store.seal(detection=signature)
            report.approximate_index = store.manifest.get("ann")
        finally:
            store.close()
        name = generations.publish(data_dir, wip)
        after_publish(data_dir, settings)
        _recognise(data_dir, settings, report)
        _finish(data_dir, report, started, started_at, name, published=True)
        return report


def _drawn(data_dir: Path) -> dict[str, list[tuple[int, int, int, int]]]:
    """The faces people drew (``indexer.drawing``), by content hash: a
    file encoded again gets them again."""
    if not (data_dir / ANNOTATIONS_FILE).exists():
        return {}
    annotations = AnnotationsDB.open(data_dir)
    try:
        return annotations.drawn()
    finally:
        annotations.close()


def _recognise(data_dir: Path, settings: Settings, report: IndexReport, *, only_if_needed: bool = False) -> None:
    """After a run, under its lock: faces re-encoded with new ids keep their
    people (``indexer.people.carry_over``), then the new faces of the published
    index are attributed to named people (``indexer.people.recognition``).
    ``only_if_needed``: after a run that published nothing, only when a
    correction asked for recognition. A failure is logged and reported; the
    published index stands."""
    from indexer.people.carry_over import carry_over
    from indexer.people.recognition import recognise_index

    try:
        annotations = AnnotationsDB.open(data_dir)
        try:
            if only_if_needed:
                snapshot = annotations.recognition_input()
                if not settings.recognition.enabled or (snapshot.has_watermark and not snapshot.dirty):
                    return
            store = open_published(data_dir, settings)
            try:
                report.faces_carried_over = carry_over(store, annotations)
                if settings.recognition.enabled:
                    report.recognition = recognise_index(store, annotations, settings.recognition).to_dict()
            finally:
                store.close()
        finally:
            annotations.close()
    except (StoreError, sqlite3.Error, OSError) as exc:
        log.error("updating the people of the new index failed: %s", exc)
        report.recognition = {"error": str(exc)}


def _out_of_date(published: Path | None, settings: Settings) -> bool:
    """Whether the published generation records no checksums (published
    before them), keeps its vectors in another backend than
    ``store.backend``, or has an approximate index where the settings want
    none, or the other way round (a run with no photo to change still
    publishes a generation then: it records the checksums, moves the
    vectors or builds or drops that index)."""
    if published is None:
        return False
    manifest = read_manifest(published / MANIFEST_FILE)
    if not manifest:
        return False
    if FILES_KEY not in manifest:
        return True
    if manifest.get("backend", "faiss") != settings.store.backend:
        return True
    if settings.store.backend != "faiss":
        return False
    plan = AnnPlan.from_settings(settings.index)
    wanted = plan is not None and plan.fits(int(manifest.get("faces") or 0))
    return wanted != bool(manifest.get("ann"))


def repair_index(settings: Settings) -> int:
    """Rebuild the FAISS index and the manifest of the published generation
    from its metadata database (no photo is re-encoded) and publish the
    result as a new generation. Returns the number of faces. Damaged FAISS
    files (their checksums differ) are not copied, so never carried into
    the new generation; a damaged metadata database or manifest is refused
    (``DamagedIndexError`` naming ``index --full``): a repair would publish
    the damage under fresh checksums."""
    data_dir = Path(settings.data_dir).expanduser().resolve()
    tighten(data_dir)
    with IndexLock(data_dir, command="facesearch repair"):
        if current_dir(data_dir) is None:
            raise StoreError(f"no index in {data_dir}: nothing to repair; run `facesearch index`")
        try:
            wip = generations.begin(data_dir, full=False, key={"repair": True}, rebuilds=VECTOR_FILES)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"the metadata database in {data_dir} is damaged ({exc}); rebuild the index with "
                f"`facesearch index --full --data-dir {data_dir} PATH...`"
            ) from None
        store = open_store(wip.path, settings, repair=True)
        try:
            count = store.count() if store.repaired else store.rebuild_index()
            store.seal()
        finally:
            store.close()
        generations.publish(data_dir, wip)
        after_publish(data_dir, settings)
        return count


def _report_kept(plan: Plan, report: IndexReport) -> None:
    for root, count in plan.kept_empty_roots.items():
        message = (f"no photo found under it, but {count} indexed photos were: kept them (an unmounted disk?); "
                   "if they were deleted, rerun with --allow-empty")
        log.warning("%s: %s", root, message)
        report.errors.append({"path": root, "error": message})


def _report_skipped(path: str, reason: str, report: IndexReport) -> None:
    """A photo or video name the scan found that is not a regular file (a FIFO, a device)."""
    log.warning("skipped %s: %s", path, reason)
    report.errors.append({"path": path, "error": f"{reason}: skipped, never read"})


def _published_states(published: Path, signature: str) -> dict[str, FileState]:
    """The published generation's files, after refusing to mix embeddings of
    two detection settings (one open of the store for both). Read from the
    metadata alone: the vectors may be in another backend (being moved)."""
    store = MetadataStore.open_metadata(published)
    try:
        stored = store.manifest.get("detection")
        if store.photo_count() and stored not in (None, signature):
            raise StoreError(
                f"the index was built with other detection settings ({stored}); mixing embeddings from two "
                "settings would make distances meaningless. Rerun with --full to rebuild it with the current "
                "settings."
            )
        return store.file_states()
    finally:
        store.close()


def _run(
    store: FaceStore,
    plan: Plan,
    settings: Settings,
    model: FaceModel,
    signature: str,
    report: IndexReport,
    progress: bool | None,
    on_result: Callable[[PhotoResult], None] | None,
    lock: IndexLock,
    drawn: dict[str, list[tuple[int, int, int, int]]],
) -> None:
    report.images_unchanged += plan.unchanged
    for old, new, size, mtime_ns in plan.moves:
        store.move_file(old, new, size, mtime_ns)
        report.images_moved += 1
    for path in plan.removed:
        report.faces_removed += store.remove_file(path)
        report.images_removed += 1
    store.checkpoint(detection=signature)
    checkpoint_every = settings.indexer.checkpoint_every
    pending = 0
    bar = tqdm(
        total=len(plan.jobs), unit="photo", disable=not (sys.stderr.isatty() if progress is None else progress),
        file=sys.stderr,
    )
    said = 0.0
    lock.progress(0, len(plan.jobs))
    with bar:
        for done, result in enumerate(_results(plan.jobs, settings, model, report), start=1):
            if result.content_hash in drawn and not result.unchanged and result.error is None:
                result.faces += redrawn(result.path, result.content_hash, [f.box for f in result.faces],
                                        drawn[result.content_hash], model, settings)
            _apply(store, result, signature, report)
            if on_result is not None:
                on_result(result)
            bar.update(1)
            if time.monotonic() - said >= PROGRESS_EVERY_S:  # for running_index (the index page)
                lock.progress(done, len(plan.jobs))
                said = time.monotonic()
            pending += 1
            if pending >= checkpoint_every:
                store.checkpoint(detection=signature)
                pending = 0


def _finish(
    data_dir: Path,
    report: IndexReport,
    started: float,
    started_at: str,
    generation: str | None,
    *,
    published: bool,
    base: dict[str, FileState] | None = None,
) -> None:
    if base is not None:  # nothing changed: the totals are the published ones
        report.images_unchanged = report.images_seen
        report.photos_total = len(base)
        report.faces_total = sum(state.face_count for state in base.values())
    report.duration_s = round(time.perf_counter() - started, 3)
    report.generation = generation
    report.published = published
    append_run(data_dir, {"started_at": started_at, "finished_at": utc_now(), **report.to_dict()})


def _apply(store: FaceStore, result: PhotoResult, signature: str, report: IndexReport) -> None:
    if result.error is not None:
        log.info("skipped %s: %s", result.path, result.error)
        report.errors.append({"path": result.path, "error": result.error})
        return
    if result.unchanged:
        store.touch_file(result.path, result.size, result.mtime_ns)
        report.images_unchanged += 1
        return
    record = FileRecord(
        path=result.path,
        size=result.size,
        mtime_ns=result.mtime_ns,
        content_hash=result.content_hash,
        width=result.width,
        height=result.height,
        detection=signature,
        model=MODEL_NAME,
        taken_at=result.taken_at,
        kind=result.kind,
        duration_s=result.duration_s,
    )
    added, removed = store.put_file(record, result.faces)
    report.video_frames_searched += result.frames_searched
    report.video_frames_skipped += result.frames_skipped
    report.images_indexed += 1
    report.faces_added += added
    report.faces_removed += removed
    if not result.faces:
        report.images_without_faces += 1
        log.info("no face in %s", result.path)


def _results(jobs: list[tuple[str, int, int, str | None]], settings: Settings, model: FaceModel,
             report: IndexReport) -> Iterator[PhotoResult]:
    """Process jobs on a Dask cluster (``indexer.scheduler``: the report
    then counts the workers that took part), in this process (1 worker) or
    in a pool of processes. Processes, not threads: dlib's descriptor holds
    the GIL. The pool uses ``spawn`` so that no OpenMP state of the parent
    (FAISS) is forked."""
    if not jobs:
        return
    if settings.indexer.scheduler:
        from indexer.distributed import dask_results

        seen: set[str] = set()
        try:
            yield from dask_results(jobs, settings, model, seen)
        finally:
            report.workers = len(seen)
        return
    workers = report.workers
    settings_json = settings.model_dump_json()
    if workers <= 1 or len(jobs) == 1:
        init_worker(settings_json, model)
        for job in jobs:
            yield process_file(job)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(jobs)), initializer=init_worker, initargs=(settings_json, model)) as pool:
        yield from pool.imap_unordered(process_file, jobs, chunksize=1)
