"""API keys with scopes, hashed keys, the loopback rule of ``serve`` and the
audit log."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from config.settings import load_settings
from facesearch.cli import main
from service import create_app
from service.access import KeyConfigError, authenticate, digest_of, hashed_form, is_loopback, parse_keys
from service.audit import FILE_NAME, AuditLog, hash_embeddings
from tests.conftest import person_faces

ADMIN, READER = "admin-secret", "reader-secret"


def client_of(data_dir: Path, **settings):
    app = create_app(load_settings(data_dir=data_dir, **settings))
    app.config["TESTING"] = True
    return app.test_client()


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
    keys = parse_keys(["a", hashed_form("b")], ["c"])
    assert authenticate("a", keys).scope == "admin"
    assert authenticate("b", keys).scope == "admin"
    assert authenticate("c", keys).scope == "read"
    assert authenticate("d", keys) is None
    assert authenticate("c", keys).key_id == f"read-{digest_of('c').hex()[:8]}"


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
    monkeypatch.setenv("FACESEARCH_READ_KEYS", "r1")
    result = runner.invoke(main, ["serve", "--data-dir", str(people_index), "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert len(fake_server) == 2


def test_hash_key_prints_the_config_form(runner):
    result = runner.invoke(main, ["hash-key"], input="s3cret\n")
    assert result.output.strip() == hashed_form("s3cret")
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
    client = client_of(people_index)
    response = client.post("/api/v1/search", data={"image": (io.BytesIO(buf.getvalue()), "q.png"), "k": "2"})
    assert response.status_code == 200
    (line,) = AuditLog.in_data_dir(people_index).read()
    assert line["key"] is None and line["query"] == [hashlib.sha256(buf.getvalue()).hexdigest()]
    assert line["params"] == {"k": "2"} and line["results"] == 2
    (people_index / FILE_NAME).unlink()
    quiet = client_of(people_index, service={"audit_log": False})
    quiet.post("/api/v1/search", json={"embedding": embedding()})
    assert not (people_index / FILE_NAME).exists()
