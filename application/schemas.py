"""Request and response models of the HTTP API. Every distance is a
**Euclidean** distance between 128-d embeddings (face_recognition's
``tolerance`` unit: 0.6 is dlib's same-person threshold), never squared."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.json_schema import JsonDict

from indexer.model import EMBEDDING_DIM
from indexer.people.annotations import MAX_NAME_LENGTH
from indexer.people.corrections import unsafe_character


def setting_limit(name: str) -> JsonDict:
    """Marks a field whose maximum (a number's, or a list's length) comes
    from the settings, not the model: ``service.openapi`` writes the
    configured value there (``name``: an attribute of its ``Limits``)."""
    return {"x-limit": name}


# Ids of faces, people and clusters are SQLite integers: larger ones name nothing.
MAX_ID = 2**63 - 1

# Largest JSON request body, bytes (photo uploads have service.max_upload_mb):
# a search embedding is ~3 KB, recall's 10 ~30 KB; parsing 16 MB of numbers
# would take ~0.5 GB before any model could refuse it.
MAX_JSON_BODY_BYTES = 2 * 1024 * 1024


class BoxModel(BaseModel):
    """A face box in the photo's upright pixel coordinates (bottom/right exclusive)."""

    top: int
    right: int
    bottom: int
    left: int


class SearchParams(BaseModel):
    """Options of a search, as form fields (photo upload) or JSON keys."""

    model_config = ConfigDict(extra="forbid")

    k: int | None = Field(None, ge=1, description="Matches per query face (default from config, 10).",
                          json_schema_extra=setting_limit("max_k"))
    max_distance: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="Only matches at most this far (Euclidean)."
    )
    exact: bool | None = Field(
        None,
        description="Compare with every face even where the index answers top-k searches approximately "
        "(index.search; slower on large collections).",
    )


# Largest absolute value of an embedding component a request may carry.
# dlib's are within +-1; the bound keeps every distance finite in float32 (a
# finite 1e39 is infinite there, and 1e20 overflows once squared).
EMBEDDING_VALUE_LIMIT = 100.0


def _finite(value: list[float]) -> list[float]:
    if not all(math.isfinite(v) and abs(v) <= EMBEDDING_VALUE_LIMIT for v in value):
        raise ValueError(
            f"embedding values must be finite numbers between -{EMBEDDING_VALUE_LIMIT:g} and "
            f"{EMBEDDING_VALUE_LIMIT:g} (no NaN or infinity)"
        )
    return value


# One value of an embedding: a JSON number (strict: not true, nor "0.5"),
# finite and within the limit (checked for the whole list by ``_finite``, one
# error for all its values, not one per value).
EmbeddingValue = Annotated[
    float, Field(strict=True, json_schema_extra={"minimum": -EMBEDDING_VALUE_LIMIT, "maximum": EMBEDDING_VALUE_LIMIT})
]

# A 128-d dlib embedding as a request carries it.
Embedding = Annotated[
    list[EmbeddingValue], Field(min_length=EMBEDDING_DIM, max_length=EMBEDDING_DIM), AfterValidator(_finite)
]


class EmbeddingSearchRequest(SearchParams):
    """Search by a 128-d embedding instead of a photo. Strict, as every
    JSON body (``{"k": true}`` is an error, not k = 1); the form fields of a
    photo upload (``SearchParams``) are text, read leniently."""

    model_config = ConfigDict(extra="forbid", strict=True)

    embedding: Embedding


PersonSource = Literal["confirmed", "cluster", "suggested"]


class PersonFields(BaseModel):
    """A face's person now, and where that comes from."""

    person: str | None = Field(
        None,
        description="The face's person: confirmed (a person said so), else the person its cluster of the last "
        "clustering is mapped to, else suggested by recognition; null for none.",
    )
    person_id: int | None = None
    person_source: PersonSource | None = Field(None, description="confirmed, cluster or suggested; null for none.")


class Match(PersonFields):
    face_id: int
    distance: float = Field(..., description="Euclidean distance to the query face.")
    path: str
    box: BoxModel
    photo_id: int | None = Field(None, description="The photo (or video) the face is in: GET /api/v1/photos/<id>.")


class RecallParams(BaseModel):
    """Options of a recall search, as form fields (photo uploads) or JSON keys.
    Times are POSIX seconds."""

    model_config = ConfigDict(extra="forbid")

    max_distance: float | None = Field(
        None, gt=0, le=4, allow_inf_nan=False, description="Euclidean radius (default from config, 0.55)."
    )
    limit: int | None = Field(None, ge=1, description="Matches (or sources) per page (default 100).",
                              json_schema_extra=setting_limit("max_limit"))
    offset: int = Field(0, ge=0, description="Matches (or sources) to skip.")
    path_prefix: str | None = Field(None, min_length=1, description="Only files whose path starts with this.")
    time_from: float | None = Field(None, allow_inf_nan=False, description="Only faces seen at or after (POSIX s).")
    time_to: float | None = Field(None, allow_inf_nan=False, description="Only faces seen at or before (POSIX s).")
    group_by: Literal["source"] | None = Field(None, description="`source`: one entry per photo or recording.")
    fusion: Literal["any", "mean"] = Field(
        "any", description="`any`: near any probe; `mean`: the probes' mean is searched too."
    )
    expand: bool = Field(
        False,
        description="Query expansion: also search the mean of the probes and of the faces within "
        "recall.expand_distance (0.5) of them.",
    )


class RecallEmbeddingsRequest(RecallParams):
    """Recall by 128-d embeddings of one person instead of photos (strict,
    as every JSON body)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    embeddings: list[Embedding] = Field(..., min_length=1, json_schema_extra=setting_limit("max_probes"))


class RecallMatch(PersonFields):
    face_id: int
    distance: float = Field(..., description="Euclidean distance to the nearest probe face.")
    path: str
    box: BoxModel
    timestamp: float | None = Field(None, description="Seconds into the video; null for a photo.")
    time: float | None = Field(
        None, description="When the face was seen, POSIX seconds (capture time, else file time)."
    )
    track_start: float | None = Field(None, description="A video face's track: first sighting, seconds into the video.")
    track_end: float | None = Field(None, description="A video face's track: last sighting, seconds into the video.")
    photo_id: int | None = Field(None, description="The photo (or video) the face is in.")


class RecallSource(BaseModel):
    path: str
    kind: str = Field(..., description="`photo` or `video`.")
    best_distance: float
    best_face_id: int
    hits: int
    time: float | None = Field(None, description="The file's time, POSIX seconds.")
    time_ranges: list[list[float]] | None = Field(
        None, description="A recording's [start, end] ranges (seconds into it) where the person appears."
    )


class RecallResponse(BaseModel):
    total: int = Field(..., description="Matches (or sources, with group_by) in all pages.")
    max_distance: float
    probes: int = Field(..., description="Probe faces used.")
    matches: list[RecallMatch]
    sources: list[RecallSource] | None = None


class QueryFace(BaseModel):
    box: BoxModel | None = Field(..., description="The face in the query photo; null for an embedding query.")
    matches: list[Match]


class SearchResponse(BaseModel):
    faces: list[QueryFace] = Field(
        ..., description="One entry per query face, largest first (at most search.max_query_faces of them)."
    )
    faces_found: int | None = Field(
        None, exclude_if=lambda v: v is None,
        description="Only when the query photo had more faces than search.max_query_faces: how many it had.",
    )


class HealthResponse(BaseModel):
    status: Literal["ok"]
    faces: int
    photos: int
    model: str
    encoder: str = Field(..., description="What runs the face descriptor for query photos: onnx (onnxruntime) or dlib.")
    index_type: str
    warning: str | None = Field(
        None, description="Set while a newly published index generation cannot be opened (the previous one is served)."
    )


class RunError(BaseModel):
    path: str
    error: str


class LastRun(BaseModel):
    """The last finished reindex run (``DATA_DIR/runs.jsonl``)."""

    started_at: str = Field(..., description="ISO 8601, UTC.")
    finished_at: str = Field(..., description="ISO 8601, UTC.")
    duration_s: float = Field(..., description="seconds")
    published: bool = Field(..., description="Whether the run published a new generation (false: nothing changed).")
    generation: str | None = Field(..., description="The generation published, or current, after the run.")
    images_seen: int
    images_indexed: int = Field(..., description="Photos (re-)encoded.")
    images_removed: int
    images_moved: int = Field(..., description="Photos moved or renamed, re-pathed without re-encoding.")
    faces_added: int
    faces_removed: int
    errors: int = Field(..., description="Photos that could not be read.")
    error_samples: list[RunError] = Field(..., description="The first 5 of them.")


class IndexResponse(BaseModel):
    """The index this worker serves and the last reindex run."""

    faces: int
    photos: int
    generation: str | None = Field(
        ..., description="The served generation; null for a data directory of the first layout."
    )
    published_at: str | None = Field(..., description="When the served index was last written (ISO 8601, UTC).")
    model: str
    detector: str | None = Field(
        ..., description='The face detector that built the served generation ("yunet", "hog", "cnn"); null for an '
        "index with no photo yet, or one built before detectors were recorded.",
    )
    index_type: str
    search: str = Field(
        ...,
        description='How top-k searches are answered: "exact", or the approximate index and its settings '
        "(range searches are always exact).",
    )
    last_run: LastRun | None = Field(..., description="Null before the first recorded run.")


class ImageSize(BaseModel):
    width: int
    height: int


class FaceResponse(PersonFields):
    face_id: int
    photo_id: int
    path: str
    box: BoxModel
    image: ImageSize
    content_hash: str
    indexed_at: str
    kind: Literal["photo", "video"] = "photo"
    timestamp: float | None = Field(None, description="Seconds into a video; null for a photo.")


# FAISS takes a k-means seed as a C int.
MAX_SEED = 2**31 - 1


class ClusterRequest(BaseModel):
    """Body of ``POST /api/v1/clusters``; every field is optional (defaults
    from the ``[clustering]`` settings). Distances are Euclidean."""

    model_config = ConfigDict(extra="forbid", strict=True)

    method: Literal["kmeans", "threshold"] | None = Field(
        None, description="kmeans: k given or automatic, then stranger flagging; threshold: needs no k."
    )
    k: int | None = Field(None, ge=1, description="Clusters for kmeans; null = chosen automatically.")
    stranger_distance: float | None = Field(
        None, gt=0, le=10_000, allow_inf_nan=False,
        description="A face farther than this from its cluster's centre is a stranger (kmeans: also sets "
        "neighbour_distance unless that is given).",
    )
    neighbour_distance: float | None = Field(
        None, gt=0, le=10_000, allow_inf_nan=False,
        description="kmeans: a face with no other face this near is a stranger.",
    )
    threshold: float | None = Field(
        None, gt=0, le=10_000, allow_inf_nan=False, description="The longest link the threshold method may use."
    )
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="Random seed (kmeans).")


class ClusterMember(BaseModel):
    face_id: int
    path: str
    distance: float = Field(..., description="Euclidean distance to the cluster's centre.")


class ClusterModel(BaseModel):
    id: int = Field(..., description="0 = the largest cluster.")
    size: int
    name: str | None = Field(..., description="The person the cluster is mapped to, if any.")
    person_id: int | None
    members: list[ClusterMember] = Field(..., description="Nearest the centre first.")


class Stranger(BaseModel):
    face_id: int
    path: str
    distance: float | None = Field(
        ..., description="Euclidean distance to the nearest cluster's centre; null when there is no cluster."
    )
    nearest_cluster: int | None


class ClustersResponse(BaseModel):
    """A stored clustering run: every indexed face once, in one cluster's
    ``members`` or in ``strangers``."""

    run_id: int
    created_at: str = Field(..., description="ISO 8601, UTC.")
    method: str
    k: int = Field(..., description="Number of clusters.")
    faces: int = Field(..., description="Faces clustered.")
    duration_s: float
    params: dict[str, Any] = Field(..., description="The parameters used, defaults filled in.")
    clusters: list[ClusterModel] = Field(..., description="Largest first.")
    strangers: list[Stranger] = Field(..., description="Nearest to a cluster first.")


def _safe_name(name: str) -> str:
    found = unsafe_character(name)
    if found is not None:
        raise ValueError(f"may not hold {found}")
    return name


Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH), AfterValidator(_safe_name)
]


class NameRequest(BaseModel):
    """Body of ``PUT /api/v1/clusters/<id>`` and ``PATCH /api/v1/people/<id>``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name


# Faces one correction request may name (a page of thousands of faces
# selected at once fits; more: send several requests).
MAX_CORRECTION_FACES = 10_000
# People one merge may take in.
MAX_MERGE_PEOPLE = 100

Id = Annotated[int, Field(ge=0, le=MAX_ID)]
FaceIds = Annotated[list[Id], Field(min_length=1, max_length=MAX_CORRECTION_FACES)]


class SourceCounts(BaseModel):
    confirmed: int = 0
    cluster: int = 0
    suggested: int = 0


class MergedPerson(BaseModel):
    id: int
    name: str


class MergeModel(BaseModel):
    """A merge into a person."""

    id: int
    at: str = Field(..., description="ISO 8601, UTC.")
    actor: str | None = Field(
        ..., description="The API key id that merged (\"cli\" from the command line; null without keys)."
    )
    people: list[MergedPerson] = Field(..., description="The people merged away, as they were.")
    faces_moved: int = Field(..., description="Confirmed faces the merge moved to the person.")
    undone_at: str | None = None


class PersonModel(BaseModel):
    id: int
    name: str
    created_at: str
    face_count: int = Field(..., description="Confirmed faces of this person.")
    counts: SourceCounts = Field(..., description="Faces attributed to the person now, by source.")
    clusters: list[int] = Field(..., description="Clusters of the last clustering mapped to this person.")
    cover_face_id: int | None = Field(None, description="A confirmed face to show for the person.")
    last_merge: MergeModel | None = Field(
        None, description="The person's last merge that can be undone (POST .../merge/undo), if any."
    )


class PeopleResponse(BaseModel):
    people: list[PersonModel] = Field(..., description="By name.")


class CreatePersonRequest(BaseModel):
    """Body of ``POST /api/v1/people``: a new person from faces."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name
    face_ids: FaceIds = Field(..., description=f"Their confirmed faces (at most {MAX_CORRECTION_FACES:,}).")


class DrawFaceRequest(BaseModel):
    """Body of ``POST /api/v1/photos/<id>/faces``: a face the detector
    missed, drawn by hand, and optionally who it is."""

    model_config = ConfigDict(extra="forbid", strict=True)

    box: BoxModel = Field(..., description="Around the face, in the photo's pixels (as GET /photos/<id> gives "
                                           "boxes); at least 12 pixels a side.")
    name: Name | None = Field(None, description="Who it is: a confirmed face of that person (new name: a new "
                                                "person).")


class DrawnFaceResponse(BaseModel):
    """A drawn face as added to the index."""

    face_id: int
    photo_id: int
    box: BoxModel
    person: PersonModel | None = Field(None, description="Who it was named as, if a name was given.")
    rev: int | None = Field(None, description="The naming's correction (undo: POST /corrections/<rev>/undo).")


class FaceIdsRequest(BaseModel):
    """Body of ``POST /api/v1/people/<id>/faces`` and ``.../rejections``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    face_ids: FaceIds = Field(..., description=f"At most {MAX_CORRECTION_FACES:,} faces.")


class MergeRequest(BaseModel):
    """Body of ``POST /api/v1/people/<id>/merge``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    people: Annotated[list[Id], Field(min_length=1, max_length=MAX_MERGE_PEOPLE)] = Field(
        ..., description="The people merged into this one (they are gone after)."
    )


class CorrectionResponse(BaseModel):
    """What an assignment or rejection did."""

    person: PersonModel
    face_ids: list[int]
    changed: int = Field(
        ..., description="Faces of the request whose attribution changed (the others already were so)."
    )


class ReviewSide(BaseModel):
    """One side of a question: a named person or an unnamed group of the
    last clustering (exactly one of the ids). Other keys are ignored: a
    side can be sent back as ``GET /review/pairs`` gave it."""

    model_config = ConfigDict(extra="ignore")

    person_id: int | None = Field(None, ge=1, le=2**63 - 1)
    cluster_id: int | None = Field(None, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _one_id(self) -> ReviewSide:
        if (self.person_id is None) == (self.cluster_id is None):
            raise ValueError("a side is a person_id or a cluster_id: give exactly one")
        return self


class ReviewSideModel(ReviewSide):
    """A side as a question shows it."""

    name: str | None = Field(None, description="The person's name; null for a group.")
    faces: int = Field(..., description="Its faces (a person's confirmed ones, a group's nobody has confirmed).")
    face_ids: list[int] = Field(..., description="A few of them, to show (review.faces_shown).")


class ReviewPair(BaseModel):
    a: ReviewSideModel
    b: ReviewSideModel
    distance: float = Field(..., description="Euclidean distance between the means of their faces.")


class ReviewPairsParams(BaseModel):
    """Query of ``GET /api/v1/review/pairs``."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=200, description="Questions at most.")


class ReviewPairsResponse(BaseModel):
    pairs: list[ReviewPair] = Field(..., description="Most likely one person first.")


class ReviewAnswer(BaseModel):
    """``POST /api/v1/review/pairs``: are ``a`` and ``b`` one person?"""

    model_config = ConfigDict(extra="forbid")

    a: ReviewSide
    b: ReviewSide
    same: bool


class ReviewAnswerResponse(BaseModel):
    same: bool
    correction: int = Field(..., description="The correction the answer made (undo takes it back).")
    person_id: int | None = Field(None, description="The person the two are now, when the answer was 'same'.")
    face_ids: list[int] = Field(..., description="The faces the answer changed or set apart.")


class CorrectionModel(BaseModel):
    """One correction of people (the journal): what it did and whether it can be undone."""

    rev: int
    at: str
    actor: str | None = Field(None, description="The API key id, `cli`, or null without keys.")
    action: str = Field(..., description="create, name_cluster, assign, reject, remove, merge, undo_merge, rename, "
                        "delete, cover, different, join or undo.")
    person_id: int | None
    person_name: str | None
    faces: int = Field(..., description="Faces it changed.")
    undoes: int | None = Field(None, description="The correction it undid (an undo).")
    undone_by: int | None = Field(None, description="The correction that undid it, if any.")
    undoable: bool


class CorrectionsParams(BaseModel):
    """Query of ``GET /api/v1/corrections``."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=500)


class CorrectionsResponse(BaseModel):
    corrections: list[CorrectionModel] = Field(..., description="Newest first.")


class UndoneResponse(BaseModel):
    """What undoing a correction did."""

    rev: int = Field(..., description="The undo's own correction: undo it to redo.")
    target: int = Field(..., description="The correction undone.")
    action: str = Field(..., description="What the correction undone was.")
    person_ids: list[int] = Field(..., description="The people it concerned that exist now.")
    face_ids: list[int] = Field(..., description="The faces put back.")
    left_as_they_are: list[int] = Field(..., description="Faces changed since, left as they are now.")


class UndoMergeResponse(BaseModel):
    """What undoing a person's last merge did."""

    merge_id: int
    person: PersonModel
    restored: list[PersonModel] = Field(..., description="The people merged away, back with their ids and names.")
    faces_restored: int
    rejections_restored: int
    left_as_they_are: list[int] = Field(
        ...,
        description="Faces the merge moved that something changed since (moved, rejected, erased, assigned again): "
        "they stay as they are now.",
    )


class MergesResponse(BaseModel):
    merges: list[MergeModel] = Field(..., description="Newest first.")


class PersonFacesParams(BaseModel):
    """Query of ``GET /api/v1/people/<id>/faces``."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(100, ge=1, le=1000, description="Faces per page.")
    offset: int = Field(0, ge=0)
    order: Literal["newest", "oldest", "nearest", "farthest"] = Field(
        "newest",
        description="newest/oldest photo first (capture time, else file time; faces without one last), or by "
        "distance to the person's other confirmed faces: nearest first, or farthest first (where wrong ones show).",
    )
    source: PersonSource | Literal[""] | None = Field(None, description="Only faces of this source (empty: all).")


class PersonFace(BaseModel):
    face_id: int
    photo_id: int
    path: str
    box: BoxModel
    source: PersonSource
    distance: float | None = Field(
        ...,
        description="Euclidean distance to the person's nearest confirmed face (other than itself); for a suggested "
        "face as recognition measured it. Null when the person has no other confirmed face.",
    )
    time: float | None = Field(None, description="When the face was seen, POSIX seconds.")
    timestamp: float | None = Field(None, description="Seconds into a video; null for a photo.")


class PersonFacesResponse(BaseModel):
    total: int = Field(..., description="Faces attributed to the person now (of the source asked for).")
    counts: SourceCounts
    limit: int
    offset: int
    order: str
    faces: list[PersonFace]


class RecogniseRequest(BaseModel):
    """Body of ``POST /api/v1/people/recognise`` (optional)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    everything: bool = Field(
        False,
        description="Re-evaluate every face near any confirmed face, not only new faces and the people whose "
        "confirmed faces changed.",
    )


class RecogniseResponse(BaseModel):
    evaluated: int = Field(..., description="Faces evaluated.")
    suggested: int = Field(..., description="Suggestions written.")
    people_reevaluated: int
    confirmed_faces: int
    duration_s: float


class PhotoFaceModel(PersonFields):
    face_id: int
    box: BoxModel
    timestamp: float | None = Field(None, description="Seconds into a video; null for a photo.")


class PhotoResponse(BaseModel):
    """An indexed photo or video with every face of it."""

    photo_id: int
    path: str
    width: int = Field(..., description="Pixels, upright (boxes are in these coordinates).")
    height: int
    kind: Literal["photo", "video"]
    time: float | None = Field(None, description="Capture time (a video's start), else file time: POSIX seconds.")
    duration_s: float | None = Field(None, description="A video's length, seconds.")
    content_hash: str
    indexed_at: str
    faces: list[PhotoFaceModel] = Field(..., description="In face-id order.")


class PhotoImageParams(BaseModel):
    """Query of ``GET /api/v1/photos/<id>/image``."""

    model_config = ConfigDict(extra="forbid")

    max_side: int = Field(1600, ge=16, le=4096, description="Longest side of the JPEG, pixels.")
    face_id: Id | None = Field(None, description="A video: the frame of this face (default: its first face).")


class CostParams(BaseModel):
    """Query of ``GET /api/v1/clusters/cost``: k from ``k_min`` to ``k_max``
    every ``step`` (at most 50 values; defaults: 1, ``k_min`` + 49 capped at
    the face count, the smallest step that keeps 50 values)."""

    model_config = ConfigDict(extra="forbid")

    k_min: int = Field(1, ge=1, description="Smallest k.")
    k_max: int | None = Field(None, ge=1, description="Largest k, at most the number of faces.")
    step: int | None = Field(None, ge=1, description="Spacing of the values of k.")
    seed: int | None = Field(
        None, ge=0, le=MAX_SEED, description="Random seed of k-means (default from the config)."
    )


class CostPoint(BaseModel):
    k: int
    cost: float = Field(..., description="k-means inertia: sum of squared Euclidean distances to the centres.")


class CostResponse(BaseModel):
    faces: int
    unit: Literal["sum of squared Euclidean distances"] = "sum of squared Euclidean distances"
    points: list[CostPoint]
    chosen_k: int | None = Field(
        ..., description="The k that the last clustering chose automatically, if it did (marked on the chart)."
    )


class ContactSheetParams(BaseModel):
    """Query of ``GET /api/v1/clusters/contact-sheet.png``."""

    model_config = ConfigDict(extra="forbid")

    max_per_row: int = Field(12, ge=1, le=100, description="Thumbnails per cluster, nearest the centre first.")
    max_clusters: int = Field(50, ge=1, le=1000, description="Cluster rows, largest first.")
    likeness: bool = Field(False, description="Then the strangers and people named once in rows of faces that look "
                           "alike (as on `/lookalikes`).")


class ErasureParams(BaseModel):
    """Options of an erasure, as query parameters, form fields or JSON keys."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(False, description="Only report which faces would be erased.")


class ErasureForm(ErasureParams):
    """The form fields of ``POST /api/v1/erasures`` with probe photos."""

    max_distance: float | None = Field(
        None, gt=0, le=1.0, allow_inf_nan=False,
        description="Euclidean radius around each probe "
        "(default erasure.max_distance, 0.45: few other people's faces).",
    )


class ErasureRequest(ErasureForm):
    """``POST /api/v1/erasures`` as JSON: the faces to erase, by id and/or
    near probe embeddings (or send probe photos as multipart ``image`` fields
    with ``max_distance`` and ``dry_run`` as form fields). Strict, as every
    JSON body: ``{"cluster_id": false}`` is an error, not cluster 0."""

    model_config = ConfigDict(extra="forbid", strict=True)

    face_ids: list[Annotated[int, Field(ge=0, le=MAX_ID)]] = Field(
        [], max_length=100_000, description="Faces to erase, by id."
    )
    embeddings: list[Embedding] = Field(
        [], description="Probe embeddings: every face within max_distance of one is erased.",
        json_schema_extra=setting_limit("max_probes"),
    )
    person_id: Id | None = Field(
        None,
        description="Every face of this person (confirmed, or in a cluster of the last clustering mapped to them; "
        "not the suggested ones) is erased, and the person forgotten.",
    )
    cluster_id: Id | None = Field(None, description="Every member face of this cluster of the last clustering.")


class ErasureResponse(BaseModel):
    """What an erasure did (``dry_run``: would do)."""

    dry_run: bool
    faces_erased: int = Field(..., description="Indexed faces erased (or that would be).")
    face_ids: list[int]
    photos: list[str] = Field(..., description="Files the faces were in (the files themselves are not touched).")
    labels_removed: int = Field(..., description="Person labels of these faces removed.")
    clustering_rows_removed: int = Field(..., description="Entries of these faces removed from stored clusterings.")
    person_forgotten: bool = Field(..., description="Whether the person (name) was deleted too.")
    generation: str | None = Field(..., description="The index generation published by the erasure.")


class ErrorDetail(BaseModel):
    code: str = Field(..., description="short_snake_case")
    message: str = Field(..., description="What went wrong and what to do.")


class ErrorResponse(BaseModel):
    error: ErrorDetail
