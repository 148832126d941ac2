"""The audit log cannot be abused or leak: every line bounded (8 KiB, long
values kept as their digest), no embedding, photo bytes or base64 blob
whatever the caller passes, requests that failed authentication logged
without what they sent, rotation by size, and fail-closed: no request is
answered when its line cannot be written (507), on the test client and on a
real server on a full disk."""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from application import audit as audit_module
from application.audit import FILE_NAME, MAX_LINE_BYTES, AuditLog, lines_of
from indexer.store.generations import current_name
from tests.helpers import client_of, csrf_token_of, person_faces, put_person, serving, store_at

ADMIN, READER = "audit-admin-key-0001", "audit-read-key-00001"
TEN_MB = 10 * 1024 * 1024


def log_lines(data_dir: Path) -> list[str]:
    return (data_dir / FILE_NAME).read_text().splitlines()


# -- the writer's bounds ---------------------------------------------------------


def test_every_line_is_bounded_and_long_values_are_digests():
    record = {"key": None, "path": "/api/v1/search", "params": {"path_prefix": "x" * 2_000_000, "k": "5",
                                                                "y" * 500: "1", **{f"p{i}": "v" for i in range(60)}},
              "query": ["a" * 64], "blob": b"\x00" * 10_000}
    (line,) = lines_of(record)
    text = json.dumps(line)
    assert len(text) < MAX_LINE_BYTES
    assert line["params"]["path_prefix"] == {"chars": 2_000_000, "sha256": hashlib.sha256(b"x" * 2_000_000).hexdigest()}
    assert line["params"]["k"] == "5" and line["params"]["more_keys"] == 63 - 32  # 63 parameters, 32 kept
    assert "y" * 500 not in text and any(k.startswith("sha256:") for k in line["params"])  # a long name too
    assert line["blob"]["bytes"] == 10_000 and line["query"] == ["a" * 64]


def test_long_lists_of_ids_continue_on_lines_of_their_own(tmp_path: Path):
    ids = list(range(10**12, 10**12 + 20_000))
    log = AuditLog(tmp_path / FILE_NAME)
    log.write({"path": "/api/v1/erasures", "face_ids": ids, "results": len(ids)})
    raw = (tmp_path / FILE_NAME).read_bytes().splitlines(keepends=True)
    assert len(raw) > 30 and all(len(line) <= MAX_LINE_BYTES for line in raw)
    main, *parts = log.read()
    assert main["face_ids"] == {"count": 20_000, "parts": len(parts)} and main["results"] == 20_000
    assert {p["request"] for p in parts} == {main["request"]}
    assert [v for p in parts for v in p["values"]] == ids


@pytest.mark.parametrize("probe", [
    person_faces("anna", 1)[0],                       # a numpy vector
    person_faces("anna", 1)[0].tolist(),              # a list of floats
    json.dumps(person_faces("anna", 1)[0].tolist()),  # the same as JSON text
    base64.b64encode(person_faces("anna", 1)[0].astype("<f4").tobytes()).decode(),  # as the pages send it
    base64.b64encode(person_faces("anna", 1)[0].astype("<f2").tobytes()).decode(),  # half precision
])
def test_no_embedding_gets_through_the_writer_in_any_form(probe):
    (line,) = lines_of({"params": {"probes": probe, "nested": {"deeper": [probe]}}, "query": probe})
    assert vectors_in(json.dumps(line)) == []


def vectors_in(text: str) -> list[str]:
    """Every 128-float vector ``text`` holds: a JSON list of >= 128 numbers
    (raw or inside a string), or a base64 run decoding to >= 256 bytes
    (128 half floats)."""
    found = []
    for match in re.finditer(r"\[[-+0-9.eE,\s]{200,}\]", text.replace("\\", "")):
        if len(match.group(0).split(",")) >= 128:
            found.append(match.group(0)[:40])
    for match in re.finditer(r"[A-Za-z0-9+/]{300,}={0,2}", text):
        try:
            if len(base64.b64decode(match.group(0) + "=" * (-len(match.group(0)) % 4))) >= 256:
                found.append(match.group(0)[:40])
        except ValueError:
            pass
    return found


def test_rotation_keeps_the_configured_number_of_owner_only_files(tmp_path: Path):
    os.umask(0o022)
    log = AuditLog(tmp_path / FILE_NAME, max_bytes=4000, files=3)
    for i in range(200):
        log.write({"path": "/api/v1/faces/1", "n": i})
    files = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(FILE_NAME))
    assert files == [FILE_NAME, f"{FILE_NAME}.1", f"{FILE_NAME}.2"]
    assert all((tmp_path / f).stat().st_mode & 0o777 == 0o600 for f in files)
    assert all((tmp_path / f).stat().st_size <= 4000 for f in files)
    kept = [r["n"] for r in log.read()]
    assert kept == list(range(200 - len(kept), 200))  # the newest, in order, none lost between files


# -- through the app ---------------------------------------------------------------


@pytest.fixture
def keyed(people_index: Path):
    return client_of(people_index, api_keys=[ADMIN], read_keys=[READER])


def test_a_refused_request_is_logged_without_what_it_sent(keyed, people_index: Path):
    """The finding: a 10 MB urlencoded field without a key added 10.1 MB."""
    response = keyed.post("/api/v1/search", data={"embedding": "1" * TEN_MB})
    assert response.status_code == 401
    multipart = keyed.post("/api/v1/search", data={"image": (io.BytesIO(b"\xff" * TEN_MB), "x.jpg"),
                                                   "k": "9" * TEN_MB}, headers={"X-API-Key": "a-wrong-key-0000001"})
    assert multipart.status_code == 401
    login = keyed.post("/login", data={"api_key": "k" * TEN_MB, "csrf_token": "forged", "next": "/" * 1000})
    assert login.status_code == 403  # no CSRF token: refused before the key is looked at
    page = keyed.post("/people", data={"csrf_token": "x" * TEN_MB, "action": "cluster"})
    assert page.status_code == 403
    lines = log_lines(people_index)
    assert len(lines) == 4 and all(len(line.encode()) + 1 <= MAX_LINE_BYTES for line in lines)
    first, second = (json.loads(line) for line in lines[:2])
    assert "params" not in first and "params" not in second and "query" not in second
    assert max(len(line) for line in lines) < 1024, [len(line) for line in lines]


def test_a_read_key_cannot_fill_the_log_with_one_parameter(keyed, people_index: Path):
    probe = person_faces("anna", 1)[0].tolist()
    response = keyed.post("/api/v1/recall", headers={"X-API-Key": READER},
                          json={"embeddings": [probe], "path_prefix": "/p" * 1_000_000})
    assert response.status_code == 200
    (line,) = log_lines(people_index)
    assert len(line) < 2048
    assert json.loads(line)["params"]["path_prefix"]["chars"] == 2_000_000


def test_no_request_leaves_an_embedding_in_the_log(people_index: Path, fake_model):
    """Every kind of request, API and pages, then the whole log scanned."""
    client = client_of(people_index, model=fake_model)
    probe = person_faces("anna", 1)[0]
    b64 = base64.b64encode(probe.astype("<f4").tobytes()).decode()
    photo = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (80, 60, 3), dtype=np.uint8)).save(photo, "PNG")
    client.post("/api/v1/search", json={"embedding": probe.tolist(), "k": 3})
    client.post("/api/v1/recall", json={"embeddings": [probe.tolist()] * 2, "max_distance": 0.5})
    client.post("/api/v1/erasures", json={"embeddings": [probe.tolist()], "dry_run": True})
    client.post("/api/v1/search", data={"image": (io.BytesIO(photo.getvalue()), "q.png"), "probe": b64})
    client.post("/api/v1/recall", data={"image": (io.BytesIO(photo.getvalue()), "q.png"), "extra": b64})
    client.post("/api/v1/search", data={"embedding": json.dumps(probe.tolist())})  # wrong kind, still logged
    client.get("/api/v1/faces/1", query_string={"q": b64})
    token = csrf_token_of(client.get("/recall").get_data(as_text=True))
    again = client.post("/recall", data={"csrf_token": token, "probes": b64, "max_distance": "0.5"})
    assert again.status_code == 200 and "sighting" in again.get_data(as_text=True)  # "Search again" worked
    client.post("/", data={"csrf_token": token, "photo": (io.BytesIO(photo.getvalue()), "q.png"), "note": b64},
                content_type="multipart/form-data")
    client.get("/", query_string={"face_id": "1", "x": json.dumps(probe.tolist())})
    raw = (people_index / FILE_NAME).read_text()
    assert len(raw.splitlines()) == 11
    assert vectors_in(raw) == [] and b64 not in raw and f"{float(probe[0])!r}"[:10] not in raw
    for line in raw.splitlines():
        assert all(len(v) <= 256 for v in strings_of(json.loads(line)))


def strings_of(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings_of(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings_of(v)]
    return []


# -- fail closed -------------------------------------------------------------------


def test_nothing_is_answered_or_changed_when_the_log_cannot_be_written(keyed, people_index: Path):
    (people_index / FILE_NAME).mkdir()  # the log cannot be opened (even by root)
    admin = {"X-API-Key": ADMIN}
    for response in (keyed.get("/api/v1/faces/1", headers=admin),
                     keyed.post("/api/v1/search", json={"embedding": person_faces("anna", 1)[0].tolist()},
                                headers=admin),
                     keyed.post("/api/v1/erasures", json={"face_ids": [1]}, headers=admin),
                     keyed.post("/api/v1/people", json={"name": "Anna", "face_ids": [1]}, headers=admin)):
        assert response.status_code == 507, response.get_data(as_text=True)
        error = response.get_json()["error"]
        assert error["code"] == "audit_unavailable" and "free space" in error["message"]
    page = keyed.get("/login")
    assert page.status_code == 507 and "audit log" in page.get_data(as_text=True)
    (people_index / FILE_NAME).rmdir()
    assert keyed.get("/api/v1/faces/1", headers=admin).status_code == 200  # nothing was erased
    assert keyed.get("/api/v1/people", headers=admin).get_json()["people"] == []
    assert keyed.get("/api/v1/health").status_code == 200  # not audited: always answers


def test_too_little_free_space_refuses_before_anything_runs(keyed, monkeypatch):
    monkeypatch.setattr(audit_module, "RESERVE_BYTES", 2**62)
    response = keyed.get("/api/v1/faces/1", headers={"X-API-Key": READER})
    assert response.status_code == 507 and "KiB free on its disk" in response.get_json()["error"]["message"]


def test_a_line_failing_after_a_read_withholds_the_answer(keyed, monkeypatch, caplog):
    def full(self, record):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(AuditLog, "write", full)
    read = keyed.get("/api/v1/faces/1", headers={"X-API-Key": READER})
    assert read.status_code == 507 and "path" not in read.get_data(as_text=True)
    made = keyed.post("/api/v1/people", json={"name": "Anna", "face_ids": [1]}, headers={"X-API-Key": ADMIN})
    assert made.status_code == 201  # a change already made stands...
    assert "could not be written" in caplog.text and "/api/v1/people" in caplog.text  # ...and is logged there


# -- a real server on a full disk ---------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 24 MiB tmpfs (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.decode().strip()}): needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave_bytes: int) -> Path:
    """Fill ``disk`` until ``leave_bytes`` are free; returns the filler."""
    filler = disk / "filler"
    stats = os.statvfs(disk)
    size = stats.f_bavail * stats.f_frsize - leave_bytes
    with filler.open("wb") as f:
        f.truncate(0)
        chunk = b"\0" * (1 << 20)
        while size > 0:
            f.write(chunk[: min(size, len(chunk))])
            size -= len(chunk)
    return filler


def request(url: str, body: dict | None = None, key: str = ADMIN, method: str | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", "X-API-Key": key})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_real_server_on_a_full_disk_refuses_everything_then_recovers(small_disk: Path):
    data_dir = small_disk / "index"
    store = store_at(data_dir)
    put_person(store, "anna", 3000)  # ~3000 thumbnails: a generation of a few MB
    put_person(store, "ben", 5)
    store.checkpoint()
    store.close()
    probe = person_faces("anna", 1)[0].tolist()
    with serving(data_dir, workers=2, env={"FACESEARCH_API_KEYS": ADMIN}) as (base, _):
        assert request(f"{base}/api/v1/search", {"embedding": probe})[0] == 200
        generation = current_name(data_dir)
        # Room for the audit log, not for a copy of the generation: the erasure fails whole.
        filler = fill(small_disk, 1536 * 1024)
        status, body = request(f"{base}/api/v1/erasures", {"face_ids": list(range(1, 3001))})
        assert status == 507 and body["error"]["code"] == "insufficient_storage", body
        assert current_name(data_dir) == generation
        assert not list((data_dir / "generations").glob("*.wip"))  # the partial copy is gone
        assert request(f"{base}/api/v1/faces/1")[0] == 200  # nothing was erased
        # No room for the audit log: every request is refused, reads as well as writes.
        filler.unlink()
        filler = fill(small_disk, 256 * 1024)
        for status, body in (request(f"{base}/api/v1/search", {"embedding": probe}),
                             request(f"{base}/api/v1/faces/1"),
                             request(f"{base}/api/v1/people", {"name": "Anna", "face_ids": [1]}),
                             request(f"{base}/api/v1/faces/1", method="DELETE")):
            assert status == 507 and body["error"]["code"] == "audit_unavailable", body
            assert "free space" in body["error"]["message"]
        assert request(f"{base}/api/v1/health")[0] == 200
        filler.unlink()
        assert request(f"{base}/api/v1/search", {"embedding": probe})[0] == 200
        status, body = request(f"{base}/api/v1/people", {"name": "Anna", "face_ids": [1]})
        assert status == 201
    lines = AuditLog.in_data_dir(data_dir).read()
    assert [line["status"] for line in lines] == [200, 507, 200, 200, 201]  # refused requests left no line
    shutil.rmtree(data_dir)
