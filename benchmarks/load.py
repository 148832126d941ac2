"""A load test of the production server: concurrent clients mixing
search-by-photo, search-by-embedding and recall, bounded in time.

``facesearch serve`` (gunicorn, ``--workers`` processes, 127.0.0.1, a free
port) is started on an index and stopped at the end. The index is
``--data-dir DIR`` when given (served as it is; the server writes its
``annotations.sqlite3`` there), else one built first with ``facesearch
index`` from ``--limit`` LFW DevTrain photos (1,000 by default, taken
evenly from A to Z) in a temporary folder.

Clients are locust users (``FastHttpUser``, in this process, gevent), each
sending its next request as soon as the previous one is answered (closed
loop, no think time). The requests follow a fixed seeded plan (``--seed``)
with this mix, by number of requests:

* 30% ``POST /api/v1/search``, multipart ``image``: an LFW photo (250x250),
  one of 200 sampled from the whole LFW folder (a few show no face);
* 5% the same with one larger photo (``--large-photo``, by default
  face_recognition's ``obama-720p.jpg``, 1280x720, one face);
* 35% ``POST /api/v1/search``, JSON ``{"embedding": [...], "k": 10}``: one of
  500 embeddings sampled from the index;
* 20% ``POST /api/v1/recall``, JSON ``{"embeddings": [[...]]}`` (one probe, the
  default radius and limit);
* 10% ``POST /api/v1/recall``, multipart ``image``: one LFW photo in which the
  index holds a face (so that it never gets 422 ``no_face``).

Measured, after ``--warmup`` seconds of the same load (not counted):

1. ``--clients`` (8) clients for ``--duration`` (60) seconds: requests/s in
   total and per request type, p50 and p99 latency (ms) per type and
   overall, and the errors (any non-2xx answer or connection error; the
   target is none), with a few examples;
2. unless ``--sweep ''``: the same load at 1, 2, 4 and 8 clients for
   ``--sweep-duration`` (15) seconds each: requests/s and p99 per client
   count, to see where throughput stops growing.

Each step also reports the CPU used (percent of one core; the machine has
``cpu_count`` cores) by the load generator itself (this process), by the
server (gunicorn and its workers) and by everything else (other processes
and kernel time charged to none), since the clients share the machine with
the server; a warning is printed when other work took more than 20% of a
core, which lowers the figures.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.load [--data-dir DIR | --limit 1000] [--duration 60] [--clients 8]
        [--sweep 1,2,4,8] [--sweep-duration 15] [--workers 2]

Results: ``benchmarks/results/load.json``.
"""

from __future__ import annotations

# locust patches the standard library for gevent when imported: first, before
# anything that may import ssl or threading.
import gevent  # isort: skip
from locust import FastHttpUser, constant, task  # isort: skip
from locust.env import Environment  # isort: skip
from locust.exception import StopUser  # isort: skip

import argparse
import http.client
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from PIL import Image

from benchmarks.common import (
    DEFAULT_LFW,
    LFW_HINT,
    SHARED_DATA,
    lfw_photos,
    now,
    percentile_ms,
    print_table,
    require_dir,
    require_file,
    spread_subset,
    verdict,
    write_results,
)
from benchmarks.reindex import facesearch_index, link_photos
from benchmarks.search_latency import free_port, health, stop, wait_healthy
from indexer.store import EmbeddedStore

SEARCH_PATH = "/api/v1/search"
RECALL_PATH = "/api/v1/recall"
DEFAULT_LARGE_PHOTO = SHARED_DATA / "photos" / "face_recognition" / "examples" / "obama-720p.jpg"
K = 10
SEARCH_PHOTOS = 200
RECALL_PHOTOS = 100
EMBEDDINGS = 500
PLAN_LENGTH = 2000
MAX_ERROR_EXAMPLES = 5
STOP_GRACE_S = 120.0
OTHER_CPU_WARNING_PCT = 20.0


@dataclass(frozen=True)
class Kind:
    """One type of request in the mix."""

    name: str
    path: str
    weight: float  # share of the requests
    description: str


SEARCH_PHOTO = Kind("photo search", SEARCH_PATH, 0.30, "search, multipart image: LFW photo 250x250")
SEARCH_LARGE = Kind("large photo search", SEARCH_PATH, 0.05, "search, multipart image: larger photo")
SEARCH_EMBEDDING = Kind("embedding search", SEARCH_PATH, 0.35, "search, JSON embedding, k=10")
RECALL_EMBEDDING = Kind("embedding recall", RECALL_PATH, 0.20, "recall, JSON embeddings (1 probe)")
RECALL_PHOTO = Kind("photo recall", RECALL_PATH, 0.10, "recall, multipart image: LFW photo with a face")
KINDS = (SEARCH_PHOTO, SEARCH_LARGE, SEARCH_EMBEDDING, RECALL_EMBEDDING, RECALL_PHOTO)


@dataclass(frozen=True)
class Body:
    kind: Kind
    data: bytes
    content_type: str


@dataclass
class Record:
    """What the clients saw during one step."""

    latencies: dict[str, list[float]] = field(default_factory=dict)  # kind name -> seconds
    errors: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    last_end: float = 0.0

    def add(self, name: str, seconds: float, error: str | None) -> None:
        self.latencies.setdefault(name, []).append(seconds)
        self.last_end = max(self.last_end, now())
        if error is not None:
            self.error(name, error)

    def error(self, name: str, error: str) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1
        example = f"{name}: {error}"
        if len(self.examples) < MAX_ERROR_EXAMPLES and example not in self.examples:
            self.examples.append(example)


# -- the request bodies ---------------------------------------------------


def multipart(field_name: str, filename: str, content: bytes, extra: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body with one file field (and plain fields); (body, content type)."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in (extra or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    mime = "image/png" if filename.lower().endswith(".png") else "image/jpeg"
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{filename}"\r\n'
        f"Content-Type: {mime}\r\n\r\n".encode() + content + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def photo_body(kind: Kind, path: Path, extra: dict[str, str] | None = None) -> Body:
    data, content_type = multipart("image", path.name, path.read_bytes(), extra)
    return Body(kind, data, content_type)


def json_body(kind: Kind, payload: dict[str, Any]) -> Body:
    return Body(kind, json.dumps(payload).encode(), "application/json")


def bodies(data_dir: Path, lfw: Path, large_photo: Path | None, rng: np.random.Generator) -> dict[Kind, list[Body]]:
    """The request bodies of each kind, sampled with ``rng``."""
    store = EmbeddedStore.open_published(data_dir)
    try:
        face_ids, _, x = store.all_embeddings()
        if len(face_ids) == 0:
            raise SystemExit(f"error: the index in {data_dir} holds no faces")
        rows = rng.choice(len(x), min(EMBEDDINGS, len(x)), replace=False)
        # Probe photos for recall: photos the index holds a face of (and that are still there).
        candidates = rng.choice(len(face_ids), min(len(face_ids), RECALL_PHOTOS * 3), replace=False)
        records = store.db.faces(face_ids[candidates].tolist())
    finally:
        store.close()
    recall_paths = list(dict.fromkeys(Path(records[int(f)].path) for f in face_ids[candidates]
                                      if int(f) in records and Path(records[int(f)].path).is_file()))
    recall_paths = recall_paths[:RECALL_PHOTOS]
    if not recall_paths:
        raise SystemExit(f"error: none of the photos indexed in {data_dir} can be read from here")
    all_lfw = lfw_photos(lfw)
    search_paths = [all_lfw[i] for i in rng.choice(len(all_lfw), min(SEARCH_PHOTOS, len(all_lfw)), replace=False)]

    def vector(row: int) -> list[float]:
        return [round(float(v), 6) for v in x[row]]

    out = {
        SEARCH_PHOTO: [photo_body(SEARCH_PHOTO, p, {"k": str(K)}) for p in search_paths],
        SEARCH_LARGE: [photo_body(SEARCH_LARGE, large_photo, {"k": str(K)})] if large_photo else [],
        SEARCH_EMBEDDING: [json_body(SEARCH_EMBEDDING, {"embedding": vector(r), "k": K}) for r in rows],
        RECALL_EMBEDDING: [json_body(RECALL_EMBEDDING, {"embeddings": [vector(r)]}) for r in rows[::-1]],
        RECALL_PHOTO: [photo_body(RECALL_PHOTO, p) for p in recall_paths],
    }
    return {kind: kind_bodies for kind, kind_bodies in out.items() if kind_bodies}


def plan(pool: dict[Kind, list[Body]], rng: np.random.Generator) -> list[Body]:
    """``PLAN_LENGTH`` bodies in a seeded order, each kind in proportion to its
    weight (renormalised over the kinds present)."""
    kinds = list(pool)
    weights = np.array([k.weight for k in kinds])
    counts = np.floor(weights / weights.sum() * PLAN_LENGTH).astype(int)
    counts[np.argmax(weights)] += PLAN_LENGTH - counts.sum()
    out = [pool[kind][i % len(pool[kind])] for kind, count in zip(kinds, counts) for i in range(count)]
    return [out[i] for i in rng.permutation(len(out))]


def image_size(path: Path) -> str:
    with Image.open(path) as image:
        return f"{image.width}x{image.height}"


# -- the server -----------------------------------------------------------


@contextmanager
def server(data_dir: Path, workers: int, log_path: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    """``facesearch serve`` on 127.0.0.1 in its own process group, stopped on
    exit; yields (port, process)."""
    executable = require_file(Path(sys.executable).parent / "facesearch", "the facesearch command")
    port = free_port()
    command = [str(executable), "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(port, process, log_path, workers)
        yield port, process
    finally:
        stop(process)


def check_each_kind(port: int, pool: dict[Kind, list[Body]], headers: dict[str, str]) -> None:
    """One request of each kind answers 200 before any load (a clear failure otherwise)."""
    for kind, kind_bodies in pool.items():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = kind_bodies[0]
        conn.request("POST", kind.path, body=body.data, headers={**headers, "Content-Type": body.content_type})
        response = conn.getresponse()
        data = response.read()
        conn.close()
        if response.status != 200:
            raise SystemExit(f"error: {kind.name} answered {response.status} before the load: {data[:300]!r}")


class Cpu:
    """CPU seconds of this process, of the server's process tree and of the
    machine, between construction and ``percent()``."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.started = now()
        self.client0, self.server0, self.machine0 = self._client(), self._server(), self._machine()

    @staticmethod
    def _client() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def _server(self) -> float:
        try:
            root = psutil.Process(self.server_pid)
            total = 0.0
            for proc in [root, *root.children(recursive=True)]:
                try:
                    times = proc.cpu_times()
                    total += times.user + times.system
                except psutil.NoSuchProcess:
                    pass
            return total
        except psutil.NoSuchProcess:
            return float("nan")

    @staticmethod
    def _machine() -> float:
        times = psutil.cpu_times()
        return sum(times) - times.idle - getattr(times, "iowait", 0.0)

    def percent(self) -> dict[str, float]:
        wall = now() - self.started
        out = {
            "client_cpu_pct": 100 * (self._client() - self.client0) / wall,
            "server_cpu_pct": 100 * (self._server() - self.server0) / wall,
            "machine_cpu_pct": 100 * (self._machine() - self.machine0) / wall,
        }
        out["other_cpu_pct"] = out["machine_cpu_pct"] - out["client_cpu_pct"] - out["server_cpu_pct"]
        return out


# -- the clients (locust) -------------------------------------------------


def run_load(host: str, bodies_plan: list[Body], clients: int, seconds: float, headers: dict[str, str],
             server_pid: int) -> tuple[Record, float, dict[str, float]]:
    """``clients`` locust users for ``seconds`` (requests in flight at the end
    are waited for); (record, elapsed seconds, CPU use)."""
    record = Record()
    deadline = now() + seconds
    starts = iter(range(clients))

    class Client(FastHttpUser):
        wait_time = constant(0)
        network_timeout = 120.0
        connection_timeout = 30.0

        def on_start(self) -> None:
            # Each client walks the plan from its own offset.
            self.position = next(starts) * len(bodies_plan) // clients

        @task
        def send(self) -> None:
            if now() >= deadline:
                raise StopUser()
            body = bodies_plan[self.position % len(bodies_plan)]
            self.position += 1
            self.client.request("POST", body.kind.path, name=body.kind.name, data=body.data,
                                headers={**headers, "Content-Type": body.content_type})

    env = Environment(user_classes=[Client], host=host)

    def on_request(name: str, response_time: float, response: Any = None, exception: Any = None, **_: Any) -> None:
        status = getattr(response, "status_code", 0) or 0
        error = None
        if exception is not None or not 200 <= status < 300:
            text = ""
            with suppress(Exception):  # an unreadable body is still an error to report
                text = (response.text or "")[:200] if response is not None and status else ""
            error = f"status {status}, {exception!r} {text}".strip()
        record.add(name, response_time / 1000.0, error)

    def on_user_error(user_instance: Any, exception: Exception, tb: Any) -> None:
        record.error("client exception", repr(exception))

    env.events.request.add_listener(on_request)
    env.events.user_error.add_listener(on_user_error)
    runner = env.create_local_runner()
    cpu = Cpu(server_pid)
    started = now()
    runner.start(clients, spawn_rate=min(100, clients * 10))
    gevent.sleep(seconds)
    grace = now() + STOP_GRACE_S
    while (runner.spawning_greenlet and not runner.spawning_greenlet.ready()) or len(runner.user_greenlets):
        if now() > grace:
            record.error("client exception", f"clients still busy {STOP_GRACE_S:.0f} s after the end")
            break
        gevent.sleep(0.05)
    used = cpu.percent()
    runner.quit()
    return record, max(record.last_end, deadline) - started, used


def summary(record: Record, seconds: float, clients: int, cpu: dict[str, float]) -> dict[str, Any]:
    """Requests/s, p50/p99 and errors per kind (in the mix's order) and overall."""
    order = {kind.name: i for i, kind in enumerate(KINDS)}
    kinds = {}
    for name, latencies in sorted(record.latencies.items(), key=lambda item: order.get(item[0], len(order))):
        kinds[name] = {
            "requests": len(latencies), "rps": len(latencies) / seconds, "errors": record.errors.get(name, 0),
            "p50_ms": percentile_ms(latencies, 50), "p99_ms": percentile_ms(latencies, 99),
        }
    every = [s for latencies in record.latencies.values() for s in latencies]
    return {
        "clients": clients, "seconds": seconds, "requests": len(every), "rps": len(every) / seconds,
        "errors": sum(record.errors.values()), "p50_ms": percentile_ms(every, 50), "p99_ms": percentile_ms(every, 99),
        "kinds": kinds, "error_examples": record.examples, **cpu,
    }


# -- main -----------------------------------------------------------------


def build_index(lfw: Path, limit: int, tmp: Path) -> tuple[Path, dict]:
    photos = spread_subset(lfw_photos(lfw), limit)
    folder, data_dir = tmp / "photos", tmp / "data"
    link_photos(photos, folder)
    print(f"indexing {len(photos):,} LFW photos (facesearch index, 2 workers)...", flush=True)
    seconds, report = facesearch_index(data_dir, folder)
    print(f"  {report.get('faces_added', '?')} faces in {seconds:.0f} s", flush=True)
    return data_dir, {"photos": len(photos), "seconds": seconds, "faces": report.get("faces_added")}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW DevTrain folder (query photos)")
    parser.add_argument("--data-dir", type=Path, help="serve this existing index instead of building one")
    parser.add_argument("--limit", type=int, default=1000, help="LFW photos to index when no --data-dir (0 = all)")
    parser.add_argument("--large-photo", type=Path, default=DEFAULT_LARGE_PHOTO,
                        help="the larger query photo (left out of the mix when missing)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients of the main run")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the main run")
    parser.add_argument("--sweep", default="1,2,4,8", help="client counts of the saturation sweep ('' = none)")
    parser.add_argument("--sweep-duration", type=float, default=15.0, help="seconds of each sweep step")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of unmeasured load first")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--api-key", help="sent as X-API-Key (when the server has keys configured)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        args.sweep = [int(c) for c in args.sweep.split(",") if c.strip()]
    except ValueError:
        parser.error("--sweep needs comma-separated client counts, e.g. 1,2,4,8")
    if args.clients < 1 or any(c < 1 for c in args.sweep) or args.duration <= 0 or args.sweep_duration <= 0:
        parser.error("client counts and durations must be positive")
    return args


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    lfw = require_dir(args.lfw, "the LFW DevTrain photos", LFW_HINT)
    if args.data_dir is not None:
        require_dir(args.data_dir, "the index (--data-dir)")
    large = args.large_photo if args.large_photo.is_file() else None
    if large is None:
        print(f"note: no larger photo at {args.large_photo}; the mix goes without it", file=sys.stderr)
    rng = np.random.default_rng(args.seed)
    random.seed(args.seed)
    headers = {"X-API-Key": args.api_key} if args.api_key else {}

    with tempfile.TemporaryDirectory(prefix="facesearch-load-") as tmp:
        built = None
        data_dir = args.data_dir.resolve() if args.data_dir else None
        if data_dir is None:
            data_dir, built = build_index(lfw, args.limit, Path(tmp))
        pool = bodies(data_dir, lfw, large, rng)
        order = plan(pool, rng)
        mix = {kind.name: {"share": sum(b.kind is kind for b in order) / len(order), "path": kind.path,
                           "what": kind.description + (f" ({large.name}, {image_size(large)})"
                                                       if kind is SEARCH_LARGE else ""),
                           "distinct_bodies": len(pool[kind])} for kind in pool}
        with server(data_dir, args.workers, Path(tmp) / "server.log") as (port, process):
            served = health(port)
            print(f"serving {served.get('faces')} faces from {data_dir} on port {port}, {args.workers} workers",
                  flush=True)
            check_each_kind(port, pool, headers)
            host = f"http://127.0.0.1:{port}"
            if args.warmup > 0:
                run_load(host, order, args.clients, args.warmup, headers, process.pid)
            print(f"main run: {args.clients} clients for {args.duration:.0f} s...", flush=True)
            main_run = summary(*_run(host, order, args.clients, args.duration, headers, process.pid))
            sweep = []
            for clients in args.sweep:
                print(f"sweep: {clients} clients for {args.sweep_duration:.0f} s...", flush=True)
                sweep.append(summary(*_run(host, order, clients, args.sweep_duration, headers, process.pid)))
            alive = process.poll() is None
        server_log = (Path(tmp) / "server.log").read_text(errors="replace")[-2000:]

    cores = os.cpu_count()
    print_table(
        ["request", "share", "what"],
        [[name, f"{m['share']:.0%}", m["what"]] for name, m in mix.items()],
        title="The mix (closed loop: each client sends its next request when answered)",
    )
    print_table(
        ["request", "requests", "req/s", "p50 ms", "p99 ms", "errors"],
        [*([name, k["requests"], k["rps"], k["p50_ms"], k["p99_ms"], k["errors"]]
           for name, k in main_run["kinds"].items()),
         ["all", main_run["requests"], main_run["rps"], main_run["p50_ms"], main_run["p99_ms"], main_run["errors"]]],
        title=f"{args.clients} clients for {main_run['seconds']:.1f} s, {served.get('faces')} faces, "
              f"{args.workers} server workers, {cores} cores",
    )
    print(f"CPU, % of one core ({cores * 100} in all): load generator {main_run['client_cpu_pct']:.0f}, "
          f"server {main_run['server_cpu_pct']:.0f}, other processes {main_run['other_cpu_pct']:.0f}")
    for example in main_run["error_examples"]:
        print(f"  error: {example}")
    if sweep:
        names = list(main_run["kinds"])
        print_table(
            ["clients", "req/s", "p50 ms", "p99 ms", "errors", *(f"{n} p99" for n in names),
             "client CPU%", "server CPU%", "other CPU%"],
            [[s["clients"], s["rps"], s["p50_ms"], s["p99_ms"], s["errors"],
              *(s["kinds"].get(n, {}).get("p99_ms", float("nan")) for n in names),
              round(s["client_cpu_pct"]), round(s["server_cpu_pct"]), round(s["other_cpu_pct"])] for s in sweep],
            title=f"Saturation: the same mix, {args.sweep_duration:.0f} s per client count "
                  f"(CPU % of one core, {cores} cores)",
        )
        for s in sweep:
            for example in s["error_examples"]:
                print(f"  error ({s['clients']} clients): {example}")
    busiest = max(r["other_cpu_pct"] for r in [main_run, *sweep])
    if busiest > OTHER_CPU_WARNING_PCT:
        print(f"\nwarning: other processes used up to {busiest:.0f}% of a core during the measurements: "
              "the figures are low; rerun on a quiet machine")
    errors = main_run["errors"] + sum(s["errors"] for s in sweep)
    print(f"\nerrors: {errors} ({verdict(errors == 0)}); the server was still running at the end: {verdict(alive)}")
    if errors or not alive:
        print(f"server log (end):\n{server_log}")
    write_results("load", {
        "data_dir": data_dir if args.data_dir else None, "built_index": built, "lfw": lfw,
        "faces": served.get("faces"), "workers": args.workers, "seed": args.seed, "warmup_s": args.warmup,
        "mix": mix, "main": main_run, "sweep": sweep, "errors": errors, "server_alive_at_end": alive,
    })


def _run(host: str, order: list[Body], clients: int, seconds: float, headers: dict[str, str],
         server_pid: int) -> tuple[Record, float, int, dict[str, float]]:
    record, elapsed, cpu = run_load(host, order, clients, seconds, headers, server_pid)
    return record, elapsed, clients, cpu


if __name__ == "__main__":
    main()
