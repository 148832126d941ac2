"""`facesearch serve` for real: gunicorn in a subprocess on a free port."""

import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import published_store

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


@contextmanager
def serving(data_dir: Path, workers: int = 2, env: dict | None = None):
    """``facesearch serve`` on a free port until the block ends; yields
    ``(base url, output)``, the server's output list filled in at the end."""
    port = free_port()
    executable = Path(sys.executable).with_name("facesearch")
    server = subprocess.Popen(
        [str(executable), "serve", "--data-dir", str(data_dir), "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})},
    )
    base, output = f"http://127.0.0.1:{port}", []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/v1/health", timeout=10).close()
                break
            except urllib.error.HTTPError:
                break  # answering (a key is needed)
            except OSError as error:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {server.stdout.read()}") from error
                time.sleep(0.2)
        yield base, output
    finally:
        server.terminate()
        output.append(server.communicate(timeout=20)[0])


def test_serve_answers_searches(real_index: Path):
    with serving(real_index) as (base, output):
        health = get_json(f"{base}/api/v1/health")
        store = published_store(real_index)
        assert health["faces"] == store.count()
        _, x = next(store.db.iter_embeddings())
        for vec in x[:5]:
            result = get_json(f"{base}/api/v1/search", {"embedding": vec.tolist(), "k": 2})
            assert result["faces"][0]["matches"][0]["distance"] < 1e-3
    port = base.rsplit(":", 1)[1]
    output = output[0]
    assert f"http://127.0.0.1:{port}" in output
    assert "curl -F image=@/" in output  # a ready command with a real indexed photo
    ready = re.findall(r"facesearch: worker (\d+) ready in [\d.]+ s \((\d+) faces, search exact\)", output)
    assert len({pid for pid, _ in ready}) == 2 and {int(faces) for _, faces in ready} == {store.count()}


def upload(url: str, size: int, headers: dict | None = None, form: dict | None = None,
           opener=None) -> tuple[int, str]:
    """POST a ``size``-byte file as multipart form data the way a script does
    (urllib sends the whole body, then reads the answer)."""
    boundary = "facesearch-test-boundary"
    fields = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
                      for k, v in (form or {}).items())
    body = fields + (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.jpg\"\r\n"
                     "Content-Type: image/jpeg\r\n\r\n").encode() + b"\xff" * size + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})})
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_an_answer_before_the_body_reaches_a_client_still_sending(real_index: Path):
    """A 60 MB upload over the 16 MiB limit gets its 413 (JSON for the API, a
    page for the web pages), not a broken pipe; so does a wrong key on a
    large upload."""
    with serving(real_index, workers=1, env={"FACESEARCH_API_KEYS": "right-key-0000001"}) as (base, _):
        status, text = upload(f"{base}/api/v1/search", 60_000_000, {"X-API-Key": "right-key-0000001"})
        assert status == 413 and json.loads(text)["error"]["code"] == "payload_too_large"
        assert "larger than the limit of 16 MiB" in text
        status, text = upload(f"{base}/api/v1/search", 12_000_000, {"X-API-Key": "wrong-key"})
        assert status == 401 and json.loads(text)["error"]["code"] == "unauthorized"
    with serving(real_index, workers=1) as (base, _):
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with browser.open(f"{base}/", timeout=10) as response:
            token = re.search(r'name="csrf_token" value="([^"]+)"', response.read().decode()).group(1)
        status, text = upload(f"{base}/", 60_000_000, form={"csrf_token": token}, opener=browser)
        assert status == 413 and '<p class="error">' in text and "larger than the limit of 16 MiB" in text
