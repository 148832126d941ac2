"""`facesearch serve` for real: gunicorn in a subprocess on a free port."""

import http.cookiejar
import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import get_json, published_store, serving, upload

pytestmark = pytest.mark.model








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




def test_an_answer_before_the_body_reaches_a_client_still_sending(real_index: Path):
    """A 60 MB upload over the 16 MiB limit gets its 413 (JSON for the API, a
    page for the web pages), not a broken pipe; so does a wrong key on a
    large upload."""
    with serving(real_index, workers=1, env={"FACESEARCH_API_KEYS": "right-key-0000001"}) as (base, keyed):
        status, text = upload(f"{base}/api/v1/search", 60_000_000, {"X-API-Key": "right-key-0000001"})
        assert status == 413 and json.loads(text)["error"]["code"] == "payload_too_large"
        assert "larger than the limit of 16 MiB" in text
        status, text = upload(f"{base}/api/v1/search", 12_000_000, {"X-API-Key": "wrong-key"})
        assert status == 401 and json.loads(text)["error"]["code"] == "unauthorized"
    assert 'curl -H "X-API-Key: $FACESEARCH_KEY" -F image=@/' in keyed[0]  # the example works with keys too
    with serving(real_index, workers=1) as (base, _):
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with browser.open(f"{base}/", timeout=10) as response:
            token = re.search(r'name="csrf_token" value="([^"]+)"', response.read().decode()).group(1)
        status, text = upload(f"{base}/", 60_000_000, form={"csrf_token": token}, opener=browser)
        assert status == 413 and '<p class="error">' in text and "larger than the limit of 16 MiB" in text
