"""How fast can someone guess API keys? Wrong keys against a real
``facesearch serve`` (2 workers), on the API (``GET /api/v1/faces/1`` with
``X-API-Key``) and on the sign-in page (``POST /login``), for a few
seconds each, from several client threads at once: once with the throttle
out of the way (``service.max_key_failures`` = 10^9: what it cost before),
once with the default. A guess counts when the server answered it 401
(the key looked at and wrong); a 429 says nothing about the key (the one
that starts a block was looked at too: one per block).

    python -m benchmarks.key_guessing [--seconds 5] [--threads 4]
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import re
import shutil
import tempfile
import threading
import urllib.parse
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import now, print_table, write_results
from benchmarks.search_latency import server

ADMIN_KEY = "benchmark-admin-key-000000000001"
UNTHROTTLED = 10**9


def build_index(data_dir: Path) -> None:
    """A few faces: enough for ``/api/v1/faces/1`` to exist."""
    from indexer.model import Box
    from indexer.store import FileRecord, NewFace, open_store

    thumbnail = io.BytesIO()
    Image.new("RGB", (40, 48), (120, 90, 60)).save(thumbnail, format="JPEG")
    store = open_store(data_dir)
    rng = np.random.default_rng(0)
    for i in range(10):
        record = FileRecord(path=f"/photos/{i}.jpg", size=1, mtime_ns=1, content_hash=f"h{i}", width=100,
                            height=100, detection="{}", model="benchmark")
        vector = rng.normal(0, 0.12, 128).astype(np.float32)
        store.put_file(record, [NewFace(Box(10, 60, 70, 10), vector, thumbnail.getvalue())])
    store.checkpoint()
    store.close()


def guess_api(port: int, key: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/api/v1/faces/1", headers={"X-API-Key": key})
    status = conn.getresponse().status
    conn.close()
    return status


class LoginForm:
    """One client's cookie and CSRF token for ``POST /login``."""

    def __init__(self, port: int) -> None:
        self.port = port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/login")
        response = conn.getresponse()
        html = response.read().decode()
        self.cookie = re.search(r"facesearch_session=[^;]+", response.getheader("Set-Cookie") or "").group(0)
        self.token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        conn.close()

    def guess(self, key: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        body = urllib.parse.urlencode({"api_key": key, "csrf_token": self.token})
        conn.request("POST", "/login", body=body, headers={
            "Cookie": self.cookie, "Content-Type": "application/x-www-form-urlencoded"})
        status = conn.getresponse().status
        conn.close()
        return status


def hammer(port: int, where: str, seconds: float, threads: int) -> dict:
    """Wrong keys from ``threads`` threads for ``seconds``: how many were
    looked at (401) and refused unread (429)."""
    counts = {"evaluated": 0, "refused": 0, "other": 0}
    lock = threading.Lock()
    deadline = now() + seconds

    def run(number: int) -> None:
        form = LoginForm(port) if where == "login" else None
        attempt = 0
        while now() < deadline:
            key = f"wrong-key-{number:02d}-{attempt:010d}"
            status = form.guess(key) if form else guess_api(port, key)
            attempt += 1
            with lock:
                counts["evaluated" if status == 401 else "refused" if status == 429 else "other"] += 1

    started = now()
    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = now() - started
    return {**counts, "seconds": round(wall, 2), "guesses_per_s": round(counts["evaluated"] / wall, 1),
            "requests_per_s": round(sum(counts.values()) / wall, 1)}


def measure(data_dir: Path, max_failures: int, seconds: float, threads: int, log: Path) -> dict:
    os.environ["FACESEARCH_API_KEYS"] = ADMIN_KEY
    os.environ["FACESEARCH_SERVICE__MAX_KEY_FAILURES"] = str(max_failures)
    results = {}
    try:
        for where in ("api", "login"):
            (data_dir / "access.sqlite3").unlink(missing_ok=True)  # each side starts with no count
            with server(data_dir, 2, log) as port:
                results[where] = hammer(port, where, seconds, threads)
    finally:
        del os.environ["FACESEARCH_SERVICE__MAX_KEY_FAILURES"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of guessing per endpoint and side")
    parser.add_argument("--threads", type=int, default=4, help="client threads guessing at once")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="facesearch-guessing-"))
    try:
        data_dir = work / "index"
        build_index(data_dir)
        results = {
            "unthrottled": measure(data_dir, UNTHROTTLED, args.seconds, args.threads, work / "server.log"),
            "throttled": measure(data_dir, 20, args.seconds, args.threads, work / "server.log"),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [(f"{side}: {where}", r["evaluated"], r["refused"], r["guesses_per_s"], r["requests_per_s"])
            for side, by_where in results.items() for where, r in by_where.items()]
    print_table(["side: endpoint", "401s", "429s", "guesses/s", "requests/s"], rows,
                title=f"wrong keys for {args.seconds:g} s from {args.threads} threads, 2 server workers")
    for where in ("api", "login"):
        before, after = results["unthrottled"][where], results["throttled"][where]
        print(f"{where}: {before['guesses_per_s']:,.1f} -> {after['guesses_per_s']:,.1f} guesses/s "
              f"({after['evaluated']} answered 401 in {after['seconds']:.0f} s)")
    write_results("key_guessing", {"seconds": args.seconds, "threads": args.threads, **results})


if __name__ == "__main__":
    main()
