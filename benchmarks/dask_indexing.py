"""Indexing LFW DevTrain on a Dask cluster of 2 local workers against the
local process pool of 2 workers, side by side in one run: the cost of
distribution, the throughput per worker, and what the coordinator (the
process that scans, plans and writes the index) spends per photo, which
bounds how many workers one coordinator can feed.

Both runs index the same photos into fresh data directories, one after the
other, with everything ``facesearch index`` does. The Dask run starts a
``dask scheduler`` and ``dask worker --nworkers 2 --nthreads 1`` as an
operator would, before the clock starts (the workers load the model at
their first photo, as the pool's processes do).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.dask_indexing [--limit 0]

Results: ``benchmarks/results/dask_indexing.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    DEFAULT_LFW,
    LFW_HINT,
    REPO_ROOT,
    lfw_photos,
    now,
    print_table,
    require_dir,
    spread_subset,
    write_results,
)
from benchmarks.indexing import symlink_tree
from config.settings import load_settings
from indexer.indexing import index_paths
from indexer.model import face_model


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start_cluster(work: Path, workers: int) -> tuple[str, list[subprocess.Popen]]:
    dask = str(Path(sys.executable).with_name("dask"))
    info = work / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [subprocess.Popen([dask, "scheduler", "--scheduler-file", str(info), "--port", "0", "--no-dashboard"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    while not info.exists():
        time.sleep(0.1)
    time.sleep(0.3)
    address = json.loads(info.read_text())["address"]
    procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", str(workers), "--nthreads", "1",
                                   "--no-dashboard"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL))
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(workers, timeout=120)
    return address, procs


def run(label: str, root: Path, data_dir: Path, indexer: dict) -> dict:
    settings = load_settings(data_dir=data_dir, indexer=indexer)
    started, cpu = now(), cpu_s()
    report = index_paths([root], settings, progress=False, model=face_model(settings.encoding))
    wall, coordinator = now() - started, cpu_s() - cpu
    photos = report.images_indexed
    return {"run": label, "photos": photos, "faces": report.faces_total, "wall_s": wall,
            "photos_per_s": photos / wall, "workers": report.workers,
            "photos_per_s_per_worker": photos / wall / max(1, report.workers),
            "coordinator_cpu_s": coordinator, "coordinator_ms_per_photo": 1000 * coordinator / max(1, photos),
            "errors": len(report.errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    parser.add_argument("--limit", type=int, default=0, help="photos (every N-th of the sorted list); 0: all")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    lfw = require_dir(args.lfw, "LFW DevTrain", LFW_HINT)
    work = Path(tempfile.mkdtemp(prefix="dask-indexing-"))
    root = lfw
    if args.limit:
        root = work / "photos"
        symlink_tree(spread_subset(lfw_photos(lfw), args.limit), lfw, root)
    rows = [run("local pool", root, work / "local", {"workers": args.workers})]
    address, procs = start_cluster(work, args.workers)
    try:
        rows.append(run("Dask cluster", root, work / "dask", {"scheduler": address}))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)
    local, dask = rows
    overhead = dask["wall_s"] / local["wall_s"] - 1
    ceiling = 1000 / dask["coordinator_ms_per_photo"]
    print_table(["run", "photos", "faces", "wall s", "photos/s", "workers", "photos/s/worker",
                 "coordinator CPU ms/photo"],
                [(r["run"], r["photos"], r["faces"], r["wall_s"], r["photos_per_s"], r["workers"],
                  r["photos_per_s_per_worker"], r["coordinator_ms_per_photo"]) for r in rows],
                title=f"LFW DevTrain, {args.workers} workers; distribution costs {100 * overhead:+.1f}% wall time; "
                      f"one coordinator absorbs ~{ceiling:,.0f} photos/s")
    write_results("dask_indexing", {"limit": args.limit, "runs": rows, "dask_overhead": overhead,
                                    "coordinator_photos_per_s_ceiling": ceiling})


if __name__ == "__main__":
    main()
