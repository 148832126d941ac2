"""Reindexing on LFW DevTrain: what a rerun costs, and searches while a full
reindex runs.

Over a folder of symlinks to the 9,525 photos (so that photos can be
"changed" without touching the data set), with ``facesearch index`` as a
user runs it (a child process, 2 workers), one run after the other:

1. a full index from nothing;
2. a rerun with nothing changed (target: <= 5 s);
3. a rerun after 1% of the photos changed (their symlink replaced by a
   re-saved copy: new content, same faces; target: about 1% of run 1);
4. a rerun after 1% of the photos were renamed (recognised by content hash,
   nothing re-encoded);
5. ``facesearch serve`` (gunicorn, 2 workers) on the index while one client
   searches by embedding back to back: first for ``--quiet-s`` seconds with
   no reindex, then during a ``--full`` reindex (every face re-encoded and a
   new generation published), counting failed requests and the generation
   the server answers from.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.reindex [--limit 0] [--quiet-s 30]

Results: ``benchmarks/results/reindex.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import (
    DEFAULT_LFW,
    LFW_HINT,
    lfw_photos,
    now,
    percentile_ms,
    print_table,
    ratio,
    require_dir,
    spread_subset,
    verdict,
    write_results,
)
from benchmarks.search_latency import request, server
from indexer.store import EmbeddedStore

SEARCH_PATH = "/api/v1/search"
INDEX_PATH = "/api/v1/index"


def facesearch_index(data_dir: Path, photos: Path, *extra: str) -> tuple[float, dict]:
    """Run ``facesearch index --json`` in a child process: (seconds, its report)."""
    command = [str(Path(sys.executable).parent / "facesearch"), "index", "--data-dir", str(data_dir),
               "--workers", "2", "--json", *extra, str(photos)]
    started = now()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return now() - started, json.loads(done.stdout.strip().splitlines()[-1])


def link_photos(photos: list[Path], folder: Path) -> list[Path]:
    links = []
    for photo in photos:
        link = folder / photo.parent.name / photo.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(photo)
        links.append(link)
    return links


def change(links: list[Path], share: float) -> int:
    """Replace every (1/share)-th symlink by a re-saved copy of its photo."""
    chosen = links[:: round(1 / share)]
    for link in chosen:
        image = Image.open(link.resolve())
        link.unlink()
        image.save(link, format="JPEG", quality=90)
    return len(chosen)


def rename(links: list[Path], share: float) -> int:
    chosen = links[1 :: round(1 / share)]
    for link in chosen:
        link.rename(link.with_name("renamed_" + link.name))
    return len(chosen)


class Searcher(threading.Thread):
    """One client searching back to back; each result tagged with the phase
    it ran in and the generation the server answered from (polled)."""

    def __init__(self, port: int, bodies: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.port, self.bodies = port, bodies
        self.phase = "quiet"
        self.stop = threading.Event()
        self.results: list[tuple[str, float, bool]] = []
        self.generations: set[str] = set()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        i = 0
        while not self.stop.is_set():
            t0 = now()
            try:
                status, _ = request(conn, "POST", SEARCH_PATH, self.bodies[i % len(self.bodies)])
                ok = status == 200
            except OSError:
                ok = False
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.results.append((self.phase, now() - t0, ok))
            i += 1
            if i % 200 == 0:
                try:
                    status, data = request(conn, "GET", INDEX_PATH)
                    if status == 200:
                        self.generations.add(str(json.loads(data).get("generation")))
                except OSError:
                    pass

    def summary(self, phase: str) -> dict:
        rows = [(s, ok) for p, s, ok in self.results if p == phase]
        return {"requests": len(rows), "failed": sum(not ok for _, ok in rows),
                "p50_ms": percentile_ms([s for s, _ in rows], 50), "p99_ms": percentile_ms([s for s, _ in rows], 99)}


def search_bodies(data_dir: Path, count: int = 500) -> list[bytes]:
    store = EmbeddedStore.open_published(data_dir)
    try:
        _, _, x = store.all_embeddings()
    finally:
        store.close()
    rows = np.random.default_rng(0).choice(len(x), min(count, len(x)), replace=False)
    return [json.dumps({"embedding": [round(float(v), 6) for v in x[r]], "k": 10}).encode() for r in rows]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW DevTrain folder")
    parser.add_argument("--limit", type=int, default=0, help="photos (0 = all 9,525)")
    parser.add_argument("--quiet-s", type=float, default=30.0, help="seconds of searching with no reindex")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    lfw = require_dir(args.lfw, "the LFW DevTrain photos", LFW_HINT)
    photos = spread_subset(lfw_photos(lfw), args.limit)
    with tempfile.TemporaryDirectory(prefix="facesearch-reindex-") as tmp:
        folder, data_dir = Path(tmp) / "photos", Path(tmp) / "data"
        links = link_photos(photos, folder)
        runs = []
        seconds, report = facesearch_index(data_dir, folder)
        runs.append({"run": "full index from nothing", "seconds": seconds, **report})
        seconds, report = facesearch_index(data_dir, folder)
        runs.append({"run": "rerun, nothing changed", "seconds": seconds, **report})
        changed = change(links, 0.01)
        seconds, report = facesearch_index(data_dir, folder)
        runs.append({"run": f"rerun, {changed} photos changed (1%)", "seconds": seconds, **report})
        renamed = rename(links, 0.01)
        seconds, report = facesearch_index(data_dir, folder)
        runs.append({"run": f"rerun, {renamed} photos renamed (1%)", "seconds": seconds, **report})
        full_s = runs[0]["seconds"]
        print_table(
            ["run", "seconds", "share of full", "encoded", "moved", "removed", "faces +/-", "generation"],
            [[r["run"], r["seconds"], f"{r['seconds'] / full_s:.2%}", r["images_indexed"], r.get("images_moved", 0),
              r["images_removed"], f"+{r['faces_added']} / -{r['faces_removed']}", r.get("generation")]
             for r in runs],
            title=f"Reindexing {len(photos):,} photos (facesearch index, 2 workers)",
        )

        bodies = search_bodies(data_dir)
        with server(data_dir, 2, Path(tmp) / "server.log") as port:
            searcher = Searcher(port, bodies)
            searcher.start()
            started = now()
            while now() - started < args.quiet_s:
                searcher.stop.wait(0.5)
            searcher.phase = "reindex"
            reindex_s, reindex_report = facesearch_index(data_dir, folder, "--full")
            searcher.phase = "after"
            searcher.stop.wait(5.0)
            searcher.stop.set()
            searcher.join(timeout=120)
            status, data = request(http.client.HTTPConnection("127.0.0.1", port, timeout=30), "GET", INDEX_PATH)
            served_after = json.loads(data).get("generation") if status == 200 else None
        phases = {phase: searcher.summary(phase) for phase in ("quiet", "reindex", "after")}
        print_table(
            ["phase", "requests", "failed", "p50 ms", "p99 ms"],
            [[phase, s["requests"], s["failed"], s["p50_ms"], s["p99_ms"]] for phase, s in phases.items()],
            title=f"One client searching during a full reindex ({reindex_s:.0f} s; generation "
                  f"{reindex_report.get('generation')} published, served after: {served_after})",
        )
    none_s = runs[1]["seconds"]
    one_pct = runs[2]["seconds"]
    failed = sum(s["failed"] for s in phases.values())
    print(f"\nno-change rerun: {none_s:.2f} s (target <= 5 s: {verdict(none_s <= 5)}); "
          f"1% changed: {one_pct / full_s:.2%} of a full run; failed requests during the reindex: {failed} "
          f"({verdict(failed == 0)}); the server moved to the new generation: "
          f"{verdict(served_after == reindex_report.get('generation'))}")
    write_results("reindex", {
        "lfw": lfw, "photos": len(photos), "runs": runs,
        "one_percent_share_of_full": ratio(one_pct, full_s),
        "search_during_full_reindex": {"reindex_s": reindex_s, "report": reindex_report, "phases": phases,
                                       "generations_seen": sorted(searcher.generations),
                                       "generation_served_after": served_after},
    })


if __name__ == "__main__":
    main()
