"""At most ``service.photo_searches_per_client`` photo searches of one
client address run at once, across every worker of a real server: more get
429 at once, while searches by embedding and ``/health`` go on."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from application.photo_slots import PhotoSlots
from tests.helpers import serving, upload


def post_json(url: str, body: dict) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_slots_are_per_address_and_come_back(tmp_path: Path):
    slots = PhotoSlots(tmp_path / "photo-searches.lock", per_client=2)
    first, second = slots.acquire("10.0.0.1"), slots.acquire("10.0.0.1")
    assert first is not None and second is not None and first != second
    assert slots.acquire("10.0.0.1") is None
    assert slots.acquire("10.0.0.2") is not None  # another address has its own
    slots.release(first)
    assert slots.acquire("10.0.0.1") == first


@pytest.mark.slow
def test_real_server_refuses_a_client_with_all_its_slots_taken(people_index: Path):
    env = {"FACESEARCH_SERVICE__PHOTO_SEARCHES_PER_CLIENT": "1"}
    with serving(people_index, workers=2, env=env) as (base, _):
        assert upload(f"{base}/api/v1/search", 1000)[0] == 415  # a free slot: the upload is read (not an image)
        # Another process holds this address's only slot, as a worker running a long photo search would.
        running = PhotoSlots.in_data_dir(people_index, per_client=1)
        slot = running.acquire("127.0.0.1")
        assert slot is not None
        for _ in range(4):  # whichever worker takes it
            status, text = upload(f"{base}/api/v1/search", 1000)
            assert status == 429 and json.loads(text)["error"]["code"] == "too_many_photo_searches"
        assert upload(f"{base}/api/v1/recall", 1000)[0] == 429
        embedding = [0.0] * 128
        assert post_json(f"{base}/api/v1/search", {"embedding": embedding}) == 200  # not a photo search
        with urllib.request.urlopen(f"{base}/api/v1/health", timeout=5) as response:
            assert response.status == 200
        running.release(slot)
        assert upload(f"{base}/api/v1/search", 1000)[0] == 415
