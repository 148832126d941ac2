"""The OpenAPI 3.1 document, generated from the pydantic models."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import version

from pydantic.json_schema import models_json_schema

from service.schemas import (
    EmbeddingSearchRequest,
    ErrorResponse,
    FaceResponse,
    HealthResponse,
    SearchResponse,
)

REF = "#/components/schemas/{model}"


def _json(schema_name: str) -> dict:
    return {"application/json": {"schema": {"$ref": REF.format(model=schema_name)}}}


def _errors(*statuses: int) -> dict:
    return {str(s): {"description": "error", "content": _json("ErrorResponse")} for s in statuses}


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    models = [EmbeddingSearchRequest, SearchResponse, HealthResponse, FaceResponse, ErrorResponse]
    _, top = models_json_schema([(m, "validation" if m is EmbeddingSearchRequest else "serialization") for m in models],
                                ref_template=REF)
    schemas = top.get("$defs", {})
    face_id = [{"name": "face_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}]
    security = [{"apiKey": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "facesearch",
            "version": version("facesearch"),
            "description": "Who looks like this? Every distance is Euclidean between 128-d dlib embeddings.",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
        "paths": {
            "/api/v1/health": {
                "get": {
                    "summary": "Liveness and index size",
                    "operationId": "health",
                    "responses": {"200": {"description": "ok", "content": _json("HealthResponse")}},
                }
            },
            "/api/v1/search": {
                "post": {
                    "summary": "Who looks like this: nearest indexed faces to each face of a photo, or to an embedding",
                    "operationId": "search",
                    "security": security,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["image"],
                                    "properties": {
                                        "image": {"type": "string", "format": "binary"},
                                        "k": {"type": "integer", "minimum": 1},
                                        "max_distance": {"type": "number", "minimum": 0},
                                    },
                                }
                            },
                            "application/json": {"schema": {"$ref": REF.format(model="EmbeddingSearchRequest")}},
                        },
                    },
                    "responses": {
                        "200": {"description": "matches per query face", "content": _json("SearchResponse")},
                        **_errors(400, 401, 413, 415, 422),
                    },
                }
            },
            "/api/v1/faces/{face_id}": {
                "get": {
                    "summary": "One indexed face",
                    "operationId": "getFace",
                    "security": security,
                    "parameters": face_id,
                    "responses": {
                        "200": {"description": "the face", "content": _json("FaceResponse")},
                        **_errors(401, 404),
                    },
                }
            },
            "/api/v1/faces/{face_id}/thumbnail": {
                "get": {
                    "summary": "JPEG crop of one indexed face",
                    "operationId": "getFaceThumbnail",
                    "security": security,
                    "parameters": face_id,
                    "responses": {
                        "200": {"description": "JPEG", "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
                        **_errors(401, 404),
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}},
                }
            },
        },
    }
