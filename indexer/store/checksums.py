"""Checksums of a generation's files: recorded in its manifest when it is
published, verified whenever it is opened, so that a damaged index is
refused with its fix instead of being served (faces silently missing from
results, errors on thumbnails).

``seal_manifest`` (called by ``generations.publish``, which every writer
goes through: index runs, repairs, erasures) adds to ``manifest.json``:

* ``files``: ``{name: {"sha256": hex, "size": bytes}}`` for every other file
  of the generation (``faces.faiss``, ``faces.ann.faiss``,
  ``metadata.sqlite3``; with Milvus the vectors live outside the generation
  and only its own files are covered);
* ``manifest_sha256``: the SHA-256 of the manifest's canonical JSON (sorted
  keys, no spaces) without this field, so that a damaged or edited manifest
  is caught too.

``verify_generation`` checks a generation against its manifest. With
``full`` it hashes every file (``facesearch verify``); otherwise a file
whose stat is unchanged since its last full hash is taken from
``verified_record`` (a few ``stat`` calls: what ``serve``, each server
worker and every writer pay at open) and only the others are hashed. A
generation published before checksums existed has neither field: it opens
as before, and the next index run publishes one with them.

What a damage needs: ``faces.faiss`` and ``faces.ann.faiss`` are rebuilt
from the metadata by ``facesearch repair`` (which does not copy them);
``metadata.sqlite3`` and ``manifest.json`` by ``facesearch index --full``
only: a repair would publish the damage again under fresh checksums.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.store.atomic import atomic_write_bytes
from indexer.store.base import StoreError
from indexer.store.metadata_store import MANIFEST_FILE, read_manifest
from indexer.store.verified_record import Hashed, VerifiedRecord, stat_key

FILES_KEY = "files"
SELF_KEY = "manifest_sha256"
# The files ``facesearch repair`` rebuilds from the metadata
# (``embedded.INDEX_FILE``, ``ann.ANN_FILE``).
VECTOR_FILES = frozenset({"faces.faiss", "faces.ann.faiss"})


class DamagedIndexError(StoreError):
    """A generation's files do not match its manifest; the message names
    them and the fix."""


@dataclass(frozen=True)
class Damage:
    name: str  # the file's name in the generation
    problem: str  # in words


@dataclass
class GenerationCheck:
    """What ``verify_generation`` found. ``recorded``: whether the manifest
    holds checksums (a generation published before them has none)."""

    generation: Path
    recorded: bool
    damaged: list[Damage] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # names compared with their checksum
    hashed_bytes: int = 0  # read in full (the rest was vouched for by an unchanged stat)

    @property
    def ok(self) -> bool:
        return not self.damaged

    @property
    def damaged_names(self) -> frozenset[str]:
        return frozenset(d.name for d in self.damaged)


def sha256_file(path: Path) -> Hashed:
    """The SHA-256 of a file and its stat before reading it (a file changed
    while it is read has another stat afterwards: never vouched for)."""
    with open(path, "rb") as handle:
        before = stat_key(os.fstat(handle.fileno()))
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return Hashed(digest, before)


def canonical_digest(manifest: dict[str, Any]) -> str:
    """The SHA-256 of ``manifest``'s canonical JSON without ``SELF_KEY``."""
    body = {k: v for k, v in manifest.items() if k != SELF_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def seal_manifest(generation: Path) -> dict[str, Hashed]:
    """Record the checksum of every file of ``generation`` (a finished,
    closed work in progress) in its manifest, and the manifest's own;
    returns what was hashed, by file name. Costs one read of every file:
    5.6 s for a 1M-face generation of 6.5 GB still in the page cache
    (``benchmarks/verification.py``)."""
    path = Path(generation) / MANIFEST_FILE
    manifest = read_manifest(path) or {}
    hashed = {p.name: sha256_file(p) for p in sorted(Path(generation).iterdir())
              if p.is_file() and p.name != MANIFEST_FILE}
    manifest[FILES_KEY] = {name: {"sha256": h.sha256, "size": h.stat[0]} for name, h in hashed.items()}
    manifest[SELF_KEY] = canonical_digest(manifest)
    atomic_write_bytes(path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return hashed


def verify_generation(generation: Path, data_dir: Path, *, full: bool = False) -> GenerationCheck:
    """Check the files of ``generation`` (a directory under ``data_dir``)
    against its manifest: hashing each in full with ``full``, else only
    those whose stat changed since their last full hash (the record is
    updated with what was hashed)."""
    generation, data_dir = Path(generation), Path(data_dir)
    manifest, problem = _manifest(generation / MANIFEST_FILE)
    if problem:
        return GenerationCheck(generation, recorded=True, damaged=[Damage(MANIFEST_FILE, problem)])
    if FILES_KEY not in manifest and SELF_KEY not in manifest:
        return GenerationCheck(generation, recorded=False)
    files = manifest.get(FILES_KEY)
    if manifest.get(SELF_KEY) != canonical_digest(manifest) or files is None or not _well_formed(files):
        return GenerationCheck(generation, recorded=True, damaged=[
            Damage(MANIFEST_FILE, "its own checksum does not match: it was damaged or edited")])
    check = GenerationCheck(generation, recorded=True)
    record = VerifiedRecord(data_dir)
    hashed: dict[str, Hashed] = {}
    for name, expected in sorted(files.items()):
        path = generation / name
        relative = path.relative_to(data_dir).as_posix()
        try:
            info = path.stat()
        except FileNotFoundError:
            check.damaged.append(Damage(name, "missing"))
            continue
        check.checked.append(name)
        if info.st_size != expected["size"]:
            check.damaged.append(Damage(name, f"{info.st_size} bytes, the manifest says {expected['size']}"))
            continue
        digest = None if full else record.digest(relative, info)
        if digest is None:
            hashed[relative] = sha256_file(path)
            digest = hashed[relative].sha256
            check.hashed_bytes += info.st_size
        if digest != expected["sha256"]:
            check.damaged.append(Damage(name, "its SHA-256 differs from the manifest's"))
    record.remember(hashed)
    return check


def require_intact(generation: Path, data_dir: Path, *, tolerate: frozenset[str] = frozenset()) -> GenerationCheck:
    """``verify_generation``, raising ``DamagedIndexError`` (naming the
    files and the fix) unless every damaged file is in ``tolerate`` (a
    repair rebuilds the vector files, so it tolerates theirs)."""
    check = verify_generation(generation, data_dir)
    if not check.damaged_names <= tolerate:
        raise DamagedIndexError(damage_message(check, data_dir))
    return check


def damage_message(check: GenerationCheck, data_dir: Path) -> str:
    what = "; ".join(f"{d.name} ({d.problem})" for d in check.damaged)
    return f"the index in {check.generation} is damaged: {what}. {fix_hint(check.damaged_names, data_dir)}"


def fix_hint(damaged: frozenset[str], data_dir: Path) -> str:
    """What to run for these damaged generation files."""
    if damaged <= VECTOR_FILES:
        return (f"Rebuild the FAISS files from the metadata (no photo is re-encoded) with "
                f"`facesearch repair --data-dir {data_dir}`")
    return (f"The metadata and the manifest cannot be rebuilt from the other files (a repair would keep the damage): "
            f"rebuild the index with `facesearch index --full --data-dir {data_dir} PATH...`")


def _manifest(path: Path) -> tuple[dict[str, Any], str | None]:
    """The manifest, or the problem with it."""
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}, "missing"
    except (OSError, ValueError) as exc:
        return {}, f"unreadable: {exc}"
    return (manifest, None) if isinstance(manifest, dict) else ({}, "not a JSON object")


def _well_formed(files: object) -> bool:
    """``files`` maps plain file names (no folder) to a SHA-256 and a size."""
    return isinstance(files, dict) and all(
        isinstance(name, str) and name and "/" not in name and name not in (".", "..")
        and isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and isinstance(entry.get("size"), int)
        for name, entry in files.items()
    )
