"""The OpenAPI 3.1 document, generated from the declared operations
(``service.operations``) and their pydantic models: paths, parameters,
bodies (JSON and multipart), answers, error statuses and who may call
each. The limits that come from the settings (k, a recall page, probes per
request, photo sizes) are written into it from the app's settings."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from typing import Any

from flask import current_app, has_app_context
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from application.schemas import MAX_ID, MAX_JSON_BODY_BYTES, ErrorResponse
from config.settings import RecallSettings, SearchSettings, ServiceSettings, Settings
from service.operations import OPERATIONS, Operation, declare_all

REF = "#/components/schemas/{model}"
BINARY = {"type": "string", "format": "binary"}


@dataclass(frozen=True)
class Limits:
    """The per-request limits the document states (from the settings)."""

    max_k: int
    max_limit: int
    max_probes: int
    max_upload_bytes: int
    max_query_pixels: int
    max_decoded_pixels: int

    @classmethod
    def of(cls, settings: Settings | None) -> Limits:
        search = settings.search if settings else SearchSettings()
        recall = settings.recall if settings else RecallSettings()
        service = settings.service if settings else ServiceSettings()
        return cls(
            max_k=search.max_k, max_limit=recall.max_limit, max_probes=recall.max_probes,
            max_upload_bytes=int(service.max_upload_mb * 1024 * 1024), max_query_pixels=service.max_query_pixels,
            max_decoded_pixels=service.max_decoded_pixels,
        )


def openapi_document(settings: Settings | None = None) -> dict:
    """The document, with the request limits of ``settings`` (default: the
    current app's, else the defaults). Do not modify it: it is cached."""
    declare_all()  # every operation declared before the first use

    if settings is None and has_app_context() and "facesearch" in current_app.extensions:
        settings = current_app.extensions["facesearch"].settings
    return _document(Limits.of(settings))


@lru_cache(maxsize=8)
def _document(limits: Limits) -> dict:
    schemas = copy.deepcopy(_component_schemas())
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, limits)
    _apply_limits(schemas, limits)
    _apply_limits(paths, limits)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "facesearch",
            "version": version("facesearch"),
            "description": "Who looks like this? Every distance is Euclidean between 128-d dlib embeddings.\n\n"
                           f"Limits per request: a query photo of at most {limits.max_query_pixels:,} pixels, "
                           f"a body of at most {limits.max_upload_bytes:,} bytes (a JSON body "
                           f"{MAX_JSON_BODY_BYTES:,}), k at most {limits.max_k}, recall's limit at most "
                           f"{limits.max_limit} and at most {limits.max_probes} probe photos or embeddings.",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
        "paths": paths,
    }


def _operation(op: Operation, limits: Limits) -> dict:
    doc: dict[str, Any] = {"summary": op.summary, "operationId": op.operation_id}
    if op.description:
        doc["description"] = op.description
    if op.deprecated:
        doc["deprecated"] = True
    if op.scope != "open":
        doc["security"] = [{"apiKey": []}]
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}} for name in op.path_ids]
    if op.query is not None:
        parameters += _query(op.query)
    if parameters:
        doc["parameters"] = parameters
    if op.has_body:
        doc["requestBody"] = _body(op, limits)
    responses: dict[str, Any] = {str(op.status): _answer(op)}
    if op.revalidated:
        responses["304"] = {"description": "not modified (If-None-Match)"}
    for status in op.error_statuses():
        responses[str(status)] = {"description": "error", "content": _json(ErrorResponse)}
    doc["responses"] = dict(sorted(responses.items()))
    return doc


def _body(op: Operation, limits: Limits) -> dict:
    content: dict[str, Any] = {}
    if op.files is not None or op.form is not None:
        schema: dict[str, Any] = {"type": "object", "properties": {}}
        if op.form is not None:
            form = op.form.model_json_schema()
            schema["properties"].update(form.get("properties", {}))
        if op.files is not None:
            photo = {**BINARY, "description": _photo_description(limits)}
            schema["properties"][op.files] = (
                {"type": "array", "items": photo, "minItems": 1, "maxItems": limits.max_probes} if op.many_files
                else photo)
            schema["required"] = [op.files]
        content["multipart/form-data"] = {"schema": schema}
    if op.json is not None:
        content["application/json"] = {"schema": {"$ref": REF.format(model=op.json.__name__)}}
    return {"required": op.body_required, "content": content}


def _answer(op: Operation) -> dict:
    if op.response is None:
        return {"description": op.summary}
    if isinstance(op.response, str):
        schema = {"type": "object"} if op.response == "application/json" else BINARY
        return {"description": op.summary, "content": {op.response: {"schema": schema}}}
    return {"description": op.summary, "content": _json(op.response)}


def _query(model: type[BaseModel]) -> list[dict]:
    """Query parameters from the fields of a flat pydantic model."""
    schema = model.model_json_schema()
    return [
        {"name": name, "in": "query", "required": False, "schema": prop, "description": prop.get("description", "")}
        for name, prop in schema["properties"].items()
    ]


def _json(model: type[BaseModel]) -> dict:
    return {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}


def _photo_description(limits: Limits) -> str:
    return (f"JPEG, PNG, WebP, BMP, GIF (first frame) or TIFF of at most {limits.max_query_pixels:,} pixels, and of "
            f"at most {limits.max_decoded_pixels:,} unless a JPEG (decoded at reduced scale to fit); the whole "
            f"request at most {limits.max_upload_bytes:,} bytes.")


@lru_cache(maxsize=1)
def _component_schemas() -> dict:
    """The schemas of every JSON body (as validated) and answer (as
    serialised) the operations declare, and the error body."""
    modes: dict[type[BaseModel], JsonSchemaMode] = {ErrorResponse: "serialization"}
    for op in OPERATIONS:
        if op.json is not None:
            modes[op.json] = "validation"
        if isinstance(op.response, type):
            modes[op.response] = "serialization"
    _, top = models_json_schema(list(modes.items()), ref_template=REF)
    return top.get("$defs", {})


def _apply_limits(node: Any, limits: Limits) -> None:
    """Write the settings' limits where a field is marked with
    ``setting_limit`` (``x-limit``): the maximum of a number, the most
    items of a list."""
    if isinstance(node, dict):
        name = node.get("x-limit")
        if isinstance(name, str):
            value = getattr(limits, name)
            if node.get("type") == "array":
                node["maxItems"] = value
            for branch in node.get("anyOf", [node]):
                if branch.get("type") == "integer":
                    branch["maximum"] = value
                elif branch.get("type") == "array":
                    branch["maxItems"] = value
        for value in node.values():
            _apply_limits(value, limits)
    elif isinstance(node, list):
        for value in node:
            _apply_limits(value, limits)
