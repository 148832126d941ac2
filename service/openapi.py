"""The OpenAPI 3.1 document, generated from the pydantic models."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from typing import Any

from flask import current_app, has_app_context
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from application.schemas import (
    MAX_ID,
    MAX_JSON_BODY_BYTES,
    ClusterRequest,
    ClustersResponse,
    ContactSheetParams,
    CorrectionResponse,
    CostParams,
    CostResponse,
    CreatePersonRequest,
    EmbeddingSearchRequest,
    ErasureParams,
    ErasureRequest,
    ErasureResponse,
    ErrorResponse,
    FaceIdsRequest,
    FaceResponse,
    HealthResponse,
    IndexResponse,
    MergeRequest,
    MergesResponse,
    NameRequest,
    PeopleResponse,
    PersonFacesParams,
    PersonFacesResponse,
    PersonModel,
    PhotoImageParams,
    PhotoResponse,
    RecallEmbeddingsRequest,
    RecallResponse,
    RecogniseRequest,
    RecogniseResponse,
    SearchResponse,
    UndoMergeResponse,
)
from config.settings import RecallSettings, SearchSettings, ServiceSettings, Settings

REF = "#/components/schemas/{model}"
# Operations other than GET that a read-scope API key may use.
READ_OPERATIONS = frozenset({"search", "recall"})


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


def _json(schema_name: str) -> dict:
    return {"application/json": {"schema": {"$ref": REF.format(model=schema_name)}}}


def _errors(*statuses: int) -> dict:
    """The error responses; an operation that needs a key (401) may also
    get 429 (too many wrong keys, or photo searches at once) and 507 (the
    audit log cannot be written)."""
    if 401 in statuses:
        statuses = (*statuses, 429, 507)
    return {str(s): {"description": "error", "content": _json("ErrorResponse")} for s in sorted(set(statuses))}


def _query(model: type[BaseModel]) -> list[dict]:
    """Query parameters from the fields of a flat pydantic model."""
    schema = model.model_json_schema()
    return [
        {"name": name, "in": "query", "required": False, "schema": prop, "description": prop.get("description", "")}
        for name, prop in schema["properties"].items()
    ]


def _png(description: str) -> dict:
    return {"description": description, "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}


def _id(name: str) -> list[dict]:
    return [{"name": name, "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}}]


@lru_cache(maxsize=1)
def _component_schemas() -> dict:
    requests: list[type[BaseModel]] = [
        EmbeddingSearchRequest, RecallEmbeddingsRequest, ClusterRequest, NameRequest, ErasureRequest,
        CreatePersonRequest, FaceIdsRequest, MergeRequest, RecogniseRequest,
    ]
    responses: list[type[BaseModel]] = [
        SearchResponse, RecallResponse, HealthResponse, IndexResponse, FaceResponse, ClustersResponse, PersonModel,
        PeopleResponse, CostResponse, ErasureResponse, ErrorResponse, CorrectionResponse, UndoMergeResponse,
        MergesResponse, PersonFacesResponse, RecogniseResponse, PhotoResponse,
    ]
    modes: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, "validation") for m in requests]
    modes += [(m, "serialization") for m in responses]
    _, top = models_json_schema(modes, ref_template=REF)
    return top.get("$defs", {})


def openapi_document(settings: Settings | None = None) -> dict:
    """The document, with the request limits of ``settings`` (default: the
    current app's, else the defaults). Do not modify it: it is cached."""
    if settings is None and has_app_context() and "facesearch" in current_app.extensions:
        settings = current_app.extensions["facesearch"].settings
    return _document(Limits.of(settings))


def _erasure_paths(photo: dict, limits: Limits, security: list) -> dict:
    """The erasure operations: faces deleted from the index, metadata,
    thumbnails and stored clusterings (``indexer.erasure``)."""
    erased = {"200": {"description": "what was erased (with dry_run: would be)", "content": _json("ErasureResponse")}}
    dry_run = _query(ErasureParams)

    moved = {"410": {"description": "moved: erase with POST /api/v1/erasures", "content": _json("ErrorResponse")}}

    def moved_to_erasures(name: str, operation_id: str) -> dict:
        return {"delete": {
            "summary": f"Moved: erase with POST /api/v1/erasures {{\"{name}\": ...}} (answers 410 and erases nothing)",
            "operationId": operation_id, "deprecated": True, "security": security, "parameters": _id(name),
            "responses": {**moved, **_errors(401)},
        }}

    return {
        "/api/v1/people/{person_id}/faces": moved_to_erasures("person_id", "erasePersonMoved"),
        "/api/v1/clusters/{cluster_id}/faces": moved_to_erasures("cluster_id", "eraseClusterMoved"),
        "/api/v1/faces/{face_id}": {"delete": {
            "summary": "Erase one face (an id not in the index erases nothing)", "operationId": "eraseFace",
            "security": security, "parameters": _id("face_id") + dry_run,
            "responses": {**erased, **_errors(401, 409, 422)},
        }},
        "/api/v1/erasures": {"post": {
            "summary": "Erase faces for good: by id, every face of a person or of a cluster, and/or every face within "
                       "max_distance of probe photos or embeddings",
            "operationId": "erase",
            "security": security,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": REF.format(model="ErasureRequest")}},
                    "multipart/form-data": {"schema": {
                        "type": "object",
                        "required": ["image"],
                        "properties": {
                            "image": {"type": "array", "items": photo, "minItems": 1, "maxItems": limits.max_probes},
                            "max_distance": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                            "dry_run": {"type": "boolean"},
                        },
                    }},
                },
            },
            "responses": {**erased, **_errors(400, 401, 404, 409, 413, 415, 422)},
        }},
    }


def _people_paths(security: list) -> dict:
    """People and their corrections (``service.api_people``)."""
    person_id = _id("person_id")
    person = {"description": "the person", "content": _json("PersonModel")}
    correction = {"description": "what changed", "content": _json("CorrectionResponse")}

    def body(model: str, required: bool = True) -> dict:
        return {"required": required, "content": _json(model)}

    return {
        "/api/v1/people": {"post": {
            "summary": "Create a person from faces (they become the person's confirmed faces)",
            "operationId": "createPerson", "security": security, "requestBody": body("CreatePersonRequest"),
            "responses": {"201": person, **_errors(400, 401, 404, 409, 422)},
        }},
        "/api/v1/people/{person_id}/faces": {
            "get": {
                "summary": "A page of the person's faces, each with its source (confirmed, cluster, suggested)",
                "operationId": "getPersonFaces", "security": security,
                "parameters": person_id + _query(PersonFacesParams),
                "responses": {"200": {"description": "the faces", "content": _json("PersonFacesResponse")},
                              **_errors(401, 404, 422)},
            },
            "post": {
                "summary": "Assign (move) faces to the person: they become confirmed faces of the person",
                "operationId": "assignFaces", "security": security, "parameters": person_id,
                "requestBody": body("FaceIdsRequest"), "responses": {"200": correction, **_errors(400, 401, 404, 422)},
            },
        },
        "/api/v1/people/{person_id}/rejections": {"post": {
            "summary": "Not this person: the faces are never attributed to the person again by a cluster or a "
                       "suggestion",
            "operationId": "rejectFaces", "security": security, "parameters": person_id,
            "requestBody": body("FaceIdsRequest"), "responses": {"200": correction, **_errors(400, 401, 404, 422)},
        }},
        "/api/v1/people/{person_id}/merge": {"post": {
            "summary": "Merge other people into this one (their faces, rejections and suggestions move; they are gone)",
            "operationId": "mergePeople", "security": security, "parameters": person_id,
            "requestBody": body("MergeRequest"), "responses": {"200": person, **_errors(400, 401, 404, 422)},
        }},
        "/api/v1/people/{person_id}/merge/undo": {"post": {
            "summary": "Undo the person's last merge (faces changed since stay as they are, and are listed)",
            "operationId": "undoMerge", "security": security, "parameters": person_id,
            "responses": {"200": {"description": "what was undone", "content": _json("UndoMergeResponse")},
                          **_errors(401, 404, 409)},
        }},
        "/api/v1/people/{person_id}/merges": {"get": {
            "summary": "The merges into the person, newest first", "operationId": "getMerges",
            "security": security, "parameters": person_id,
            "responses": {"200": {"description": "merges", "content": _json("MergesResponse")}, **_errors(401, 404)},
        }},
        "/api/v1/people/recognise": {"post": {
            "summary": "Recognition now: suggest named people for new faces and for people whose confirmed faces "
                       "changed",
            "operationId": "recognise", "security": security, "requestBody": body("RecogniseRequest", False),
            "responses": {"200": {"description": "what recognition did", "content": _json("RecogniseResponse")},
                          **_errors(400, 401, 409, 422)},
        }},
    }


def _photo_paths(security: list) -> dict:
    photo_id = _id("photo_id")
    return {
        "/api/v1/photos/{photo_id}": {"get": {
            "summary": "An indexed photo or video with every face and its person", "operationId": "getPhoto",
            "security": security, "parameters": photo_id,
            "responses": {"200": {"description": "the photo", "content": _json("PhotoResponse")}, **_errors(401, 404)},
        }},
        "/api/v1/photos/{photo_id}/image": {"get": {
            "summary": "The photo as a downscaled JPEG (a video: a face's frame); 404 when the file is gone or "
                       "changed since it was indexed",
            "operationId": "getPhotoImage", "security": security,
            "parameters": photo_id + _query(PhotoImageParams),
            "responses": {"200": {"description": "JPEG", "content": {"image/jpeg": {"schema": {
                "type": "string", "format": "binary"}}}}, "304": {"description": "not modified (If-None-Match)"},
                **_errors(401, 404, 422)},
        }},
    }


@lru_cache(maxsize=8)
def _document(limits: Limits) -> dict:
    schemas = copy.deepcopy(_component_schemas())
    # Limits that come from the settings, which the pydantic models do not know.
    schemas["EmbeddingSearchRequest"]["properties"]["k"]["anyOf"][0]["maximum"] = limits.max_k
    recall = schemas["RecallEmbeddingsRequest"]["properties"]
    recall["embeddings"]["maxItems"] = limits.max_probes
    recall["limit"]["anyOf"][0]["maximum"] = limits.max_limit
    schemas["ErasureRequest"]["properties"]["embeddings"]["maxItems"] = limits.max_probes
    face_id, cluster_id, person_id = _id("face_id"), _id("cluster_id"), _id("person_id")
    name_body = {"required": True, "content": _json("NameRequest")}
    photo = {
        "type": "string", "format": "binary",
        "description": f"JPEG, PNG, WebP, BMP, GIF (first frame) or TIFF of at most {limits.max_query_pixels:,} "
                       f"pixels, and of at most {limits.max_decoded_pixels:,} unless a JPEG (decoded at reduced "
                       f"scale to fit); the whole request at most {limits.max_upload_bytes:,} bytes.",
    }
    security: list[dict[str, list[str]]] = [{"apiKey": []}]
    doc: dict[str, Any] = {
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
                                        "image": photo,
                                        "k": {"type": "integer", "minimum": 1, "maximum": limits.max_k},
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
                                        "image": {"type": "array", "items": photo, "minItems": 1,
                                                  "maxItems": limits.max_probes},
                                        "max_distance": {"type": "number", "exclusiveMinimum": 0, "maximum": 4},
                                        "limit": {"type": "integer", "minimum": 1, "maximum": limits.max_limit},
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
                        "200": {"description": "JPEG",
                                "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
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
                    "summary": "Forget a person: name, confirmed faces, rejections, suggestions (the faces stay "
                               "indexed)",
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
                    "security": security,
                    "responses": {
                        "200": {"description": "OpenAPI 3.1",
                                "content": {"application/json": {"schema": {"type": "object"}}}},
                        **_errors(401),
                    },
                }
            },
        },
    }
    for extra in (_erasure_paths(photo, limits, security), _people_paths(security), _photo_paths(security)):
        for path, operations in extra.items():
            doc["paths"].setdefault(path, {}).update(operations)
    for operations in doc["paths"].values():
        for method, operation in operations.items():
            responses = operation["responses"]
            if "security" in operation and method != "get" and operation["operationId"] not in READ_OPERATIONS:
                responses.setdefault("403", _errors(403)["403"])  # a read key where admin is needed
            if any(p["in"] == "path" for p in operation.get("parameters", [])):  # an id no route takes
                responses.setdefault("404", _errors(404)["404"])
            if "requestBody" in operation:  # over service.max_upload_mb (JSON bodies: MAX_JSON_BODY_BYTES)
                responses.setdefault("413", _errors(413)["413"])
            operation["responses"] = dict(sorted(responses.items()))
    return doc
