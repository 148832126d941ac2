"""Bring the store up to date with photo folders: find what is new, changed
or gone, encode what must be, write it, and report what happened."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from tqdm import tqdm

from config.settings import DetectionSettings, Settings
from indexer.model import MODEL_NAME
from indexer.scanner import is_under, scan
from indexer.store import EmbeddedStore, FileRecord, StoreError
from indexer.store.metadata import utc_now
from indexer.worker import PhotoResult, init_worker, process_photo

log = logging.getLogger(__name__)


@dataclass
class IndexReport:
    """Summary of one run; the CLI prints it and ``--json`` emits it."""

    images_seen: int = 0
    images_indexed: int = 0
    images_unchanged: int = 0
    images_without_faces: int = 0
    images_removed: int = 0
    faces_added: int = 0
    faces_removed: int = 0
    faces_total: int = 0
    photos_total: int = 0
    workers: int = 1
    duration_s: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def detection_signature(settings: Settings) -> str:
    """The settings that decide which faces are found and their embeddings,
    as canonical JSON. Photos indexed under another signature are not mixed."""
    return json.dumps({"embedding_model": MODEL_NAME, **settings.detection.model_dump()}, sort_keys=True)


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


def worker_count(settings: Settings) -> int:
    return settings.indexer.workers or os.cpu_count() or 1


def index_paths(
    paths: Iterable[Path],
    settings: Settings,
    *,
    full: bool = False,
    progress: bool | None = None,
    on_result: Callable[[PhotoResult], None] | None = None,
) -> IndexReport:
    """Index every photo under ``paths`` into ``settings.data_dir``.

    New files are encoded; files whose size or mtime changed are hashed and
    re-encoded if their content changed; files under ``paths`` that are gone
    are removed. ``full`` forgets the whole index first. ``progress``: show a
    bar (default: when stderr is a terminal).
    """
    started = time.perf_counter()
    started_at = utc_now()
    roots = [str(Path(p).expanduser().resolve()) for p in paths]
    data_dir = Path(settings.data_dir).expanduser().resolve()
    signature = detection_signature(settings)
    report = IndexReport(workers=worker_count(settings))

    store = EmbeddedStore.open(data_dir, repair=True)
    try:
        if full:
            store.clear()
        elif store.photo_count() and store.manifest.get("detection") not in (None, signature):
            raise StoreError(
                "the index was built with other detection settings "
                f"({store.manifest.get('detection')}); mixing embeddings from two settings would make "
                "distances meaningless. Rerun with --full to rebuild it with the current settings."
            )
        known = store.file_states()
        jobs: list[tuple[str, int, int, str | None]] = []
        seen: set[str] = set()
        for entry in scan([Path(r) for r in roots], settings.indexer.extensions, exclude=[data_dir]):
            report.images_seen += 1
            seen.add(entry.path)
            state = known.get(entry.path)
            if state is not None and state.size == entry.size and state.mtime_ns == entry.mtime_ns:
                report.images_unchanged += 1
                continue
            jobs.append((entry.path, entry.size, entry.mtime_ns, state.content_hash if state else None))

        for path in known:
            if path not in seen and is_under(path, roots):
                report.faces_removed += store.remove_file(path)
                report.images_removed += 1

        checkpoint_every = settings.indexer.checkpoint_every
        pending = 0
        bar = tqdm(
            total=len(jobs), unit="photo", disable=not (sys.stderr.isatty() if progress is None else progress),
            file=sys.stderr,
        )
        with bar:
            for result in _results(jobs, settings, report.workers):
                _apply(store, result, signature, report)
                if on_result is not None:
                    on_result(result)
                bar.update(1)
                pending += 1
                if pending >= checkpoint_every:
                    store.checkpoint(detection=signature)
                    pending = 0
        report.faces_total = store.count()
        report.photos_total = store.photo_count()
        report.duration_s = round(time.perf_counter() - started, 3)
        store.record_run(started_at, report.to_dict())
        store.checkpoint(detection=signature)
        return report
    except BaseException:
        store.db.rollback()
        raise
    finally:
        store.close()


def _apply(store: EmbeddedStore, result: PhotoResult, signature: str, report: IndexReport) -> None:
    if result.error is not None:
        log.warning("skipped %s: %s", result.path, result.error)
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
    )
    added, removed = store.put_file(record, result.faces)
    report.images_indexed += 1
    report.faces_added += added
    report.faces_removed += removed
    if not result.faces:
        report.images_without_faces += 1
        log.info("no face in %s", result.path)


def _results(jobs: list[tuple[str, int, int, str | None]], settings: Settings, workers: int) -> Iterator[PhotoResult]:
    """Process jobs in this process (1 worker) or in a pool of processes.
    Processes, not threads: dlib's descriptor holds the GIL. The pool uses
    ``spawn`` so that no OpenMP state of the parent (FAISS) is forked."""
    if not jobs:
        return
    settings_json = settings.model_dump_json()
    if workers <= 1 or len(jobs) == 1:
        init_worker(settings_json)
        for job in jobs:
            yield process_photo(job)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(jobs)), initializer=init_worker, initargs=(settings_json,)) as pool:
        yield from pool.imap_unordered(process_photo, jobs, chunksize=1)
