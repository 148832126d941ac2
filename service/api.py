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
    last_run,
    run_clustering,
)
from application.compare import Comparison, compare_faces, comparison_png
from application.erasure import ErasureTarget, erase
from application.explanation_schemas import CompareResponse, ExplanationResponse, TradeoffResponse
from application.explanations import explain_face
from application.faces import face_response, face_thumbnail
from application.index_info import health_response, index_response
from application.people import person_model
from application.probes import probes_of_embeddings, probes_of_photos
from application.recall import sightings
from application.recognition_trade import recognition_trade
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
    IndexResponse,
    NameRequest,
    PersonModel,
    RecallEmbeddingsRequest,
    RecallParams,
    RecallResponse,
    SearchParams,
    SearchResponse,
)
from application.searching import checked_k, decode_query, search_by_embedding, search_by_photo
from application.tradeoff import tradeoff_curve
from service.context import actor, audited, served, state
from service.errors import ApiError
from service.guard import count_wrong_key, refuse_if_blocked, take_photo_slot
from service.openapi import openapi_document
from service.operations import JPEG, PNG, Api, operation_of

Request = TypeVar("Request", bound=BaseModel)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
api = Api(bp)
log = logging.getLogger(__name__)

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
    st = state()
    return ok(health_response(st.index, served(), st.model.encoder.name))


@api.get("/index", operation_id="getIndex", scope="read", response=IndexResponse,
         summary="The served index generation (faces, photos, when published) and the last reindex run",
         description="`last_run` is null before the first run; its `errors` is a count, `error_samples` the "
         "first 5.")
def get_index() -> Response:
    """The served generation, its size, and the last reindex run."""
    return ok(index_response(served(), state().index.data_dir))


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
    index = served()
    content_type = request.mimetype
    if content_type == "multipart/form-data":
        params = SearchParams.model_validate(form_fields())
        k = checked_k(params.k, st.settings.search)
        detection = st.query_detection or index.detection
        (upload,) = uploads(many=False)
        photo = decode_query(upload[1], st.settings.service, detection)
        result = search_by_photo(st.model, index.store, photo, detection, k, params.max_distance,
                                 st.annotations.attributions, max_faces=st.settings.search.max_query_faces,
                                 exact=bool(params.exact))
    elif content_type == "application/json":
        req = json_body(EmbeddingSearchRequest)
        audited(query=hash_embeddings(np.asarray(req.embedding, dtype=np.float32)[None]),
                params=req.model_dump(exclude={"embedding"}, exclude_none=True))
        result = search_by_embedding(index.store, np.asarray(req.embedding, dtype=np.float32),
                                     checked_k(req.k, st.settings.search), req.max_distance,
                                     st.annotations.attributions, exact=bool(req.exact))
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
    params: RecallParams
    if request.mimetype == "multipart/form-data":
        params = RecallParams.model_validate(form_fields())
        probes = probes_of_photos(st.model, uploads(many=True), st.settings, st.query_detection or index.detection)
    elif request.mimetype == "application/json":
        params = json_body(RecallEmbeddingsRequest)
        audited(query=hash_embeddings(np.asarray(params.embeddings, dtype=np.float32)),
                params=params.model_dump(exclude={"embeddings"}, exclude_none=True))
        probes = probes_of_embeddings(params.embeddings, st.settings)
    else:
        raise ApiError(
            415, "unsupported_media_type",
            "send multipart/form-data with one or more file fields `image`, or application/json with `embeddings`",
        )
    result = sightings(index.store, probes, params, st.settings, people=st.annotations.attributions)
    audited(results=len(result.matches), total=result.total)
    return ok(result)


@api.get("/faces/<int:face_id>", operation_id="getFace", scope="read", response=FaceResponse,
         summary="One indexed face: its file, box, photo and person")
def face(face_id: int) -> Response:
    return ok(face_response(served().store, state().annotations.attributions, face_id))


@api.get("/faces/<int:face_id>/explanation", operation_id="explainFace", scope="read", response=ExplanationResponse,
         summary="Why a face is who it is: the evidence faces, the rule and the thresholds that decided",
         description="For an attributed face: its person's nearest confirmed faces and the runner-up's, the margin, "
         "and the rule's branch (re-run on today's confirmed faces: `current` false when they no longer support a "
         "suggestion). For a face with nobody: why the last grouping flagged it (`stranger`) or left it in an "
         "unnamed group, and why recognition named nobody. Distances Euclidean; `docs/explanations.md`.")
def explain(face_id: int) -> Response:
    st = state()
    return ok(ExplanationResponse.of(explain_face(served().store, st.annotations, face_id, st.settings)))


@api.get("/faces/<int:face_a>/compare/<int:face_b>", operation_id="compareFaces", scope="read",
         response=CompareResponse,
         summary="Two faces' distance and where they match: occlusion maps over both aligned chips",
         description="Each face's 150x150 chip is cut from its file as indexed; each of the 10x10 cells is hidden in "
         "turn and the change of Euclidean distance recorded (> 0: the cell makes them alike). About 0.5 s. "
         "404 `photo_unavailable` when a file is gone or changed since it was indexed. `docs/explanations.md`.")
def compare(face_a: int, face_b: int) -> Response:
    return ok(CompareResponse.of(_compared(face_a, face_b), state().settings.recognition.max_distance))


@api.get("/faces/<int:face_a>/compare/<int:face_b>.png", operation_id="compareFacesPicture", scope="read",
         response=PNG,
         summary="Both aligned faces side by side with their similarity maps (red: alike; blue: different)")
def compare_png(face_a: int, face_b: int) -> Response:
    return Response(comparison_png(_compared(face_a, face_b)), mimetype=PNG)


def _compared(face_a: int, face_b: int) -> Comparison:
    st = state()
    return compare_faces(served().store, st.model.encoder, face_a, face_b,
                         max_pixels=st.settings.indexer.max_image_pixels)


@api.get("/tradeoff", operation_id="getTradeoff", scope="read", response=TradeoffResponse,
         summary="Expected precision and recall of a search within each distance, from the named people",
         description="Held out over the confirmed faces (the ground truth), with the wrong finds counted in the "
         "index itself; the LFW DevTrain curve (`source: lfw`) while fewer than 2 people or 30 same-person pairs "
         "are named. Thresholds 0.30 to 0.80. `recognition`: what the recognition rule does to held-out confirmed "
         "faces, as set and scaled stricter or looser. `docs/explanations.md`.")
def tradeoff() -> Response:
    st = state()
    store = served().store
    return ok(TradeoffResponse.of(tradeoff_curve(store, st.annotations),
                                  recognition_trade(store, st.annotations, st.settings.recognition)))


@api.get("/faces/<int:face_id>/thumbnail", operation_id="getFaceThumbnail", scope="read", response=JPEG,
         revalidated=True, summary="JPEG crop of one indexed face (stored at index time)",
         description="`Cache-Control: private, no-cache` with an ETag: revalidated at each view (304 when "
         "unchanged; 404 once erased).")
def thumbnail(face_id: int) -> Response:
    return revalidated_image(face_thumbnail(served().store, face_id), f"face-{face_id}")


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
    run = run_clustering(store, st.annotations, params, st.settings.clustering, actor())
    return ok(clusters_response(store, st.annotations, run))


@api.get("/clusters", operation_id="getClusters", scope="read", response=ClustersResponse, errors=(404,),
         summary="The last stored clustering, read back as it was computed (404 before the first)")
def last_clusters() -> Response:
    """The last stored run, read back as it was computed."""
    return ok(clusters_response(served().store, state().annotations, last_run(state().annotations)))


@api.put("/clusters/<int:cluster_id>", operation_id="nameCluster", scope="admin", response=PersonModel,
         json=NameRequest, errors=(400,),
         summary="Name a cluster of the last run: its members become confirmed faces of that person",
         description="The person is created when the name is new (names are case-insensitive); members "
         "confirmed for someone else, or rejected for this person, are left as they are.")
def name_cluster(cluster_id: int) -> Response:
    """Name a cluster of the last run: its faces are labelled with the person."""
    req = json_body(NameRequest)
    named = state().annotations.name_cluster_faces(cluster_id, req.name, actor=actor())
    audited(params={"cluster_id": cluster_id, "person_id": named.person.person_id}, face_ids=named.face_ids,
            results=named.changed)
    return ok(person_model(named.person))


@api.get("/clusters/contact-sheet.png", operation_id="getContactSheet", scope="read", response=PNG,
         query=ContactSheetParams, errors=(404,),
         summary="Thumbnails of the last run, one row per cluster, largest first, then the strangers")
def contact_sheet() -> Response:
    query = ContactSheetParams.model_validate(query_args())
    st = state()
    png = contact_sheet_png(served().store, st.annotations, last_run(st.annotations),
                            max_per_row=query.max_per_row, max_clusters=query.max_clusters, likeness=query.likeness)
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
    return _erase(ErasureTarget(face_ids=[face_id]), params.dry_run)


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
    target = ErasureTarget()
    if request.mimetype == "multipart/form-data":
        form = ErasureForm.model_validate(form_fields())
        target.probes = probes_of_photos(st.model, uploads(many=True), st.settings,
                                         st.query_detection or served().detection)
        target.max_distance, dry_run = form.max_distance, form.dry_run
    elif request.mimetype == "application/json":
        req = json_body(ErasureRequest)
        if not (req.embeddings or req.face_ids or req.person_id is not None or req.cluster_id is not None):
            raise ApiError(422, "invalid_request",
                           "give face_ids, embeddings, person_id, cluster_id or probe photos: nothing to erase")
        target = ErasureTarget(face_ids=list(req.face_ids), person_id=req.person_id, cluster_id=req.cluster_id,
                               probes=probes_of_embeddings(req.embeddings, st.settings),
                               max_distance=req.max_distance)
        dry_run = req.dry_run
    else:
        raise ApiError(415, "unsupported_media_type",
                       "send application/json with face_ids or embeddings, or multipart/form-data with `image` fields")
    if len(target.probes):
        audited(query=hash_embeddings(target.probes))
    return _erase(target, dry_run)


def _erase(target: ErasureTarget, dry_run: bool) -> Response:
    st = state()
    index = served()
    report = erase(st.index.data_dir, index.store, st.annotations, target, st.settings, dry_run=dry_run,
                   generation=index.generation)
    if not dry_run:
        st.index.check_now()  # this worker stops serving the erased faces at once
    audited(params={**target.described(st.settings), "dry_run": dry_run}, results=report.faces_erased,
            face_ids=report.face_ids)
    return ok(ErasureResponse(**asdict(report)))


@api.get("/openapi.json", operation_id="openapi", scope="read", response="application/json",
         summary="This document (OpenAPI 3.1)")
def openapi() -> Response:
    return jsonify(openapi_document())


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
    return cost_response(served().store, st.settings.clustering, query, st.annotations.last_run_info())


def form_fields() -> dict[str, str]:
    """The multipart form's text fields; an empty one counts as not given
    (a form's empty input)."""
    return {k: v for k, v in request.form.items() if v != ""}


def uploads(*, many: bool) -> list[tuple[str, bytes]]:
    """The uploaded ``image`` files as (name, bytes): one, or one or more."""
    files = request.files.getlist("image")
    if not files:
        raise ApiError(400, "missing_image",
                       "send one or more probe photos as multipart file fields named `image`" if many
                       else "send the photo as a multipart file field named `image`")
    return [(upload.filename or "upload", upload.read()) for upload in (files if many else files[:1])]
