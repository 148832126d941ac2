"""What every request of the API and the pages passes through, and what
every response carries:

- **the audit log, fail-closed**: before a request runs, ``audit_ready``
  checks that its line can be written (507 ``audit_unavailable`` otherwise:
  nothing is answered unaudited); after it, ``write_audit`` writes the line
  (``application.audit`` bounds it). A request that failed authentication is
  logged without its parameters or uploads. Should the line still fail, a
  read's answer is withheld (507); a change already made stands, and the
  line goes to the server log instead.
- **wrong keys** (``refuse_if_blocked``, ``count_wrong_key``): throttled per
  client address (``application.access_store``), on the API and on ``/login``.
- **photo searches** (``take_photo_slot``): at most
  ``service.photo_searches_per_client`` at once per client address
  (``application.photo_slots``); a multipart POST is a photo search.
- **headers**: ``X-Content-Type-Options: nosniff`` on everything, and API
  answers not stored by any cache unless the view says otherwise.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from application.audit import AuditLog, AuditUnavailable, hash_bytes
from service.context import client, state
from service.errors import ApiError, error_response
from service.operations import operation_of

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
# Requests the audit log leaves out: they reveal nothing about anyone.
NOT_AUDITED = frozenset({"api.health", "api.openapi", "ui.static"})
# The pages' POSTs that only read (the API's say so in their declared scope):
# their answer is withheld when their line cannot be written.
READ_PAGE_POSTS = frozenset({"ui.search_page", "ui.sightings_page"})
# Form fields never logged: secrets, and what the audit log keeps as digests.
UNLOGGED_FIELDS = frozenset({"csrf_token", "api_key", "probes"})


def install(app: Flask, page_error: Callable[[int, str], Response]) -> None:
    """Register the hooks; ``page_error(status, message)`` renders an
    error outside the API."""

    def respond(status: int, code: str, message: str) -> Response:
        if request.path.startswith(API_PREFIX):
            return error_response(status, code, message)
        return page_error(status, message)

    @app.before_request
    def audit_ready() -> None:
        g.started = time.perf_counter()
        audit = _audit_log()
        if audit is None:
            return
        try:
            audit.check()
        except AuditUnavailable as exc:
            g.audit_unavailable = True
            log.error("refusing %s %s: %s", request.method, request.path, exc)
            raise ApiError(507, "audit_unavailable", str(exc)) from None

    @app.after_request
    def write_audit(response: Response) -> Response:
        audit = _audit_log()
        if audit is None or g.get("audit_unavailable"):
            return response
        record = _record(response)
        try:
            audit.write(record)
        except OSError as exc:
            if _only_reads():
                log.error("withholding the answer to %s %s: its audit line cannot be written (%s)",
                          request.method, request.path, exc)
                return respond(507, "audit_unavailable", audit.advice(str(exc)))
            log.error("the audit line of a change could not be written (%s); it was: %s", exc,
                      json.dumps(record, default=str)[:8192])
        return response

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        if request.path.startswith(API_PREFIX):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.teardown_request
    def release_photo_slot(_exc: BaseException | None) -> None:
        slot = g.pop("photo_slot", None)
        if slot is not None:
            state().photo_slots.release(slot)


def _only_reads() -> bool:
    """Whether this request changed nothing: a GET, a read-scope API
    operation (search, recall) or a page's search."""
    op = operation_of(request.endpoint)
    return (request.method in ("GET", "HEAD") or request.endpoint in READ_PAGE_POSTS
            or (op is not None and op.scope != "admin"))


def _audit_log() -> AuditLog | None:
    """The audit log, when this request is one it records."""
    audit = state().audit
    if audit is None or request.endpoint in NOT_AUDITED:
        return None
    return audit if request.path.startswith(API_PREFIX) or request.blueprint == "ui" else None


def _record(response: Response) -> dict:
    record = {
        "key": g.get("key_id"), "address": client(), "method": request.method, "path": request.path,
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - g.started) * 1000, 1) if "started" in g else None,
    }
    if g.get("auth_failed"):  # a guess: who and when, nothing it sent
        return record
    details = g.get("audit", {})
    try:
        uploads = _uploaded_hashes()
        if uploads:
            details["query"] = uploads + details.get("query", [])
        if "params" not in details:
            params = {k: v for k, v in {**request.args, **request.form}.items() if k not in UNLOGGED_FIELDS}
            if params:
                details["params"] = params
    except HTTPException:  # a body that could not be read (too large, broken): nothing more to log
        pass
    return {**record, **details}


def _uploaded_hashes() -> list[str]:
    """SHA-256 of every uploaded file (already parsed; read again from the
    start); the upload itself is never logged."""
    if request.mimetype != "multipart/form-data":
        return []
    hashes = []
    for upload in request.files.getlist("image") + request.files.getlist("photo"):  # the API's, the pages'
        try:
            upload.stream.seek(0)
            hashes.append(hash_bytes(upload.stream.read()))
        except (OSError, ValueError):
            hashes.append("unreadable")
    return hashes


# -- wrong keys ------------------------------------------------------------------


def refuse_if_blocked() -> None:
    """429 while this client address is blocked for wrong keys."""
    wait = state().access.blocked_for(client(), time.time())
    if wait is not None:
        g.auth_failed = True
        raise _too_many_failures(wait)


def count_wrong_key() -> None:
    """Record a wrong key from this client; 429 when it starts a block."""
    g.auth_failed = True
    g.key_id = "invalid"
    st = state()
    block = st.access.failed(client(), time.time(), limit=st.settings.service.max_key_failures)
    if block is not None:
        log.warning("blocking %s for %.0f s: %d wrong keys within a minute", client(), block,
                    st.settings.service.max_key_failures)
        raise _too_many_failures(block)


def _too_many_failures(wait_s: float) -> ApiError:
    seconds = max(1, math.ceil(wait_s))
    return ApiError(429, "too_many_failures",
                    f"too many wrong keys from this address: retry in {seconds} s (each block doubles)",
                    headers={"Retry-After": str(seconds)})


# -- photo searches --------------------------------------------------------------


def take_photo_slot() -> None:
    """A multipart POST (a photo search) holds one of its client's slots to
    the end of the request: 429 when they are all taken."""
    if request.method != "POST" or request.mimetype != "multipart/form-data" or "photo_slot" in g:
        return
    st = state()
    slot = st.photo_slots.acquire(client())
    if slot is None:
        limit = st.settings.service.photo_searches_per_client
        raise ApiError(429, "too_many_photo_searches",
                       f"this address already has {limit} photo search{'es' if limit > 1 else ''} running: "
                       "wait for one to finish (service.photo_searches_per_client)", headers={"Retry-After": "1"})
    g.photo_slot = slot
