"""The facesearch HTTP service: ``create_app(settings=None)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import faiss
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from threadpoolctl import threadpool_limits

from config.settings import Settings, load_settings
from indexer.people.annotations import AnnotationsDB

if TYPE_CHECKING:
    from indexer.model import FaceModel


def create_app(settings: Settings | None = None, *, model: FaceModel | None = None) -> Flask:
    """Build the Flask app over the published index of ``settings.data_dir``,
    finding and encoding query faces with ``model`` (None: the real one the
    settings describe, loaded at the first query),
    opened read-only (per server worker) and switched to each newly published
    generation (``application.index_handle``). Raises ``StoreError`` with a repair
    hint when there is no usable index. The annotations (people, clustering
    runs) in the same directory are opened read-write, and requests are
    appended to its audit log (``application.audit``). Raises ``KeyConfigError``
    for a malformed configured key."""
    from application.access import parse_keys
    from application.access_store import AccessStore
    from application.audit import AuditLog
    from application.index_handle import IndexHandle
    from application.photo_slots import PhotoSlots
    from application.runtime import Runtime
    from service import guard, request_body  # noqa: F401  (their hooks join the API's blueprint)
    from service.api import bp
    from service.context import ServiceState
    from service.errors import register_error_handlers
    from service.operations import declare_all
    from service.ui import bp as ui_bp
    from service.ui import security as ui_security
    from service.ui.views import error_page as ui_error_page

    settings = settings or load_settings()
    keys = parse_keys(settings.api_keys, settings.read_keys)  # a malformed key fails here, not per request
    # One OpenMP thread per worker: processes give the parallelism; FAISS's
    # default (all cores in every worker) measured 6.7x slower with 2 workers.
    faiss.omp_set_num_threads(settings.service.threads_per_worker)
    # And every BLAS loaded by now (numpy's, FAISS's: loaded by the CLI before
    # the thread variables were set); dlib's, loaded later, reads them.
    threadpool_limits(settings.service.threads_per_worker)
    if model is None:  # loaded at the first query
        model = Runtime().face_model(settings, threads=settings.service.threads_per_worker)
    index = IndexHandle.open(
        settings.data_dir, check_every_s=settings.service.reload_check_s, default_detection=settings.detection,
        settings=settings,
    )
    annotations = AnnotationsDB.open(index.data_dir)

    app = Flask(__name__, static_folder=None)  # the pages have their own (service/ui/static)
    app.config["MAX_CONTENT_LENGTH"] = int(settings.service.max_upload_mb * 1024 * 1024)
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False  # keys in the order the models declare them
    audit = AuditLog.of(index.data_dir, settings.service) if settings.service.audit_log else None
    app.extensions["facesearch"] = ServiceState(
        settings=settings, model=model, index=index, annotations=annotations, keys=keys, audit=audit,
        access=AccessStore.in_data_dir(index.data_dir),
        photo_slots=PhotoSlots.in_data_dir(index.data_dir, settings.service.photo_searches_per_client),
    )
    register_error_handlers(app, page_error=ui_error_page)
    guard.install(app, page_error=ui_error_page)
    request_body.configure(app)
    declare_all()  # every view of the API declared on its blueprint
    app.register_blueprint(bp)
    ui_security.configure(app, index.data_dir)
    app.register_blueprint(ui_bp)
    return app
