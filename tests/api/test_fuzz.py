"""Fuzz the whole HTTP API with schemathesis against the service's own
OpenAPI document (``GET /api/v1/openapi.json``): for every documented
operation, requests that follow the document (positive) and requests that
break it (negative, a missing API key included), a bounded, derandomized
number of each. No response may be a 5xx; every response must be documented
(status code, content type, headers, body schema); a request that breaks the
document must be refused.

The app serves an index of made-up people (``people_index``) through the
fake face model, requires an API key, and has one clustering run with one
named person, so that every operation also reaches its 2xx: path ids are
fuzzed, and then set to ids that exist."""

from __future__ import annotations

import contextlib

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup, ServerError
from schemathesis.openapi.checks import JsonSchemaError
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import application.clustering
import service.api
from config.settings import load_settings
from service import create_app
from service.openapi import openapi_document
from tests.helpers import fake_vector, store_at

# Generated requests per operation, generation mode and path ids (random or existing).
MAX_EXAMPLES = 20
# More for operations whose valid requests mostly name ids that do not
# exist (erasures by person or cluster: 404), so that some reach a 2xx.
EXAMPLES = {"POST /api/v1/erasures": 60}

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

# The app requires this (admin) key; requests without it must get a 401.
KEY = "fuzz-admin-key-0001"

# Every documented operation, from the document itself (the same for every app).
DOCUMENT = openapi_document()
OPERATIONS = [f"{method.upper()} {path}" for path, operations in DOCUMENT["paths"].items() for method in operations]

# Path ids that exist in the app below: person 2 (Ben) has a merge to undo,
# photo PHOTO_ID is a real file.
EXISTING_IDS = {"face_id": 1, "cluster_id": 0, "person_id": 2}


@pytest.fixture
def app(people_index, fake_model, monkeypatch, tmp_path):
    # FAISS on one thread: on every core (application.clustering.all_cores), the
    # cost curve of these 23 faces took seconds instead of milliseconds while
    # other processes kept the cores busy (its threads wait for each other).
    monkeypatch.setattr(application.clustering, "all_cores", contextlib.nullcontext)
    # One k-means restart of few iterations: the cost curve runs k-means for
    # up to 50 values of k per request.
    settings = load_settings(
        data_dir=people_index, api_keys=[KEY], clustering={"kmeans_restarts": 1, "kmeans_iterations": 5}
    )
    EXISTING_IDS["photo_id"] = add_real_photo(people_index, tmp_path)
    app = create_app(settings, model=fake_model)
    app.config["TESTING"] = True
    client = app.test_client()
    headers = {"X-API-Key": KEY}
    assert client.post("/api/v1/clusters", json={"k": 4}, headers=headers).status_code == 200
    for cluster, name in enumerate(["Anna", "Ben", "Carl"]):
        assert client.put(f"/api/v1/clusters/{cluster}", json={"name": name}, headers=headers).status_code == 200
    assert client.post("/api/v1/people/2/merge", json={"people": [3]}, headers=headers).status_code == 200
    return app


def add_real_photo(data_dir, tmp_path) -> int:
    """One photo file on disk in the index (the others are made up): its id."""
    from PIL import Image

    from indexer.hashing import file_hash
    from indexer.model import Box
    from indexer.store import FileRecord
    from indexer.store.metadata import NewFace

    path = tmp_path / "real.jpg"
    Image.new("RGB", (64, 48), (200, 120, 40)).save(path)
    size, digest = file_hash(str(path))
    store = store_at(data_dir)
    record = FileRecord(path=str(path), size=size, mtime_ns=path.stat().st_mtime_ns, content_hash=digest, width=64,
                        height=48, detection="{}", model="fake")
    store.put_file(record, [NewFace(Box(4, 40, 40, 4), fake_vector(b"real"), path.read_bytes())])
    store.checkpoint()
    photo_id = max(store.faces(store.face_ids().tolist()).values(), key=lambda r: r.face_id).photo_id
    store.close()
    return photo_id


@pytest.fixture
def schema(app):
    """The document the app serves, loaded by schemathesis, which sends the key."""
    config = schemathesis.Config.from_dict({"auth": {"openapi": {"apiKey": {"api_key": KEY}}}})
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config, headers={"X-API-Key": KEY})


# Error codes that the edges give (the key check, routing, parsing and
# validation): a request answered with one did not reach the view.
EDGE_CODES = {"unauthorized", "forbidden", "not_found", "method_not_allowed", "invalid_json", "invalid_request",
              "unsupported_media_type", "payload_too_large", "bad_request"}


def fuzz(schema, label: str, mode: GenerationMode, path_parameters: dict | None = None) -> dict[tuple[int, str], int]:
    """Check the generated requests to one operation; how many responses had
    each (status, error code: "" for a success). Raises on the first failed
    check."""
    app = schema.app
    operation = schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the served document"
    statuses: dict[tuple[int, str], int] = {}

    @hypothesis.settings(
        max_examples=EXAMPLES.get(label, MAX_EXAMPLES), deadline=None, derandomize=True, database=None,
        phases=[Phase.generate], suppress_health_check=list(HealthCheck), report_multiple_bugs=False, print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def check(case):
        response = case.call_and_validate(app=app, checks=CHECKS)
        code = ""
        if response.status_code >= 400:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                code = response.json()["error"]["code"]
        key = (response.status_code, code)
        statuses[key] = statuses.get(key, 0) + 1

    check()
    return statuses


def negatable(label: str) -> bool:
    """Whether a request can break the document (else negative generation is impossible)."""
    method, path = label.split(" ", 1)
    operation = DOCUMENT["paths"][path][method.lower()]
    return any(operation.get(part) for part in ("parameters", "requestBody", "security"))


@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz_operation(schema, label):
    runs = [(GenerationMode.POSITIVE, None)]
    if negatable(label):
        runs.append((GenerationMode.NEGATIVE, None))
    ids = {name: value for name, value in EXISTING_IDS.items() if "{" + name + "}" in label}
    if ids:
        runs += [(GenerationMode.POSITIVE, ids), (GenerationMode.NEGATIVE, ids)]
    statuses: dict[tuple[int, str], int] = {}
    for mode, path_parameters in runs:
        for key, count in fuzz(schema, label, mode, path_parameters).items():
            statuses[key] = statuses.get(key, 0) + count
    method, path = label.split(" ", 1)
    if DOCUMENT["paths"][path][method.lower()].get("deprecated"):  # moved: answers 410 only
        assert (410, "moved") in statuses and not any(200 <= s < 300 for s, _ in statuses), statuses
        return
    # The fuzzing reached the view, not only the key check and validation:
    # a success, or an error of the view's own (an unknown face, a name taken...).
    assert any(200 <= s < 300 or (s >= 400 and code not in EDGE_CODES) for s, code in statuses), statuses


def test_the_fuzzer_reports_a_server_error(schema, monkeypatch):
    def explode(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(service.api, "search_by_embedding", explode)
    with pytest.raises(FailureGroup) as found:
        fuzz(schema, "POST /api/v1/search", GenerationMode.POSITIVE)
    assert any(isinstance(failure, ServerError) for failure in found.value.exceptions)


def test_the_fuzzer_reports_an_undocumented_response(schema, monkeypatch):
    import service.api_people

    monkeypatch.setattr(service.api_people, "PeopleResponse", lambda people: application.schemas.NameRequest(
        name="not a list of people"))
    with pytest.raises(FailureGroup) as found:
        fuzz(schema, "GET /api/v1/people", GenerationMode.POSITIVE)
    assert any(isinstance(failure, JsonSchemaError) for failure in found.value.exceptions)


def test_every_route_is_documented_and_so_fuzzed(app):
    """A new endpoint must enter the document (and so this fuzzing)."""
    routes = {
        (method, rule.rule.replace("<int:", "{").replace(">", "}"))
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(label.split(" ", 1)[0], label.split(" ", 1)[1]) for label in OPERATIONS}
    assert routes - documented == set()
    assert documented - routes == set()
