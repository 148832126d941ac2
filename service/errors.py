"""One JSON error shape for every 4xx/5xx:
``{"error": {"code": "...", "message": "..."}}``."""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import Callable

from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from application.errors import Kind, classify, user_errors

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
    507: "insufficient_storage",
}


class ApiError(Exception):
    """An error the API reports to the client as is."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


# A bad body can fail validation in thousands of places (a long list of
# strings) and name its own keys of any length: the message names the first
# few, each cut short.
MAX_LISTED_ERRORS = 5
MAX_LOCATION_CHARS = 100


def validation_message(exc: ValidationError) -> str:
    errors = exc.errors(include_input=False, include_url=False)
    parts = []
    for err in errors[:MAX_LISTED_ERRORS]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        if len(where) > MAX_LOCATION_CHARS:
            where = where[:MAX_LOCATION_CHARS] + "..."
        parts.append(f"{where}: {err.get('msg')}")
    if len(errors) > MAX_LISTED_ERRORS:
        parts.append(f"and {len(errors) - MAX_LISTED_ERRORS:,} more errors")
    return "; ".join(parts)


API_PREFIX = "/api/"
# The HTTP status of each kind of the application's errors (application.errors).
STATUS_OF_KIND = {
    Kind.NOT_FOUND: 404,
    Kind.CONFLICT: 409,
    Kind.INVALID: 422,
    Kind.BAD_INPUT: 400,
    Kind.TOO_LARGE: 413,
    Kind.UNSUPPORTED: 415,
    Kind.UNAVAILABLE: 503,
}
FULL_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or a quota, or a file size limit) is
    full: an ``OSError`` of those, or SQLite's "database or disk is full"."""
    if isinstance(exc, sqlite3.OperationalError):
        return "disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in FULL_DISK_ERRNOS


def register_error_handlers(app: Flask, page_error: Callable[[int, str], Response] | None = None) -> None:
    """The JSON error body for the API; outside it (the web pages), the same
    message rendered by ``page_error(status, message)`` when given."""

    def respond(status: int, code: str, message: str) -> Response:
        if page_error is not None and not request.path.startswith(API_PREFIX):
            return page_error(status, message)
        return error_response(status, code, message)

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        response = respond(exc.status, exc.code, exc.message)
        response.headers.update(exc.headers)
        return response

    def _user_error(exc: Exception) -> Response:
        """An error of the application's table: its kind's status, its code."""
        kind, code = classify(exc) or (Kind.INVALID, "invalid_request")
        return respond(STATUS_OF_KIND[kind], code, str(exc))

    for error_class in user_errors():
        app.register_error_handler(error_class, _user_error)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError) -> Response:
        return respond(422, "invalid_request", validation_message(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            if limit:
                message = (f"the upload is larger than the limit of {round(limit / 2**20, 1):g} MiB ({limit:,} bytes): "
                           "send a smaller file, or raise service.max_upload_mb")
        response = respond(status, HTTP_CODES.get(status, f"http_{status}"), message)
        valid_methods = getattr(exc, "valid_methods", None)
        if status == 405 and valid_methods:
            response.headers["Allow"] = ", ".join(valid_methods)
        return response

    @app.errorhandler(OSError)
    @app.errorhandler(sqlite3.OperationalError)
    def _storage_full(exc: Exception) -> Response:
        if not is_storage_full(exc):
            return _unexpected(exc)
        log.error("a request failed on a full disk: %s", exc)
        return respond(507, "insufficient_storage",
                       f"the disk holding the data directory is full ({exc}): free space there, then retry; what "
                       "this request was changing is left as it was before it")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return respond(500, "internal_error", "an unexpected error occurred; see the server log")
