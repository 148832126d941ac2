"""Search-by-embedding over HTTP through the production server.

For each store size (``--sizes``, default 10,000 and 100,000 faces) a
synthetic store is written straight through ``EmbeddedStore`` (no model, a
few seconds), ``facesearch serve`` (gunicorn, ``--workers`` processes) is
started on it on a free port, and ``POST /api/v1/search`` with JSON bodies
``{"embedding": [...], "k": 10}`` (held-out faces) is measured:

* under load from ``--connections`` (8) concurrent clients for ``--duration``
  seconds: requests/s, p50 and p99 latency (ms). The client is ``wrk`` when
  installed (2 threads, a Lua script cycling through the bodies), else Python
  threads with ``http.client`` connections;
* one client, ``--requests`` (500) requests in a row: p50 and p99 (ms);
* with ``--approximate``, the same again after the store gets its
  approximate index (``indexer.store.ann``; ``GET /api/v1/index`` says how
  the server searches);
* the FAISS layer alone, in-process and single-threaded: the float32 flat
  scan against the 8-bit prescan with exact re-rank (``FlatL2Index``), p50
  per query side by side, whether both return the same ids, and how many
  prescanned queries had to fall back to the full scan.

The synthetic embeddings imitate dlib's: not unit length (mean norm ~1.4,
around a shared offset), same-person pairs ~0.44 apart and different people
~0.81 (medians, Euclidean); the measured values are reported. Target:
>= 800 requests/s at 100,000 faces.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.search_latency [--sizes 10000,100000] [--duration 10] [--workers 2] [--approximate]

Results: ``benchmarks/results/search_latency.json``.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import now, percentile_ms, print_table, require_file, verdict, write_results
from config.settings import IndexSettings, load_settings
from indexer.indexing import detection_signature
from indexer.model import EMBEDDING_DIM, MODEL_NAME, Box
from indexer.store import EmbeddedStore, FileRecord, NewFace
from indexer.store.vectors import FlatL2Index

TARGET_RPS = 800.0
TARGET_SIZE = 100_000
FACES_PER_PHOTO = 5
FACES_PER_PERSON = 5  # on average
QUERY_BODIES = 64
K = 10
# Spreads chosen so that medians land near dlib's on LFW: a shared offset
# (norm ~1.29), person centres 0.81 apart, faces of one person 0.44 apart.
OFFSET_NORM = 1.29
FACE_SD = 0.44 / np.sqrt(2 * EMBEDDING_DIM)
PERSON_SD = np.sqrt((0.81 / np.sqrt(2 * EMBEDDING_DIM)) ** 2 - FACE_SD**2)
SEARCH_PATH = "/api/v1/search"
HEALTH_PATH = "/api/v1/health"
INDEX_PATH = "/api/v1/index"
SERVER_START_TIMEOUT_S = 120.0
WARM_UP_S = 2.0


@dataclass
class Load:
    client: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else float("nan")


# -- synthetic data -------------------------------------------------------


def synthetic_faces(n: int, queries: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` stored faces, ``queries`` held-out faces of the same people, and
    the person of each stored face; float32 (·, 128)."""
    people = max(1, n // FACES_PER_PERSON)
    offset = rng.normal(0.0, 1.0, EMBEDDING_DIM)
    offset *= OFFSET_NORM / np.linalg.norm(offset)
    centres = offset + rng.normal(0.0, PERSON_SD, (people, EMBEDDING_DIM))
    persons = rng.integers(people, size=n + queries)
    x = centres[persons] + rng.normal(0.0, FACE_SD, (n + queries, EMBEDDING_DIM))
    x = x.astype(np.float32)
    return x[:n], x[n:], persons[:n]


def realism(x: np.ndarray, persons: np.ndarray, rng: np.random.Generator, pairs: int = 20_000) -> dict[str, float]:
    """Mean norm and median same/different-person distances of a sample of pairs."""
    order = np.argsort(persons, kind="stable")
    same_pos = np.flatnonzero(persons[order][1:] == persons[order][:-1])[:pairs]
    same = np.linalg.norm(x[order[same_pos]] - x[order[same_pos + 1]], axis=1)
    a, b = rng.integers(len(x), size=(2, pairs))
    keep = persons[a] != persons[b]
    different = np.linalg.norm(x[a[keep]] - x[b[keep]], axis=1)
    return {
        "mean_norm": float(np.linalg.norm(x, axis=1).mean()),
        "same_person_median": float(np.median(same)) if len(same) else float("nan"),
        "different_person_median": float(np.median(different)),
    }


def tiny_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (128, 128, 128)).save(out, format="JPEG")
    return out.getvalue()


def build_store(data_dir: Path, x: np.ndarray) -> float:
    """Write ``x`` as faces of fake photos (``FACES_PER_PHOTO`` each); returns seconds."""
    started = now()
    signature = detection_signature(load_settings(data_dir=data_dir))
    jpeg = tiny_jpeg()
    store = EmbeddedStore.open(data_dir)
    try:
        for photo, start in enumerate(range(0, len(x), FACES_PER_PHOTO)):
            record = FileRecord(
                path=f"/synthetic/photo_{photo:07d}.jpg", size=100_000, mtime_ns=0, content_hash=f"{photo:064x}",
                width=1000, height=200, detection=signature, model=MODEL_NAME,
            )
            faces = [NewFace(Box(50, 100 * j + 90, 150, 100 * j + 10), x[start + j], jpeg)
                     for j in range(min(FACES_PER_PHOTO, len(x) - start))]
            store.put_file(record, faces)
        store.checkpoint(detection=signature)
    finally:
        store.close()
    return now() - started


def query_bodies(queries: np.ndarray) -> list[bytes]:
    return [json.dumps({"embedding": [round(float(v), 6) for v in q], "k": K}).encode() for q in queries]


# -- the server -----------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(data_dir: Path, workers: int, log_path: Path) -> Iterator[int]:
    """``facesearch serve`` on ``data_dir`` in its own process group, killed on exit; yields its port."""
    executable = require_file(Path(sys.executable).parent / "facesearch", "the facesearch command")
    port = free_port()
    command = [str(executable), "serve", "--data-dir", str(data_dir), "--port", str(port), "--workers", str(workers)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(port, process, log_path, workers)
        yield port
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (gunicorn and its workers), SIGKILL if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue


def wait_healthy(port: int, process: subprocess.Popen, log_path: Path, workers: int = 1) -> None:
    """Until ``workers`` workers have said they are ready (each loads the
    index itself: seconds at a million faces) and the server answers."""
    deadline = now() + SERVER_START_TIMEOUT_S
    while now() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        ready = len(re.findall(r"facesearch: worker \d+ ready", log_path.read_text(errors="replace")))
        try:
            status, _ = request(http.client.HTTPConnection("127.0.0.1", port, timeout=2), "GET", HEALTH_PATH)
            if status == 200 and ready >= workers:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer {HEALTH_PATH} within {SERVER_START_TIMEOUT_S:.0f} s")


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def health(port: int) -> dict:
    status, data = request(http.client.HTTPConnection("127.0.0.1", port, timeout=10), "GET", HEALTH_PATH)
    return json.loads(data) if status == 200 else {}


def check_answers(port: int, size: int, body: bytes) -> None:
    """The server holds the whole store and answers a search with k matches."""
    served = health(port).get("faces")
    if served != size:
        raise RuntimeError(f"the server reports {served} faces, expected {size}")
    status, data = request(http.client.HTTPConnection("127.0.0.1", port, timeout=30), "POST", SEARCH_PATH, body)
    matches = json.loads(data)["faces"][0]["matches"] if status == 200 else []
    if len(matches) != min(K, size):
        raise RuntimeError(f"a search answered {status} with {len(matches)} matches: {data[:300]!r}")


# -- clients --------------------------------------------------------------


def sequential(port: int, bodies: list[bytes], count: int) -> Load:
    """One client, ``count`` requests in a row on one (re-opened as needed) connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, errors = [], 0
    started = now()
    for i in range(count):
        t0 = now()
        status, _ = request(conn, "POST", SEARCH_PATH, bodies[i % len(bodies)])
        latencies.append(now() - t0)
        errors += status != 200
    conn.close()
    return Load("python, 1 client", count, errors, now() - started, percentile_ms(latencies, 50),
                percentile_ms(latencies, 99))


def python_load(port: int, bodies: list[bytes], connections: int, duration: float) -> Load:
    """``connections`` threads, each sending requests back to back until ``duration`` is over."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    deadline = now() + duration

    def client(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = slot
        while now() < deadline:
            t0 = now()
            status, _ = request(conn, "POST", SEARCH_PATH, bodies[i % len(bodies)])
            latencies[slot].append(now() - t0)
            errors[slot] += status != 200
            i += connections
        conn.close()

    threads = [threading.Thread(target=client, args=(s,)) for s in range(connections)]
    started = now()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = now() - started
    flat = [v for per in latencies for v in per]
    return Load(f"python, {connections} threads", len(flat), sum(errors), seconds, percentile_ms(flat, 50),
                percentile_ms(flat, 99))


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {
%s
}
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""
UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def wrk_load(port: int, bodies: list[bytes], connections: int, duration: float, script_dir: Path) -> Load:
    script = script_dir / "bodies.lua"
    script.write_text(WRK_SCRIPT % ",\n".join(f"[==[{b.decode()}]==]" for b in bodies))
    command = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "-s", str(script),
               f"http://127.0.0.1:{port}{SEARCH_PATH}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    return parse_wrk(output, connections)


def parse_wrk(output: str, connections: int) -> Load:
    """Requests, errors, seconds and p50/p99 (ms) from ``wrk --latency`` output."""
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if total is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
    percentiles = {q: float(v) * UNIT_MS[u] for q, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$",
                                                                        output, re.MULTILINE)}
    return Load(f"wrk, {connections} connections", int(total.group(1)), errors,
                float(total.group(2)) * UNIT_MS[total.group(3)] / 1000.0,
                percentiles.get("50", float("nan")), percentiles.get("99", float("nan")))


# -- the benchmark --------------------------------------------------------


def in_process_search(x: np.ndarray, queries: np.ndarray) -> dict:
    """The FAISS layer alone, one thread: the float32 flat scan against the
    8-bit prescan with exact re-rank, on the same vectors and queries; p50 ms
    per query, whether the results are identical, and how many prescanned
    queries fell back to the full scan."""
    import faiss

    faiss.omp_set_num_threads(1)
    ids = np.arange(len(x), dtype=np.int64)
    flat = FlatL2Index(EMBEDDING_DIM, scan_min_faces=len(x) + 1)  # never prescans
    prescan = FlatL2Index(EMBEDDING_DIM)
    flat.add(ids, x)
    prescan.add(ids, x)
    prescan.prepare_search()
    timings: dict[str, list[float]] = {"flat": [], "prescan": []}
    found: dict[str, list[np.ndarray]] = {"flat": [], "prescan": []}
    for query in queries:
        for name, index in (("flat", flat), ("prescan", prescan)):
            started = now()
            _, result = index.search(query, K)
            timings[name].append(now() - started)
            found[name].append(result[0])
    return {
        "flat_p50_ms": percentile_ms(timings["flat"], 50),
        "prescan_p50_ms": percentile_ms(timings["prescan"], 50),
        "identical": all(np.array_equal(a, b) for a, b in zip(found["flat"], found["prescan"])),
        "fallbacks": prescan.fallbacks,
        "queries": len(queries),
    }


def http_load(data_dir: Path, size: int, bodies: list[bytes], args: argparse.Namespace, log_path: Path) -> dict:
    """Serve ``data_dir`` and measure: ``--connections`` clients, then one."""
    with server(data_dir, args.workers, log_path) as port:
        check_answers(port, size, bodies[0])
        search = json.loads(request(http.client.HTTPConnection("127.0.0.1", port, timeout=30), "GET", INDEX_PATH)[1])
        # Warm-up under load, so that every worker has booted and served before the clock runs.
        python_load(port, bodies, args.connections, WARM_UP_S)
        if use_wrk(args.client):
            loaded = wrk_load(port, bodies, args.connections, args.duration, data_dir.parent)
        else:
            loaded = python_load(port, bodies, args.connections, args.duration)
        single = sequential(port, bodies, args.requests)
    print(f"  {search.get('search')}: {loaded.client}: {loaded.rps:,.0f} req/s, p99 {loaded.p99_ms:.1f} ms; "
          f"1 client p50 {single.p50_ms:.2f} ms", flush=True)
    return {"search": search.get("search"), "load": {**asdict(loaded), "rps": loaded.rps},
            "single": {**asdict(single), "rps": single.rps}}


def measure_size(size: int, args: argparse.Namespace, tmp: Path, rng: np.random.Generator) -> dict:
    x, queries, persons = synthetic_faces(size, QUERY_BODIES, rng)
    layer = in_process_search(x, queries)
    data_dir = tmp / f"store-{size}"
    build_s = build_store(data_dir, x)
    print(f"{size:,} faces: store built in {build_s:.1f} s", flush=True)
    bodies = query_bodies(queries)
    runs = [http_load(data_dir, size, bodies, args, tmp / f"server-{size}.log")]
    if args.approximate:
        started = now()
        add_approximate_index(data_dir)
        print(f"  approximate index built in {now() - started:.1f} s", flush=True)
        runs.append(http_load(data_dir, size, bodies, args, tmp / f"server-{size}-approximate.log"))
    return {
        "faces": size,
        "build_seconds": build_s,
        "embeddings": realism(x, persons, rng),
        "faiss_layer": layer,
        **runs[0],
        "approximate": runs[1] if len(runs) > 1 else None,
    }


def add_approximate_index(data_dir: Path) -> None:
    """Give the store its approximate index (``indexer.store.ann``), as a
    reindex with ``index.search = "approximate"`` would."""
    store = EmbeddedStore.open(data_dir)
    try:
        store.plan_search(IndexSettings(search="approximate"))
        store.seal()
    finally:
        store.close()


def use_wrk(client: str) -> bool:
    if client == "auto":
        return shutil.which("wrk") is not None
    if client == "wrk" and shutil.which("wrk") is None:
        print("error: --client wrk but wrk is not installed (apt-get install wrk)", file=sys.stderr)
        raise SystemExit(2)
    return client == "wrk"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated store sizes, faces")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per size")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--connections", type=int, default=8, help="concurrent clients under load")
    parser.add_argument("--requests", type=int, default=500, help="requests of the single-client run")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto",
                        help="load generator (auto: wrk when installed)")
    parser.add_argument("--approximate", action="store_true",
                        help="also serve each store with its approximate index (index.search) and measure again")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not args.sizes or min(args.sizes) < 1:
        parser.error("--sizes needs positive face counts, e.g. 10000,100000")
    return args


def main() -> None:
    args = parse_args()
    # A plain SIGTERM would end this process without its finally blocks and
    # leave the server running; turn it into an exit that stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="facesearch-search-") as tmp:
        results = [measure_size(size, args, Path(tmp), rng) for size in args.sizes]

    served = [(r["faces"], run) for r in results for run in (r, r["approximate"]) if run is not None]
    print_table(
        ["faces", "search", "client", "req/s", "p50 ms", "p99 ms", "errors", "1-client p50", "1-client p99"],
        [[faces, run["search"], run["load"]["client"], run["load"]["rps"], run["load"]["p50_ms"],
          run["load"]["p99_ms"], run["load"]["errors"] + run["single"]["errors"], run["single"]["p50_ms"],
          run["single"]["p99_ms"]] for faces, run in served],
        title=f"POST {SEARCH_PATH} (JSON embedding, k={K}), {args.workers} server workers",
    )
    print_table(
        ["faces", "flat scan p50 ms", "prescan+re-rank p50 ms", "speed-up", "identical", "fallbacks"],
        [[r["faces"], r["faiss_layer"]["flat_p50_ms"], r["faiss_layer"]["prescan_p50_ms"],
          r["faiss_layer"]["flat_p50_ms"] / r["faiss_layer"]["prescan_p50_ms"], r["faiss_layer"]["identical"],
          f'{r["faiss_layer"]["fallbacks"]}/{r["faiss_layer"]["queries"]}'] for r in results],
        title=f"The FAISS layer in-process, one thread, k={K} (below 20k faces both run the flat scan)",
    )
    print_table(
        ["faces", "mean norm", "same-person median", "other-person median"],
        [[r["faces"], r["embeddings"]["mean_norm"], r["embeddings"]["same_person_median"],
          r["embeddings"]["different_person_median"]] for r in results],
        title="Synthetic embeddings (dlib on LFW: ~1.42, ~0.44, ~0.81)",
    )
    checks = [{"check": f"req/s at {r['faces']:,} faces", "value": r["load"]["rps"], "target": f">= {TARGET_RPS:.0f}",
               "pass": r["load"]["rps"] >= TARGET_RPS and r["load"]["errors"] == 0}
              for r in results if r["faces"] == TARGET_SIZE]
    if checks:
        print_table(["check", "value", "target", "verdict"],
                    [[c["check"], c["value"], c["target"], verdict(c["pass"])] for c in checks], title="Targets")
    write_results("search_latency", {
        "workers": args.workers,
        "connections": args.connections,
        "duration_s": args.duration,
        "k": K,
        "sizes": results,
        "checks": checks,
    })


if __name__ == "__main__":
    main()
