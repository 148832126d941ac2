"""What ``facesearch verify`` checks in a data directory, in full:

* every file of the published generation against the checksums in its
  manifest, each file hashed whole (no stat shortcut: this is what finds
  bit rot that changed no stat, ``indexer.store.verified_record``); the
  record of what was hashed is refreshed;
* SQLite's ``PRAGMA quick_check`` of the generation's metadata database
  (the one check a generation published before checksums gets) and of
  ``annotations.sqlite3``, which is in no generation and has no checksum (it is
  written all the time).

Cost: one read of every file plus the two quick_checks, which read every
page of the databases: at 1M faces (6.5 GB) 11.6 s of hashing from a cold
cache, 4.1 s warm, and 1.9 s of quick_check (``benchmarks/verification.py``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from indexer.people.annotations import ANNOTATIONS_FILE
from indexer.store.base import StoreError
from indexer.store.checksums import fix_hint, verify_generation
from indexer.store.generations import current_dir, current_name
from indexer.store.metadata_store import DB_FILE, MANIFEST_FILE
from indexer.store.sqlite_db import quick_check

ANNOTATIONS_FIX = (
    "it holds the names and corrections people typed in, which no index run rebuilds: restore it from a backup "
    "(the sqlite3 shell's `.recover` may save what is still readable)"
)


@dataclass(frozen=True)
class Problem:
    path: str  # under the data directory
    problem: str


@dataclass
class IntegrityReport:
    data_dir: str
    generation: str | None  # None: a data directory of the first layout
    checksums_recorded: bool
    files_checked: list[str] = field(default_factory=list)  # under the data directory
    databases_checked: list[str] = field(default_factory=list)
    damaged: list[Problem] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)  # what to run, one sentence each
    hashed_bytes: int = 0
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.damaged

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_data_dir(data_dir: Path) -> IntegrityReport:
    """Check the published generation of ``data_dir`` and its annotations;
    ``StoreError`` when there is no index."""
    started = time.perf_counter()
    data_dir = Path(data_dir).expanduser().resolve()
    generation = current_dir(data_dir)
    if generation is None:
        raise StoreError(f"no index in {data_dir}: run `facesearch index --data-dir {data_dir} PATH...` first")
    check = verify_generation(generation, data_dir, full=True)
    prefix = "" if generation == data_dir else f"{generation.relative_to(data_dir).as_posix()}/"
    report = IntegrityReport(
        data_dir=str(data_dir), generation=current_name(data_dir), checksums_recorded=check.recorded,
        files_checked=[prefix + name for name in check.checked], hashed_bytes=check.hashed_bytes,
        damaged=[Problem(prefix + d.name, d.problem) for d in check.damaged],
    )
    damaged = set(check.damaged_names)
    if MANIFEST_FILE not in damaged:  # else the manifest says nothing reliable and --full is the fix anyway
        problem = quick_check(generation / DB_FILE)
        report.databases_checked.append(prefix + DB_FILE)
        if problem and DB_FILE not in damaged:
            report.damaged.append(Problem(prefix + DB_FILE, f"SQLite's quick_check: {problem}"))
            damaged.add(DB_FILE)
    if damaged:
        report.fixes.append(fix_hint(frozenset(damaged), data_dir))
    annotations = data_dir / ANNOTATIONS_FILE
    if annotations.exists():
        report.databases_checked.append(ANNOTATIONS_FILE)
        problem = quick_check(annotations)
        if problem:
            report.damaged.append(Problem(ANNOTATIONS_FILE, f"SQLite's quick_check: {problem}"))
            report.fixes.append(f"{ANNOTATIONS_FILE}: {ANNOTATIONS_FIX}")
    report.duration_s = round(time.perf_counter() - started, 3)
    return report
