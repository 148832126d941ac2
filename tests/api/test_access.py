"""API keys with scopes, hashed keys, the loopback rule of ``serve`` and the
audit log."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from application.access import KeyConfigError, authenticate, digest_of, hashed_form, is_loopback, parse_keys
from application.audit import FILE_NAME, AuditLog, hash_embeddings
from config.settings import load_settings
from facesearch.cli import main
from service import create_app
from tests.helpers import client_of, person_faces

ADMIN, READER = "admin-secret-0001", "reader-secret-0001"


@pytest.fixture
def keyed(people_index: Path):
    """A client of a service with one admin key (hashed in the config) and one read key."""
    return client_of(people_index, api_keys=[hashed_form(ADMIN)], read_keys=[READER])


def embedding() -> list[float]:
    return person_faces("anna", 1)[0].tolist()


def test_read_key_may_search_and_read_but_not_change(keyed):
    read = {"X-API-Key": READER}
    assert keyed.post("/api/v1/search", json={"embedding": embedding()}, headers=read).status_code == 200
    assert keyed.post("/api/v1/recall", json={"embeddings": [embedding()]}, headers=read).status_code == 200
    assert keyed.get("/api/v1/faces/1", headers=read).status_code == 200
    assert keyed.get("/api/v1/faces/1/thumbnail", headers=read).status_code == 200
    assert keyed.get("/api/v1/people", headers=read).status_code == 200
    for method, path, body in [("POST", "/api/v1/clusters", {}), ("PUT", "/api/v1/clusters/0", {"name": "x"}),
                               ("PATCH", "/api/v1/people/1", {"name": "x"}), ("DELETE", "/api/v1/people/1", None)]:
        response = keyed.open(path, method=method, json=body, headers=read)
        assert response.status_code == 403, (method, path)
        assert response.get_json()["error"]["code"] == "forbidden"


def test_admin_key_given_hashed_in_the_config_may_do_everything(keyed):
    admin = {"X-API-Key": ADMIN}
    assert keyed.post("/api/v1/clusters", json={"k": 4}, headers=admin).status_code == 200
    assert keyed.get("/api/v1/clusters", headers=admin).status_code == 200
    assert keyed.post("/api/v1/search", json={"embedding": embedding()}, headers=admin).status_code == 200
    # the config holds the digest only: the digest itself is not a key
    assert keyed.get("/api/v1/people", headers={"X-API-Key": hashed_form(ADMIN)}).status_code == 401


def test_missing_or_wrong_key_is_401_and_health_stays_open(keyed):
    assert keyed.get("/api/v1/health").status_code == 200
    for headers in ({}, {"X-API-Key": "nope"}, {"X-API-Key": READER + " "}):
        response = keyed.post("/api/v1/search", json={"embedding": embedding()}, headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"


def test_key_config_errors_fail_at_start(people_index: Path):
    with pytest.raises(KeyConfigError, match="64 hex"):
        create_app(load_settings(data_dir=people_index, api_keys=["sha256:abc"]))
    with pytest.raises(KeyConfigError, match="empty"):
        parse_keys([" "], [])


def test_authenticate_finds_the_key_and_its_scope():
    a, b, c = "admin-key-aaaaaaa", "admin-key-bbbbbbb", "read-key-ccccccccc"
    keys = parse_keys([a, hashed_form(b)], [c])
    assert authenticate(a, keys).scope == "admin"
    assert authenticate(b, keys).scope == "admin"
    assert authenticate(c, keys).scope == "read"
    assert authenticate("read-key-ddddddddd", keys) is None
    assert authenticate(c, keys).key_id == f"read-{digest_of(c).hex()[:8]}"


def test_environment_gives_both_kinds_of_keys(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FACESEARCH_API_KEYS", "a1, a2")
    monkeypatch.setenv("FACESEARCH_READ_KEYS", "r1")
    settings = load_settings()
    assert settings.api_keys == ["a1", "a2"] and settings.read_keys == ["r1"]


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.org", False),
])
def test_is_loopback(host: str, loopback: bool):
    assert is_loopback(host) is loopback


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> list:
    calls = []
    monkeypatch.setattr("service.server.run_server", lambda settings: calls.append(settings))
    return calls


def test_serve_refuses_a_public_address_without_keys(runner, people_index: Path, fake_server: list):
    result = runner.invoke(main, ["serve", "--data-dir", str(people_index), "--host", "0.0.0.0"])
    assert result.exit_code != 0 and "--insecure" in result.output
    assert fake_server == []


def test_serve_binds_publicly_with_keys_or_insecure(runner, people_index: Path, fake_server: list,
                                                    monkeypatch: pytest.MonkeyPatch):
    result = runner.invoke(main, ["serve", "--data-dir", str(people_index), "--host", "0.0.0.0", "--insecure"])
    assert result.exit_code == 0, result.output
    assert "WARNING" in result.output
    monkeypatch.setenv("FACESEARCH_READ_KEYS", "read-key-long-enough")
    result = runner.invoke(main, ["serve", "--data-dir", str(people_index), "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert len(fake_server) == 2


def test_hash_key_prints_the_config_form(runner):
    result = runner.invoke(main, ["hash-key"], input="s3cret-long-enough\n")
    assert result.output.strip() == hashed_form("s3cret-long-enough")
    result = runner.invoke(main, ["hash-key", "--new"])
    key = result.output.split()[1]
    assert f"config: {hashed_form(key)}" in result.output and len(key) >= 40


def test_audit_log_records_who_searched_what(keyed, people_index: Path):
    probe = person_faces("anna", 1)[0]
    keyed.post("/api/v1/recall", json={"embeddings": [probe.tolist()], "max_distance": 0.5, "limit": 3},
               headers={"X-API-Key": READER}, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    keyed.post("/api/v1/search", json={"embedding": probe.tolist()}, headers={"X-API-Key": "wrong"})
    keyed.get("/api/v1/health")
    lines = AuditLog.in_data_dir(people_index).read()
    assert len(lines) == 2  # health is not audited
    recall_line, refused = lines
    assert recall_line["key"].startswith("read-") and recall_line["address"] == "10.1.2.3"
    assert recall_line["path"] == "/api/v1/recall" and recall_line["status"] == 200
    assert recall_line["query"] == hash_embeddings(np.asarray([probe], dtype=np.float32))
    assert recall_line["params"]["max_distance"] == 0.5 and recall_line["params"]["limit"] == 3
    assert recall_line["results"] == 3 and recall_line["total"] == 7  # anna's 7 faces
    assert refused["key"] == "invalid" and refused["status"] == 401
    raw = (people_index / FILE_NAME).read_text()
    assert READER not in raw and "embedding" not in raw  # neither keys nor embeddings are logged
    assert all(len(json.dumps(line)) < 1000 for line in lines)


def test_audit_log_hashes_uploads_and_can_be_switched_off(people_index: Path, fake_model, tmp_path: Path):
    import hashlib
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (60, 50, 3), dtype=np.uint8)).save(buf, "PNG")
    client = client_of(people_index, model=fake_model)
    response = client.post("/api/v1/search", data={"image": (io.BytesIO(buf.getvalue()), "q.png"), "k": "2"})
    assert response.status_code == 200
    (line,) = AuditLog.in_data_dir(people_index).read()
    assert line["key"] is None and line["query"] == [hashlib.sha256(buf.getvalue()).hexdigest()]
    assert line["params"] == {"k": "2"} and line["results"] == 2
    (people_index / FILE_NAME).unlink()
    quiet = client_of(people_index, service={"audit_log": False}, model=fake_model)
    quiet.post("/api/v1/search", json={"embedding": embedding()})
    assert not (people_index / FILE_NAME).exists()


# -- caching, names, sign-in redirects, the cookie secret (issue 22) -------------


def test_face_crops_and_photos_are_revalidated_and_api_answers_not_stored(keyed, people_index: Path):
    admin = {"X-API-Key": ADMIN}
    thumb = keyed.get("/api/v1/faces/1/thumbnail", headers=admin)
    assert thumb.headers["Cache-Control"] == "private, no-cache" and thumb.headers["ETag"]
    again = keyed.get("/api/v1/faces/1/thumbnail", headers={**admin, "If-None-Match": thumb.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert keyed.get("/api/v1/faces/1", headers=admin).headers["Cache-Control"] == "no-store"
    missing = keyed.get("/api/v1/faces/99999", headers=admin)
    assert missing.status_code == 404 and missing.headers["Cache-Control"] == "no-store"
    # Once erased, the browser's copy is not shown again: revalidation finds nothing.
    keyed.delete("/api/v1/faces/1", headers=admin)
    gone = keyed.get("/api/v1/faces/1/thumbnail", headers={**admin, "If-None-Match": thumb.headers["ETag"]})
    assert gone.status_code == 404
    # Nor after the key is gone.
    assert keyed.get("/api/v1/faces/2/thumbnail", headers={"If-None-Match": '"face-2"'}).status_code == 401


def test_every_response_says_nosniff(keyed):
    for response in (keyed.get("/api/v1/health"), keyed.get("/api/v1/faces/1", headers={"X-API-Key": ADMIN}),
                     keyed.get("/api/v1/faces/1"), keyed.get("/login"), keyed.get("/static/app.css"),
                     keyed.get("/no/such/page"), keyed.get("/api/v1/openapi.json")):
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.request.path


@pytest.mark.parametrize("name, shown", [
    ("Ann\u202eenaJ", "U+202E (RIGHT-TO-LEFT OVERRIDE) at position 4"),
    ("Ann\x00", "U+0000 (NUL) at position 4"),
    ("Ann\nBob", "U+000A (LINE FEED) at position 4"),
    ("Ann\x1b]0;pwned\x07", "U+001B (ESCAPE) at position 4"),
    ("Ann\u2066x", "U+2066 (LEFT-TO-RIGHT ISOLATE) at position 4"),
])
def test_names_with_control_or_direction_characters_are_refused(keyed, name: str, shown: str):
    admin = {"X-API-Key": ADMIN}
    made = keyed.post("/api/v1/people", json={"name": name, "face_ids": [1]}, headers=admin)
    assert made.status_code == 422 and shown in made.get_json()["error"]["message"]
    person = keyed.post("/api/v1/people", json={"name": "Ann", "face_ids": [1]}, headers=admin).get_json()
    renamed = keyed.patch(f"/api/v1/people/{person['id']}", json={"name": name}, headers=admin)
    assert renamed.status_code == 422 and shown in renamed.get_json()["error"]["message"]
    assert keyed.get(f"/api/v1/people/{person['id']}", headers=admin).get_json()["name"] == "Ann"
    keyed.post("/api/v1/clusters", json={"k": 4}, headers=admin)
    named = keyed.put("/api/v1/clusters/0", json={"name": name}, headers=admin)
    assert named.status_code == 422 and shown in named.get_json()["error"]["message"]
    assert keyed.patch(f"/api/v1/people/{person['id']}", json={"name": "Zoë 👩‍👧"},
                                      headers=admin).get_json()["name"] == "Zoë 👩‍👧"  # joiners and accents are fine


def test_the_cli_refuses_such_names_and_prints_old_ones_escaped(runner, people_index: Path):
    result = runner.invoke(main, ["people", "name", "--data-dir", str(people_index), "Ann\x1b]0;pwned\x07", "1"])
    assert result.exit_code == 1 and "U+001B (ESCAPE)" in result.output and "\x1b" not in result.output
    runner.invoke(main, ["people", "name", "--data-dir", str(people_index), "Ann", "1"])
    import sqlite3

    with sqlite3.connect(people_index / "annotations.sqlite3") as conn:  # a name stored by an older version
        conn.execute("UPDATE people SET name = ?", ("Ann\x1b]0;pwned\x07\u202e",))
    listed = runner.invoke(main, ["people", "list", "--data-dir", str(people_index)])
    assert "\x1b" not in listed.output and "\u202e" not in listed.output and "\x07" not in listed.output
    assert "Ann\\u001b]0;pwned\\u0007\\u202e" in listed.output


def test_a_login_redirect_with_line_breaks_is_a_bad_request(keyed):
    for target in ("/people%0d%0aSet-Cookie:%20x=1", "/%0aLocation:%20https://evil.example/"):
        response = keyed.get(f"/login?next={target}")
        assert response.status_code == 400 and "not a valid address" in response.get_data(as_text=True)


@pytest.mark.slow
def test_a_cut_short_cookie_secret_is_a_clean_error_naming_the_file(people_index: Path):
    import subprocess
    import sys

    (people_index / "ui-secret.key").write_bytes(b"0123456789")
    executable = Path(sys.executable).with_name("facesearch")
    result = subprocess.run([str(executable), "serve", "--data-dir", str(people_index)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{people_index / 'ui-secret.key'} holds 10 bytes, 32 expected" in result.stderr
    assert "delete it" in result.stderr
