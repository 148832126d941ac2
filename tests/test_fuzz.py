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

import service.api
import service.clustering
from config.settings import load_settings
from service import create_app
from service.openapi import openapi_document

# Generated requests per operation, generation mode and path ids (random or existing).
MAX_EXAMPLES = 20

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

# The app requires this (admin) key; requests without it must get a 401.
KEY = "fuzz-admin-key"

# Every documented operation, from the document itself (the same for every app).
DOCUMENT = openapi_document()
OPERATIONS = [f"{method.upper()} {path}" for path, operations in DOCUMENT["paths"].items() for method in operations]

# Path ids that exist in the app below.
EXISTING_IDS = {"face_id": 1, "cluster_id": 0, "person_id": 1}


@pytest.fixture
def app(people_index, fake_model, monkeypatch):
    # FAISS on one thread: on every core (service.clustering.all_cores), the
    # cost curve of these 23 faces took seconds instead of milliseconds while
    # other processes kept the cores busy (its threads wait for each other).
    monkeypatch.setattr(service.clustering, "all_cores", contextlib.nullcontext)
    # One k-means restart of few iterations: the cost curve runs k-means for
    # up to 50 values of k per request.
    settings = load_settings(
        data_dir=people_index, api_keys=[KEY], clustering={"kmeans_restarts": 1, "kmeans_iterations": 5}
    )
    app = create_app(settings)
    app.config["TESTING"] = True
    client = app.test_client()
    headers = {"X-API-Key": KEY}
    assert client.post("/api/v1/clusters", json={"k": 4}, headers=headers).status_code == 200
    person = client.put("/api/v1/clusters/0", json={"name": "Anna"}, headers=headers).get_json()
    assert person["id"] == EXISTING_IDS["person_id"]
    return app


@pytest.fixture
def schema(app):
    """The document the app serves, loaded by schemathesis, which sends the key."""
    config = schemathesis.Config.from_dict({"auth": {"openapi": {"apiKey": {"api_key": KEY}}}})
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config, headers={"X-API-Key": KEY})


def fuzz(schema, label: str, mode: GenerationMode, path_parameters: dict | None = None) -> dict[int, int]:
    """Check MAX_EXAMPLES generated requests to one operation; how many
    responses had each status code. Raises on the first failed check."""
    app = schema.app
    operation = schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the served document"
    statuses: dict[int, int] = {}

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck), report_multiple_bugs=False, print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def check(case):
        response = case.call_and_validate(app=app, checks=CHECKS)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

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
    statuses: dict[int, int] = {}
    for mode, path_parameters in runs:
        for status, count in fuzz(schema, label, mode, path_parameters).items():
            statuses[status] = statuses.get(status, 0) + count
    # The fuzzing reached the view, not only the key check and validation.
    assert any(200 <= status < 300 for status in statuses), statuses


def test_the_fuzzer_reports_a_server_error(schema, monkeypatch):
    def explode(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(service.api, "search_by_embedding", explode)
    with pytest.raises(FailureGroup) as found:
        fuzz(schema, "POST /api/v1/search", GenerationMode.POSITIVE)
    assert any(isinstance(failure, ServerError) for failure in found.value.exceptions)


def test_the_fuzzer_reports_an_undocumented_response(schema, monkeypatch):
    monkeypatch.setattr(service.api, "PeopleResponse", lambda people: service.api.PersonModel(
        id=0, name="not a list of people", created_at="", face_count=0, clusters=[]))
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
