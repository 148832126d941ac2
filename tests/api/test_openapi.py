"""Each operation is declared once (``service.operations``): the routes,
the scope a request needs, the OpenAPI document and the endpoint table of
docs/api.md all come from the declarations, and agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.api_reference import API_DOC, api_doc
from service.openapi import openapi_document
from service.operations import OPERATIONS, Operation, declare_all
from tests.helpers import client_of

declare_all()  # every operation declared before the tests are collected

ADMIN, READER = "openapi-admin-key-01", "openapi-read-key-001"


def test_the_endpoint_table_of_the_docs_is_generated_from_the_declarations():
    """Run `make docs` when this fails."""
    assert API_DOC.read_text() == api_doc(API_DOC.read_text())


def test_every_declared_route_is_served_and_documented(people_client):
    document = openapi_document()
    rules = {(rule.rule, method) for rule in people_client.application.url_map.iter_rules()
             for method in rule.methods - {"HEAD", "OPTIONS"} if rule.rule.startswith("/api/")}
    assert rules == {(op.rule, op.method) for op in OPERATIONS}
    assert {(path, method.upper()) for path, ops in document["paths"].items() for method in ops} == {
        (op.path, op.method) for op in OPERATIONS}


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.operation_id)
def test_every_field_of_every_input_model_is_in_the_document(op: Operation):
    document = openapi_document()
    declared = document["paths"][op.path][op.method.lower()]
    if op.json is not None:
        schema = document["components"]["schemas"][op.json.__name__]
        assert set(op.json.model_fields) <= set(schema["properties"]), op.json
    if op.form is not None or op.files is not None:
        form = declared["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
        assert set(op.form.model_fields if op.form else ()) | {op.files} - {None} <= set(form)
    if op.query is not None:
        assert set(op.query.model_fields) <= {p["name"] for p in declared["parameters"] if p["in"] == "query"}
    assert set(op.path_ids) == {p["name"] for p in declared.get("parameters", []) if p["in"] == "path"}
    assert all(str(status) in declared["responses"] for status in op.error_statuses())


def test_the_settings_limits_are_in_the_document(people_index: Path):
    app = client_of(people_index, search={"max_k": 77}, recall={"max_limit": 88, "max_probes": 3}).application
    with app.app_context():
        document = openapi_document()
    schemas = document["components"]["schemas"]
    assert schemas["EmbeddingSearchRequest"]["properties"]["k"]["anyOf"][0]["maximum"] == 77
    assert schemas["RecallEmbeddingsRequest"]["properties"]["limit"]["anyOf"][0]["maximum"] == 88
    assert schemas["RecallEmbeddingsRequest"]["properties"]["embeddings"]["maxItems"] == 3
    assert "maximum" not in str(schemas["ClusterRequest"]["properties"]["k"])  # another k, not bounded so
    recall_form = document["paths"]["/api/v1/recall"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert recall_form["schema"]["properties"]["image"]["maxItems"] == 3


def test_each_operation_needs_the_scope_it_declares(people_index: Path):
    """Congruence of the declarations and the key check: every admin
    operation refuses a read key (403), no read operation does, and the open
    ones need no key."""
    client = client_of(people_index, api_keys=[ADMIN], read_keys=[READER])
    for op in OPERATIONS:
        path = re.sub(r"<int:\w+>", "1", op.rule)
        read = client.open(path, method=op.method, headers={"X-API-Key": READER}).status_code
        anonymous = client.open(path, method=op.method).status_code
        if op.scope == "admin":
            assert read == 403, op.operation_id
        else:
            assert read not in (401, 403), op.operation_id
        assert (anonymous == 401) == (op.scope != "open"), op.operation_id
