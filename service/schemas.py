"""Request and response models of the HTTP API. Every distance is a
**Euclidean** distance between 128-d embeddings (face_recognition's
``tolerance`` unit: 0.6 is dlib's same-person threshold), never squared."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from indexer.model import EMBEDDING_DIM


class BoxModel(BaseModel):
    """A face box in the photo's upright pixel coordinates (bottom/right exclusive)."""

    top: int
    right: int
    bottom: int
    left: int


class SearchParams(BaseModel):
    """Options of a search, as form fields (photo upload) or JSON keys."""

    model_config = ConfigDict(extra="forbid")

    k: int | None = Field(None, ge=1, description="Matches per query face (default from config, 10).")
    max_distance: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="Only matches at most this far (Euclidean)."
    )


class EmbeddingSearchRequest(SearchParams):
    """Search by a 128-d embedding instead of a photo."""

    embedding: list[float] = Field(..., min_length=EMBEDDING_DIM, max_length=EMBEDDING_DIM)

    @field_validator("embedding")
    @classmethod
    def _finite(cls, value: list[float]) -> list[float]:
        if not all(math.isfinite(v) for v in value):
            raise ValueError("embedding values must be finite numbers (no NaN or infinity)")
        return value


class Match(BaseModel):
    face_id: int
    distance: float = Field(..., description="Euclidean distance to the query face.")
    path: str
    box: BoxModel


class QueryFace(BaseModel):
    box: BoxModel | None = Field(..., description="The face in the query photo; null for an embedding query.")
    matches: list[Match]


class SearchResponse(BaseModel):
    faces: list[QueryFace] = Field(..., description="One entry per query face, largest first.")


class HealthResponse(BaseModel):
    status: Literal["ok"]
    faces: int
    photos: int
    model: str
    index_type: str


class ImageSize(BaseModel):
    width: int
    height: int


class FaceResponse(BaseModel):
    face_id: int
    path: str
    box: BoxModel
    image: ImageSize
    content_hash: str
    indexed_at: str


class ErrorDetail(BaseModel):
    code: str = Field(..., description="short_snake_case")
    message: str = Field(..., description="What went wrong and what to do.")


class ErrorResponse(BaseModel):
    error: ErrorDetail
