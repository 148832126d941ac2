"""What checksums cost at 1M faces (``indexer.store.checksums``).

A synthetic generation of ``--faces`` faces (default 1,000,000; 5 a photo)
is built through the store's own code (``generations.begin``,
``EmbeddedStore``), each face with a 128-d embedding and a ~5 KB JPEG
thumbnail (noise at JPEG quality 85: the real model's thumbnails of
``tests/data`` average 4.9 KB), then published, and measured:

* publish: ``generations.publish`` in all, and the part of it that hashes
  every file into the manifest (``seal_manifest``), the files still in the
  page cache as a run leaves them;
* open, with the verified record: what ``serve``, each server worker and
  every writer pay before opening (``verify_generation``: a few ``stat``
  calls), beside the whole read-only open (``open_published``, which loads
  the FAISS file);
* open without the record (lost, or the data directory was copied): every
  file hashed once, then the record is written again;
* full verification (``facesearch verify``): every file hashed, with the
  files evicted from the page cache first (``posix_fadvise DONTNEED``: a
  cold read; the virtual disk's host may still cache) and again warm, and
  the whole command (checksums plus SQLite's ``quick_check`` of the
  metadata and annotations).

Needs ~2x the generation's size free while building (the SQLite write-ahead
log is checkpointed every 50k faces); the data is deleted at the end.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.verification [--faces 1000000] [--work-dir DIR]

Results: ``benchmarks/results/verification.json``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from application.integrity import check_data_dir
from benchmarks.common import now, print_table, write_results
from indexer.model import MODEL_NAME, Box
from indexer.store import EmbeddedStore, FileRecord, NewFace, generations, open_published
from indexer.store.checksums import verify_generation
from indexer.store.generations import current_dir
from indexer.store.sqlite_db import quick_check
from indexer.store.verified_record import RECORD_FILE

FACES_PER_PHOTO = 5
COMMIT_FACES = 50_000
THUMBNAILS = 64  # distinct thumbnails, cycled (SQLite stores each copy in full)
OPEN_REPEATS = 50


def thumbnails(rng: np.random.Generator) -> list[bytes]:
    """~5 KB JPEGs: 32x32 noise scaled to 96x96, quality 85."""
    out = []
    for _ in range(THUMBNAILS):
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        noise = Image.fromarray(pixels).resize((96, 96), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        noise.save(buffer, format="JPEG", quality=85)
        out.append(buffer.getvalue())
    return out


def build(data_dir: Path, faces: int, rng: np.random.Generator) -> generations.WorkInProgress:
    """A sealed, closed work in progress of ``faces`` faces, ready to publish."""
    jpegs = thumbnails(rng)
    wip = generations.begin(data_dir, full=False, key={"benchmark": "verification"})
    store = EmbeddedStore.open(wip.path)
    try:
        for photo, start in enumerate(range(0, faces, FACES_PER_PHOTO)):
            n = min(FACES_PER_PHOTO, faces - start)
            x = rng.normal(0.0, 0.12, (n, 128)).astype(np.float32)
            record = FileRecord(path=f"/cams/cam{photo % 20:02d}/{photo:08d}.jpg", size=1, mtime_ns=0,
                                content_hash=f"{photo:064x}", width=1920, height=1080, detection="{}",
                                model=MODEL_NAME)
            store.put_file(record, [NewFace(Box(10, 100 * j + 90, 100, 100 * j + 10), x[j],
                                            jpegs[(start + j) % THUMBNAILS]) for j in range(n)])
            if (start // COMMIT_FACES) != ((start + n) // COMMIT_FACES):
                store.db.commit()  # keeps the write-ahead log small
                print(f"  {start + n:,} faces", flush=True)
        store.seal(ann=None)
    finally:
        store.close()
    return wip


def timed_publish(data_dir: Path, wip: generations.WorkInProgress) -> tuple[float, float]:
    """(publish seconds, of which hashing into the manifest)."""
    original = generations.seal_manifest
    spent: list[float] = []

    def seal_manifest(path: Path):
        started = now()
        try:
            return original(path)
        finally:
            spent.append(now() - started)

    generations.seal_manifest = seal_manifest
    try:
        started = now()
        generations.publish(data_dir, wip)
        return now() - started, spent[0]
    finally:
        generations.seal_manifest = original


def evict(paths: list[Path]) -> None:
    """Drop the files' clean pages from the page cache (unprivileged)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def median_s(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = now()
        action()
        times.append(now() - started)
    return statistics.median(times)


def measure(work: Path, faces: int, seed: int) -> dict:
    data_dir = work / "index"
    rng = np.random.default_rng(seed)
    print(f"building {faces:,} faces in {data_dir} ...", flush=True)
    started = now()
    wip = build(data_dir, faces, rng)
    build_s = now() - started
    publish_s, checksums_s = timed_publish(data_dir, wip)
    generation = current_dir(data_dir)
    files = {p.name: p.stat().st_size for p in sorted(generation.iterdir())}
    total = sum(size for name, size in files.items() if name != "manifest.json")
    paths = [generation / name for name in files]

    def verify_open():
        assert verify_generation(generation, data_dir).ok

    open_record_s = median_s(verify_open, OPEN_REPEATS)
    hashed_at_open = verify_generation(generation, data_dir).hashed_bytes
    open_published_s = median_s(lambda: open_published(data_dir).close(), 3)
    (data_dir / RECORD_FILE).unlink()
    started = now()
    verify_open()
    open_no_record_s = now() - started
    evict(paths)
    started = now()
    assert verify_generation(generation, data_dir, full=True).ok
    full_cold_s = now() - started
    started = now()
    assert verify_generation(generation, data_dir, full=True).ok
    full_warm_s = now() - started
    quick_check_warm_s = median_s(lambda: quick_check(generation / "metadata.sqlite3"), 1)
    evict(paths)
    started = now()
    assert check_data_dir(data_dir).ok
    command_cold_s = now() - started
    return {
        "faces": faces, "files_bytes": files, "hashed_bytes": total, "build_s": build_s,
        "publish_s": publish_s, "publish_checksums_s": checksums_s,
        "open_verification_with_record_ms": open_record_s * 1000, "open_hashed_bytes_with_record": hashed_at_open,
        "open_published_s": open_published_s, "open_verification_without_record_s": open_no_record_s,
        "full_verification_cold_s": full_cold_s, "full_verification_warm_s": full_warm_s,
        "quick_check_metadata_warm_s": quick_check_warm_s, "verify_command_cold_s": command_cold_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--work-dir", type=Path, default=None, help="where the generation is built (a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facesearch-verification-", dir=args.work_dir) as tmp:
        r = measure(Path(tmp), args.faces, args.seed)
    gb = r["hashed_bytes"] / 1e9
    print_table(["file", "MB"], [[name, size / 1e6] for name, size in r["files_bytes"].items()],
                title=f"The generation: {r['faces']:,} faces (built in {r['build_s']:.0f} s)")
    ms = 1000.0
    rows = [
        ["publish, in all", r["publish_s"] * ms, "", "files in the page cache, as a run leaves them"],
        ["  of which checksums into the manifest", r["publish_checksums_s"] * ms, gb / r["publish_checksums_s"],
         "added by this change"],
        ["open: verification with the record", r["open_verification_with_record_ms"], "",
         f"median of {OPEN_REPEATS}; {r['open_hashed_bytes_with_record']} bytes hashed"],
        ["open: the whole read-only open", r["open_published_s"] * ms, "", "open_published, FAISS file loaded"],
        ["open: verification without the record", r["open_verification_without_record_s"] * ms,
         gb / r["open_verification_without_record_s"], "once, after the record is lost; warm cache"],
        ["facesearch verify: checksums, cold", r["full_verification_cold_s"] * ms,
         gb / r["full_verification_cold_s"], "page cache evicted first"],
        ["facesearch verify: checksums, warm", r["full_verification_warm_s"] * ms,
         gb / r["full_verification_warm_s"], ""],
        ["quick_check of metadata.sqlite3, warm", r["quick_check_metadata_warm_s"] * ms, "", ""],
        ["facesearch verify, all of it, cold", r["verify_command_cold_s"] * ms, "", "checksums + both quick_checks"],
    ]
    print_table(["what", "ms", "GB/s", "note"], rows, title=f"Checksums of {gb:.2f} GB of generation files")
    write_results("verification", r)


if __name__ == "__main__":
    main()
