"""The HTTP views: thin, they parse and validate with the pydantic models,
call the plain functions in ``application.searching`` and ``application.clustering``
and serialise the result."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TypeVar

import numpy as np
from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, ValidationError

from application.access import Scope, allows, authenticate
from application.audit import hash_embeddings
from application.clustering import (
    cluster_params,
    clusters_response,
    contact_sheet_png,
    cost_chart_png,
    cost_response,
    run_clustering,
)
from application.index_handle import ServedIndex
from application.index_info import index_response
from application.people import person_model
from application.recall import RecallFilters, TooManyHits, faces_within, recall
from application.schemas import (
    MAX_ID,
    MAX_JSON_BODY_BYTES,
    ClusterRequest,
    ClustersResponse,
    ContactSheetParams,
    CostParams,
    CostResponse,
    EmbeddingSearchRequest,
    ErasureForm,
    ErasureParams,
    ErasureRequest,
    ErasureResponse,
    FaceResponse,
    HealthResponse,
    ImageSize,
    IndexResponse,
    NameRequest,
    PersonModel,
    RecallEmbeddingsRequest,
    RecallParams,
    RecallResponse,
    SearchParams,
    SearchResponse,
)
from application.searching import box_model, decode_query, person_fields, search_by_embedding, search_by_photo
from config.settings import DetectionSettings, Settings
from indexer import model as face_model
from indexer.erasure import erase_faces, preview_erasure
from indexer.faces import find_faces
from indexer.images import ImageError, ScaledPhoto
from indexer.model import EMBEDDING_DIM
from indexer.store import runs
from indexer.store.annotations import (
    ClusterNotFoundError,
    NoClusteringError,
    PersonNotFoundError,
    StoredRun,
)
from indexer.store.generations import IndexBusyError
from service.context import ServiceState, actor, audited, served, state
from service.errors import ApiError
from service.guard import count_wrong_key, refuse_if_blocked, take_photo_slot
from service.openapi import openapi_document
from service.operations import JPEG, PNG, Api, operation_of

Request = TypeVar("Request", bound=BaseModel)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
api = Api(bp)
log = logging.getLogger(__name__)

IMAGE_ERROR_STATUS = {
    "empty_image": 400,
    "invalid_image": 400,
    "unsupported_image_format": 415,
    "image_too_large": 413,
}


def ok(model: BaseModel) -> Response:
    """Serialise a response model (pydantic's own JSON encoder, in Rust)."""
    return Response(model.model_dump_json(), mimetype="application/json")


def json_body(model: type[Request]) -> Request:
    """Parse and validate a JSON body in one pass (pydantic's JSON parser):
    malformed JSON is a 400, a body of the wrong shape a 422, one over
    ``MAX_JSON_BODY_BYTES`` a 413 (refused before it is parsed)."""
    too_large = ApiError(413, "payload_too_large", f"a JSON body may have at most {MAX_JSON_BODY_BYTES:,} bytes")
    if (request.content_length or 0) > MAX_JSON_BODY_BYTES:
        raise too_large
    data = request.get_data(cache=False)
    if len(data) > MAX_JSON_BODY_BYTES:
        raise too_large
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
        raise


@bp.url_value_preprocessor
def ids_in_range(endpoint: str | None, values: dict | None) -> None:
    """An id past SQLite's range is an unknown id (404), not an error."""
    if values and any(isinstance(v, int) and v > MAX_ID for v in values.values()):
        raise ApiError(404, "not_found", "no such id: ids are at most 2**63 - 1")


@bp.before_request
def require_api_key() -> None:
    """With keys configured, every operation but the open ones (health)
    needs an ``X-API-Key`` of the scope it declares (``service.operations``;
    a route of none, a 404 or 405, needs a read key): 401 without a valid
    key, 403 with a read key where admin is needed, 429 while the client
    address is blocked for wrong keys (``service.guard``). The key's id is
    kept for the audit log. A photo search then takes one of its client's
    slots."""
    keys = state().keys
    op = operation_of(request.endpoint)
    if keys and not (op is not None and op.scope == "open"):
        given = request.headers.get("X-API-Key", "")
        if given:
            refuse_if_blocked()
        key = authenticate(given, keys)
        if key is None:
            if given:
                count_wrong_key()
            g.auth_failed = True
            raise ApiError(401, "unauthorized", "a valid X-API-Key header is required")
        g.key_id = key.key_id
        needed: Scope = "admin" if op is not None and op.scope == "admin" else "read"
        if not allows(key.scope, needed):
            raise ApiError(403, "forbidden",
                           f"this key may only read; {request.method} {request.path} needs an admin key")
    take_photo_slot()


@api.get("/health", operation_id="health", scope="open", response=HealthResponse,
         summary="Liveness and index size",
         description="`index_type` is `\"IDMap2,Flat\"` for the embedded FAISS store, `\"Milvus FLAT\"` with "
         "`store.backend = \"milvus\"`; `warning` says why a newly published generation is not served yet.")
def health() -> Response:
    store = served().store
    return ok(
        HealthResponse(
            status="ok", faces=store.count(), photos=store.photo_count(), model=store.manifest.get("model", ""),
            encoder=face_model.encoder(), index_type=store.index_type, warning=state().index.warning,
        )
    )


@api.get("/index", operation_id="getIndex", scope="read", response=IndexResponse,
         summary="The served index generation (faces, photos, when published) and the last reindex run",
         description="`last_run` is null before the first run; its `errors` is a count, `error_samples` the "
         "first 5.")
def get_index() -> Response:
    """The served generation, its size, and the last reindex run."""
    return ok(index_response(served(), runs.last_run(state().index.data_dir)))


@api.post("/search", operation_id="search", scope="read", response=SearchResponse,
          json=EmbeddingSearchRequest, form=SearchParams, files="image", errors=(400, 415),
          summary="Who looks like this: nearest indexed faces to each face of a photo, or to an embedding",
          description="A photo (multipart `image`, with `k`, `max_distance`, `exact` as form fields) or JSON "
          "`{\"embedding\": [128 floats]}`. One entry per query face, largest first, each with its matches by "
          "ascending distance; each match has `photo_id`, `person`, `person_id` and `person_source` (confirmed, "
          "cluster, suggested or null). `exact`: compare with every face even where the index searches "
          "approximately (`index.search`).")
def search() -> Response:
    """Who looks like this: a photo upload (``image``) or a JSON embedding.
    Validation errors (pydantic) become 422 in the error handler."""
    st = state()
    content_type = request.mimetype
    if content_type == "multipart/form-data":
        params = SearchParams.model_validate({k: v for k, v in request.form.items() if v != ""})
        k = _checked_k(params.k, st.settings)
        index = served()
        detection = st.query_detection or index.detection
        photo = _uploaded_image(st.settings, detection)
        result = search_by_photo(index.store, photo, detection, k, params.max_distance, st.annotations.attributions,
                                 max_faces=st.settings.search.max_query_faces, exact=bool(params.exact))
    elif content_type == "application/json":
        req = json_body(EmbeddingSearchRequest)
        audited(query=hash_embeddings(np.asarray(req.embedding, dtype=np.float32)[None]),
                params=req.model_dump(exclude={"embedding"}, exclude_none=True))
        k = _checked_k(req.k, st.settings)
        result = search_by_embedding(
            served().store, np.asarray(req.embedding, dtype=np.float32), k, req.max_distance,
            st.annotations.attributions, exact=bool(req.exact),
        )
    else:
        raise ApiError(
            415, "unsupported_media_type",
            "send multipart/form-data with a file field `image`, or application/json with an `embedding`",
        )
    audited(results=sum(len(face.matches) for face in result.faces), faces=len(result.faces))
    return ok(result)


@api.post("/recall", operation_id="recall", scope="read", response=RecallResponse,
          json=RecallEmbeddingsRequest, form=RecallParams, files="image", many_files=True, errors=(400, 415),
          summary="Every sighting of one person: all indexed faces within max_distance of any probe",
          description="CCTV-style, recall first: probe photos (one or more multipart `image` fields; the largest "
          "face of each is a probe) or JSON `{\"embeddings\": [...]}`, nearest first, paged by `limit`/`offset`; "
          "filters by `path_prefix` (a camera's folder) and `time_from`/`time_to` (POSIX seconds); "
          "`group_by: \"source\"` pages sources instead; `fusion: \"mean\"` also searches the probes' mean; "
          "`expand` adds query expansion. A probe with no face: 422 `no_face`; more than `recall.max_hits` faces "
          "in the radius: 422 `too_many_results`.")
def recall_search() -> Response:
    """Every sighting of one person: probe photos (``image``, one or more;
    the largest face of each) or JSON ``embeddings``."""
    st = state()
    index = served()
    if request.mimetype == "multipart/form-data":
        params = RecallParams.model_validate({k: v for k, v in request.form.items() if v != ""})
        probes = _probe_faces(st, index)
    elif request.mimetype == "application/json":
        params = json_body(RecallEmbeddingsRequest)
        audited(query=hash_embeddings(np.asarray(params.embeddings, dtype=np.float32)),
                params=params.model_dump(exclude={"embeddings"}, exclude_none=True))
        if len(params.embeddings) > st.settings.recall.max_probes:
            raise ApiError(422, "invalid_request", f"at most {st.settings.recall.max_probes} embeddings per request")
        probes = np.asarray(params.embeddings, dtype=np.float32)
    else:
        raise ApiError(
            415, "unsupported_media_type",
            "send multipart/form-data with one or more file fields `image`, or application/json with `embeddings`",
        )
    limit = params.limit or st.settings.recall.default_limit
    if limit > st.settings.recall.max_limit:
        raise ApiError(422, "invalid_request", f"limit: must be at most {st.settings.recall.max_limit}")
    if params.time_from is not None and params.time_to is not None and params.time_from > params.time_to:
        raise ApiError(422, "invalid_request", "time_from is after time_to")
    try:
        result = recall(
            index.store, probes, max_distance=params.max_distance or st.settings.recall.max_distance,
            limit=limit, offset=params.offset,
            filters=RecallFilters(params.path_prefix, params.time_from, params.time_to),
            group_by=params.group_by, fusion=params.fusion, max_hits=st.settings.recall.max_hits,
            expand_distance=st.settings.recall.expand_distance if params.expand else None,
            people=st.annotations.attributions,
        )
    except TooManyHits as exc:
        raise ApiError(422, "too_many_results", str(exc)) from None
    audited(results=len(result.matches), total=result.total)
    return ok(result)


@api.get("/faces/<int:face_id>", operation_id="getFace", scope="read", response=FaceResponse,
         summary="One indexed face: its file, box, photo and person")
def face(face_id: int) -> Response:
    record = served().store.faces([face_id]).get(face_id)
    if record is None:
        raise ApiError(404, "face_not_found", f"no face with id {face_id} in the index")
    person = state().annotations.attributions([face_id]).get(face_id)
    return ok(
        FaceResponse(
            face_id=record.face_id, photo_id=record.photo_id, path=record.path, box=box_model(record.box),
            image=ImageSize(width=record.width, height=record.height), content_hash=record.content_hash,
            indexed_at=record.indexed_at, kind="video" if record.kind == "video" else "photo",
            timestamp=record.timestamp, **person_fields(person),
        )
    )


@api.get("/faces/<int:face_id>/thumbnail", operation_id="getFaceThumbnail", scope="read", response=JPEG,
         revalidated=True, summary="JPEG crop of one indexed face (stored at index time)",
         description="`Cache-Control: private, no-cache` with an ETag: revalidated at each view (304 when "
         "unchanged; 404 once erased).")
def thumbnail(face_id: int) -> Response:
    jpeg = served().store.thumbnail(face_id)
    if jpeg is None:
        raise ApiError(404, "face_not_found", f"no face with id {face_id} in the index")
    return revalidated_image(jpeg, f"face-{face_id}")


@api.post("/clusters", operation_id="createClusters", scope="admin", response=ClustersResponse,
          json=ClusterRequest, body_required=False, errors=(400,),
          summary="Group every indexed face into people, store the run and return it",
          description="Every field optional (defaults from `[clustering]`). Every face appears exactly once, in a "
          "cluster (largest first, members nearest their centre first) or among the strangers. An empty index "
          "gives `k: 0` and empty lists.")
def create_clusters() -> Response:
    """Cluster every indexed face, store the run and return it. The JSON
    body is optional; bad parameters are 422."""
    st = state()
    req = json_body(ClusterRequest) if request.content_length else ClusterRequest()
    params = cluster_params(req, st.settings.clustering)
    store = served().store
    try:
        run = run_clustering(store, st.annotations, params, st.settings.clustering)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    return ok(clusters_response(store, st.annotations, run))


@api.get("/clusters", operation_id="getClusters", scope="read", response=ClustersResponse, errors=(404,),
         summary="The last stored clustering, read back as it was computed (404 before the first)")
def last_clusters() -> Response:
    """The last stored run, read back as it was computed."""
    return ok(clusters_response(served().store, state().annotations, _last_run()))


@api.put("/clusters/<int:cluster_id>", operation_id="nameCluster", scope="admin", response=PersonModel,
         json=NameRequest, errors=(400,),
         summary="Name a cluster of the last run: its members become confirmed faces of that person",
         description="The person is created when the name is new (names are case-insensitive); members "
         "confirmed for someone else, or rejected for this person, are left as they are.")
def name_cluster(cluster_id: int) -> Response:
    """Name a cluster of the last run: its faces are labelled with the person."""
    req = json_body(NameRequest)
    try:
        named = state().annotations.name_cluster_faces(cluster_id, req.name, actor=actor())
    except NoClusteringError as exc:
        raise ApiError(404, "no_clustering", str(exc)) from None
    except ClusterNotFoundError as exc:
        raise ApiError(404, "cluster_not_found", str(exc)) from None
    audited(params={"cluster_id": cluster_id, "person_id": named.person.person_id}, face_ids=named.face_ids,
            results=named.changed)
    return ok(person_model(named.person))


@api.get("/clusters/contact-sheet.png", operation_id="getContactSheet", scope="read", response=PNG,
         query=ContactSheetParams, errors=(404,),
         summary="Thumbnails of the last run, one row per cluster, largest first, then the strangers")
def contact_sheet() -> Response:
    query = ContactSheetParams.model_validate(query_args())
    st = state()
    png = contact_sheet_png(
        served().store, st.annotations, _last_run(), max_per_row=query.max_per_row, max_clusters=query.max_clusters
    )
    return Response(png, mimetype="image/png")


@api.get("/clusters/cost", operation_id="getClusterCost", scope="read", response=CostResponse, query=CostParams,
         summary="k-means cost (sum of squared Euclidean distances) for a range of k",
         description="At most 50 values of k, `k_max` at most the number of faces; `chosen_k` is the k the last "
         "clustering chose automatically (null if it did not).")
def cluster_cost() -> Response:
    return ok(_cost())


@api.get("/clusters/cost.png", operation_id="getClusterCostChart", scope="read", response=PNG, query=CostParams,
         summary="Chart of the k-means cost curve, the automatically chosen k marked")
def cluster_cost_chart() -> Response:
    return Response(cost_chart_png(_cost()), mimetype="image/png")


@api.delete("/faces/<int:face_id>", operation_id="eraseFace", scope="admin", response=ErasureResponse,
            query=ErasureParams, errors=(409,),
            summary="Erase one face for good (an id not in the index erases nothing)",
            description="`?dry_run=true` reports without erasing. See docs/access.md for what erasure removes.")
def erase_face(face_id: int) -> Response:
    """Erase one face for good (``indexer.erasure``)."""
    params = ErasureParams.model_validate(query_args())  # an empty dry_run is an error, not "erase"
    return _erase([face_id], params.dry_run, target={"face_id": face_id})


@api.delete("/people/<int:person_id>/faces", endpoint="person_erasure_moved", operation_id="erasePersonMoved",
            scope="admin", errors=(410,), deprecated=True,
            summary="Moved: erase with POST /api/v1/erasures {\"person_id\": ...} (answers 410, erases nothing)")
@api.delete("/clusters/<int:cluster_id>/faces", endpoint="cluster_erasure_moved", operation_id="eraseClusterMoved",
            scope="admin", errors=(410,), deprecated=True,
            summary="Moved: erase with POST /api/v1/erasures {\"cluster_id\": ...} (answers 410, erases nothing)")
def erasure_moved(**ids: int) -> Response:
    """Erasing a person's or a cluster's faces moved to ``POST /erasures``:
    beside ``POST /people/<id>/faces`` (assign), a DELETE there read as
    "unassign", and it erased faces for good."""
    target = next(iter(ids))
    raise ApiError(
        410, "moved",
        f'erasing faces for good is POST /api/v1/erasures {{"{target}": {ids[target]}}} (with "dry_run": true to '
        "see what it would erase); to say faces are not a person without erasing them, POST "
        "/api/v1/people/<id>/rejections",
    )


@api.post("/erasures", operation_id="erase", scope="admin", response=ErasureResponse, json=ErasureRequest,
          form=ErasureForm, files="image", many_files=True, errors=(400, 404, 409, 415),
          summary="Erase faces for good: by id, every face of a person or of a cluster, and/or every face within "
          "max_distance of probe photos or embeddings",
          description="JSON, or multipart probe photos (`image`) with `max_distance` and `dry_run`. Takes the "
          "index lock (409 `index_busy` while a reindex runs); see docs/access.md.")
def erase_near() -> Response:
    """Erase faces by id and/or every face within ``max_distance`` of probe
    photos (multipart ``image``) or embeddings (JSON)."""
    st = state()
    index = served()
    person_id: int | None = None
    target: dict = {}
    if request.mimetype == "multipart/form-data":
        form = ErasureForm.model_validate({k: v for k, v in request.form.items() if v != ""})
        probes, face_ids, max_distance, dry_run = _probe_faces(st, index), [], form.max_distance, form.dry_run
    elif request.mimetype == "application/json":
        req = json_body(ErasureRequest)
        if len(req.embeddings) > st.settings.recall.max_probes:
            raise ApiError(422, "invalid_request", f"at most {st.settings.recall.max_probes} embeddings per request")
        if not (req.embeddings or req.face_ids or req.person_id is not None or req.cluster_id is not None):
            raise ApiError(422, "invalid_request",
                           "give face_ids, embeddings, person_id, cluster_id or probe photos: nothing to erase")
        probes = np.asarray(req.embeddings, dtype=np.float32).reshape(-1, EMBEDDING_DIM)
        face_ids, max_distance, dry_run = list(req.face_ids), req.max_distance, req.dry_run
        if len(probes):
            audited(query=hash_embeddings(probes))
        try:
            if req.person_id is not None:
                person_id = req.person_id
                face_ids += st.annotations.faces_of_person(req.person_id)
            if req.cluster_id is not None:
                face_ids += st.annotations.faces_of_cluster(req.cluster_id)
        except PersonNotFoundError as exc:
            raise ApiError(404, "person_not_found", str(exc)) from None
        except NoClusteringError as exc:
            raise ApiError(404, "no_clustering", str(exc)) from None
        except ClusterNotFoundError as exc:
            raise ApiError(404, "cluster_not_found", str(exc)) from None
        target.update(person_id=req.person_id, cluster_id=req.cluster_id)
    else:
        raise ApiError(415, "unsupported_media_type",
                       "send application/json with face_ids or embeddings, or multipart/form-data with `image` fields")
    radius = max_distance or st.settings.erasure.max_distance
    near: list[int] = []
    if len(probes):
        try:
            near = list(faces_within(index.store, probes, radius, st.settings.recall.max_hits))
        except TooManyHits as exc:
            raise ApiError(422, "too_many_results", str(exc)) from None
    target.update(face_ids=len(face_ids), probes=len(probes), max_distance=radius if len(probes) else None)
    return _erase(list(face_ids) + near, dry_run, person_id=person_id,
                  target={k: v for k, v in target.items() if v is not None})


def _erase(face_ids: list[int], dry_run: bool, *, person_id: int | None = None, target: dict) -> Response:
    st = state()
    if dry_run:
        index = served()
        report = preview_erasure(index.store, face_ids, index.generation)
    else:
        try:
            report = erase_faces(st.index.data_dir, face_ids, st.annotations, person_id=person_id, settings=st.settings)
        except IndexBusyError as exc:
            raise ApiError(409, "index_busy", f"{exc} Retry the erasure afterwards.") from None
        st.index.check_now()  # this worker stops serving the erased faces at once
    audited(params={**target, "dry_run": dry_run}, results=report.faces_erased, face_ids=report.face_ids)
    return ok(ErasureResponse(**asdict(report)))


@api.get("/openapi.json", operation_id="openapi", scope="read", response="application/json",
         summary="This document (OpenAPI 3.1)")
def openapi() -> Response:
    return jsonify(openapi_document())


def _last_run() -> StoredRun:
    run = state().annotations.last_run()
    if run is None:
        raise ApiError(404, "no_clustering", "no clustering has been run yet: POST /api/v1/clusters first")
    return run


def revalidated_image(jpeg: bytes, etag: str) -> Response:
    """A face crop or photo that no cache shows again without asking: after
    a sign-out, a key's removal or an erasure the next view is refused; an
    unchanged one costs a 304 (``private, no-cache`` with its ETag)."""
    unchanged = request.if_none_match.contains(etag)
    response = Response(status=304) if unchanged else Response(jpeg, mimetype="image/jpeg")
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def query_args() -> dict[str, str]:
    """The query string's parameters, as the OpenAPI document declares
    them: an empty value is a value (``?k_max=`` is not a number: 422), not
    a parameter left out."""
    return request.args.to_dict()


def _cost() -> CostResponse:
    st = state()
    query = CostParams.model_validate(query_args())
    try:
        return cost_response(served().store, st.settings.clustering, query, st.annotations.last_run_info())
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None


def _checked_k(k: int | None, settings: Settings) -> int:
    if k is None:
        return settings.search.default_k
    if k > settings.search.max_k:
        raise ApiError(422, "invalid_request", f"k: must be at most {settings.search.max_k}")
    return k


def _probe_faces(st: ServiceState, index: ServedIndex) -> np.ndarray:
    """The largest face of each uploaded probe photo, (p, 128); a probe that
    is not an image or shows no face is the client's error (4xx)."""
    uploads = request.files.getlist("image")
    if not uploads:
        raise ApiError(400, "missing_image", "send one or more probe photos as multipart file fields named `image`")
    if len(uploads) > st.settings.recall.max_probes:
        raise ApiError(422, "invalid_request", f"at most {st.settings.recall.max_probes} probe photos per request")
    detection = st.query_detection or index.detection
    probes = []
    for number, upload in enumerate(uploads, start=1):
        try:
            photo = decode_query(upload.read(), st.settings.service, detection)
        except ImageError as exc:
            raise ApiError(IMAGE_ERROR_STATUS.get(exc.code, 400), exc.code, f"probe {number}: {exc}") from None
        faces = find_faces(photo.rgb, detection, max_faces=1)  # only the largest face is a probe
        if not faces:
            name = (upload.filename or "upload")[:100]
            raise ApiError(422, "no_face", f"probe {number} ({name}) shows no face")
        probes.append(faces[0].embedding)  # largest first
    return np.stack(probes)


def _uploaded_image(settings: Settings, detection: DetectionSettings) -> ScaledPhoto:
    upload = request.files.get("image")
    if upload is None:
        raise ApiError(400, "missing_image", "send the photo as a multipart file field named `image`")
    data = upload.read()
    try:
        return decode_query(data, settings.service, detection)
    except ImageError as exc:
        raise ApiError(IMAGE_ERROR_STATUS.get(exc.code, 400), exc.code, str(exc)) from None
