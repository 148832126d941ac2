"""The OpenAPI 3.1 document, generated from the pydantic models."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import version

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.schemas import (
    ClusterRequest,
    ClustersResponse,
    ContactSheetParams,
    CostParams,
    CostResponse,
    EmbeddingSearchRequest,
    ErrorResponse,
    FaceResponse,
    HealthResponse,
    IndexResponse,
    NameRequest,
    PeopleResponse,
    PersonModel,
    RecallEmbeddingsRequest,
    RecallResponse,
    SearchResponse,
)

REF = "#/components/schemas/{model}"


def _json(schema_name: str) -> dict:
    return {"application/json": {"schema": {"$ref": REF.format(model=schema_name)}}}


def _errors(*statuses: int) -> dict:
    return {str(s): {"description": "error", "content": _json("ErrorResponse")} for s in statuses}


def _query(model: type[BaseModel]) -> list[dict]:
    """Query parameters from the fields of a flat pydantic model."""
    schema = model.model_json_schema()
    return [
        {"name": name, "in": "query", "required": False, "schema": prop, "description": prop.get("description", "")}
        for name, prop in schema["properties"].items()
    ]


def _png(description: str) -> dict:
    return {"description": description, "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    requests = [EmbeddingSearchRequest, RecallEmbeddingsRequest, ClusterRequest, NameRequest]
    responses = [SearchResponse, RecallResponse, HealthResponse, IndexResponse, FaceResponse, ClustersResponse, PersonModel,
                 PeopleResponse, CostResponse, ErrorResponse]
    _, top = models_json_schema([(m, "validation") for m in requests] + [(m, "serialization") for m in responses],
                                ref_template=REF)
    schemas = top.get("$defs", {})
    face_id = [{"name": "face_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}]
    cluster_id = [{"name": "cluster_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}]
    person_id = [{"name": "person_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}]
    name_body = {"required": True, "content": _json("NameRequest")}
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
            "/api/v1/index": {
                "get": {
                    "summary": "The served index generation (faces, photos, when published) and the last reindex run",
                    "operationId": "getIndex",
                    "security": security,
                    "responses": {
                        "200": {"description": "the index", "content": _json("IndexResponse")},
                        **_errors(401),
                    },
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
            "/api/v1/recall": {
                "post": {
                    "summary": "Every sighting of one person: all indexed faces within max_distance of any probe",
                    "operationId": "recall",
                    "security": security,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["image"],
                                    "properties": {
                                        "image": {"type": "array", "items": {"type": "string", "format": "binary"}},
                                        "max_distance": {"type": "number", "exclusiveMinimum": 0, "maximum": 4},
                                        "limit": {"type": "integer", "minimum": 1},
                                        "offset": {"type": "integer", "minimum": 0},
                                        "path_prefix": {"type": "string", "minLength": 1},
                                        "time_from": {"type": "number"},
                                        "time_to": {"type": "number"},
                                        "group_by": {"type": "string", "enum": ["source"]},
                                        "fusion": {"type": "string", "enum": ["any", "mean"]},
                                        "expand": {"type": "boolean"},
                                    },
                                }
                            },
                            "application/json": {"schema": {"$ref": REF.format(model="RecallEmbeddingsRequest")}},
                        },
                    },
                    "responses": {
                        "200": {"description": "the sightings, nearest first", "content": _json("RecallResponse")},
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
            "/api/v1/clusters": {
                "post": {
                    "summary": "Group every indexed face into people, store the run and return it",
                    "operationId": "createClusters",
                    "security": security,
                    "requestBody": {"required": False, "content": _json("ClusterRequest")},
                    "responses": {
                        "200": {"description": "the stored run", "content": _json("ClustersResponse")},
                        **_errors(400, 401, 422),
                    },
                },
                "get": {
                    "summary": "The last stored clustering, as it was computed",
                    "operationId": "getClusters",
                    "security": security,
                    "responses": {
                        "200": {"description": "the last run", "content": _json("ClustersResponse")},
                        **_errors(401, 404),
                    },
                },
            },
            "/api/v1/clusters/{cluster_id}": {
                "put": {
                    "summary": "Name a cluster of the last run: label its faces with the person (created if new)",
                    "operationId": "nameCluster",
                    "security": security,
                    "parameters": cluster_id,
                    "requestBody": name_body,
                    "responses": {
                        "200": {"description": "the person", "content": _json("PersonModel")},
                        **_errors(400, 401, 404, 422),
                    },
                }
            },
            "/api/v1/clusters/contact-sheet.png": {
                "get": {
                    "summary": "Thumbnails of the last run, one row per cluster, largest first, then the strangers",
                    "operationId": "getContactSheet",
                    "security": security,
                    "parameters": _query(ContactSheetParams),
                    "responses": {"200": _png("PNG"), **_errors(401, 404, 422)},
                }
            },
            "/api/v1/clusters/cost": {
                "get": {
                    "summary": "k-means cost (sum of squared Euclidean distances) for a range of k",
                    "operationId": "getClusterCost",
                    "security": security,
                    "parameters": _query(CostParams),
                    "responses": {
                        "200": {"description": "cost per k", "content": _json("CostResponse")},
                        **_errors(401, 422),
                    },
                }
            },
            "/api/v1/clusters/cost.png": {
                "get": {
                    "summary": "Chart of the k-means cost curve, the automatically chosen k marked",
                    "operationId": "getClusterCostChart",
                    "security": security,
                    "parameters": _query(CostParams),
                    "responses": {"200": _png("PNG"), **_errors(401, 422)},
                }
            },
            "/api/v1/people": {
                "get": {
                    "summary": "Every named person",
                    "operationId": "listPeople",
                    "security": security,
                    "responses": {
                        "200": {"description": "people by name", "content": _json("PeopleResponse")},
                        **_errors(401),
                    },
                }
            },
            "/api/v1/people/{person_id}": {
                "get": {
                    "summary": "One person",
                    "operationId": "getPerson",
                    "security": security,
                    "parameters": person_id,
                    "responses": {
                        "200": {"description": "the person", "content": _json("PersonModel")},
                        **_errors(401, 404),
                    },
                },
                "patch": {
                    "summary": "Rename a person",
                    "operationId": "renamePerson",
                    "security": security,
                    "parameters": person_id,
                    "requestBody": name_body,
                    "responses": {
                        "200": {"description": "the person", "content": _json("PersonModel")},
                        **_errors(400, 401, 404, 409, 422),
                    },
                },
                "delete": {
                    "summary": "Forget a person's name and face labels (the faces stay indexed)",
                    "operationId": "deletePerson",
                    "security": security,
                    "parameters": person_id,
                    "responses": {"204": {"description": "forgotten"}, **_errors(401, 404)},
                },
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
