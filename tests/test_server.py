"""`facesearch serve` for real: gunicorn in a subprocess on a free port."""

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from indexer.store import EmbeddedStore

pytestmark = pytest.mark.model


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_serve_answers_searches(real_index: Path):
    port = free_port()
    executable = Path(sys.executable).with_name("facesearch")
    server = subprocess.Popen(
        [str(executable), "serve", "--data-dir", str(real_index), "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = get_json(f"{base}/health")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {server.stdout.read()}")
                time.sleep(0.2)
        store = EmbeddedStore.open_published(real_index)
        assert health["faces"] == store.count()
        _, x = next(store.db.iter_embeddings())
        for vec in x[:5]:
            result = get_json(f"{base}/search", {"embedding": vec.tolist(), "k": 2})
            assert result["faces"][0]["matches"][0]["distance"] < 1e-3
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[0]
    assert f"http://127.0.0.1:{port}" in output
    assert "curl -F image=@/" in output  # a ready command with a real indexed photo
    ready = re.findall(r"facesearch: worker (\d+) ready in [\d.]+ s \((\d+) faces, search exact\)", output)
    assert len({pid for pid, _ in ready}) == 2 and {int(faces) for _, faces in ready} == {store.count()}
