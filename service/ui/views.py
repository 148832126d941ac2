"""The web pages' views: as thin as the API's, over the same functions
(``application.searching``, ``application.photos``, ``application.index_info``). A view
renders a whole page, or only its results for an htmx request
(``HX-Request``), so every page also works as a plain HTML form."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import PurePosixPath
from urllib.parse import urlparse

import numpy as np
from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from application import photos
from application.access import authenticate
from application.errors import PhotoNotFound, PhotoUnavailable
from application.searching import decode_query, search_by_embedding, search_by_photo
from application.tradeoff import tradeoff_curve
from indexer.images import ImageError, rgb_jpeg
from service.api import revalidated_image
from service.context import audited, served, state
from service.guard import count_wrong_key, refuse_if_blocked, take_photo_slot
from service.ui import security

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static", static_url_path="/static")

PREVIEW_SIDE = 900  # pixels: the query photo as the search page shows it


class SearchForm(BaseModel):
    """The search page's fields (empty ones count as not given)."""

    model_config = ConfigDict(extra="ignore")

    k: int = Field(10, ge=1, le=100)
    max_distance: float | None = Field(None, gt=0, le=2, allow_inf_nan=False)
    face_id: int | None = Field(None, ge=0, le=2**63 - 1)


class UiError(Exception):
    """A message for the page's alert region, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@bp.before_request
def signed_in() -> ResponseReturnValue | None:
    """Static files and the login page are open; every other page needs a
    session when keys are configured, and every POST its CSRF token. A page
    without a session goes to ``/login``; a POST without one is refused
    (401, the sign-in form). A photo search then takes one of its client's
    slots (``service.guard``)."""
    if request.endpoint in ("ui.static",):
        return None
    if request.method == "POST":
        security.check_csrf(request)
    if request.endpoint in ("ui.login", "ui.logout"):
        return None
    st = state()
    g.scope = security.signed_in_scope(st.keys, st.access, st.settings.service)
    if g.scope is None:
        g.auth_failed = True
        get = request.method in ("GET", "HEAD")
        target = url_for("ui.login", next=request.full_path if get else None)
        if request.headers.get("HX-Request"):
            return Response(status=204 if get else 401, headers={"HX-Redirect": target})
        if get:
            return redirect(target)
        return page("login.html", status=401, title="Sign in", next_page="/",
                    errors=["You are not signed in (or your sign-in has ended): nothing was changed. "
                            "Sign in, then try again."])
    take_photo_slot()
    return None


@bp.after_request
def headers(response: Response) -> Response:
    return security.secure_headers(response)


@bp.app_context_processor
def page_globals() -> dict:
    return {
        "csrf_token": security.csrf_token,
        "scope": g.get("scope"),
        "keys_configured": bool(state().keys),
    }


@bp.app_template_filter("faces")
def faces_filter(n: int) -> str:
    """``1 face``, ``12 faces``."""
    return f"{n:,} face" if n == 1 else f"{n:,} faces"


@bp.app_template_filter("day")
def day_filter(seconds: float | None) -> str:
    """POSIX seconds as a day people read ("3 May 2024"); "" for none."""
    if seconds is None:
        return ""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{moment.day} {moment:%b %Y}"


@bp.app_template_filter("ago")
def ago_filter(moment: str | float | None) -> str:
    """An ISO 8601 time or POSIX seconds as people say it: "just now", "3
    minutes ago", "2 hours ago", "yesterday", "on 3 May 2024"; "" for none."""
    if moment is None or moment == "":
        return ""
    try:
        when = (datetime.fromisoformat(moment) if isinstance(moment, str)
                else datetime.fromtimestamp(moment, tz=UTC))
    except ValueError:
        return str(moment)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (datetime.now(UTC) - when).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("minute", 60), ("hour", 3600)):
        count = int(seconds // size)
        if seconds < size * (60 if unit == "minute" else 24):
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    if seconds < 2 * 86400:
        return "yesterday"
    if seconds < 7 * 86400:
        return f"{int(seconds // 86400)} days ago"
    return f"on {when.day} {when:%b %Y}"


@bp.app_template_filter("filename")
def filename_filter(path: str) -> str:
    """The last part of a path."""
    return PurePosixPath(path).name or path


@bp.app_template_filter("folder")
def folder_filter(path: str) -> str:
    """A path without its last part."""
    return str(PurePosixPath(path).parent)


@bp.errorhandler(UiError)
def ui_error(exc: UiError):
    return error_page(exc.status, exc.message)


def error_page(status: int, message: str) -> Response:
    """A message in the page's alert region (for htmx, only the alerts), with
    the page's headers; also the app's error page outside the API."""
    if request.headers.get("HX-Request"):
        body = render_template("_alerts.html", errors=[message])
    else:
        body = render_template("error.html", title="Something went wrong", errors=[message])
    return security.secure_headers(Response(body, status=status, mimetype="text/html"))


def page(template: str, *, status: int = 200, partial: str | None = None, **context):
    """The whole page, or only ``partial`` for an htmx request."""
    name = partial if partial and request.headers.get("HX-Request") else template
    return render_template(name, **context), status


# -- signing in ---------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form. Wrong keys count towards the client address's
    throttle like the API's (429 once blocked, before the key is looked at)."""
    st = state()
    next_page = _local(request.values.get("next"))
    if not st.keys:
        return redirect(next_page)
    errors = []
    if request.method == "POST":
        given = request.form.get("api_key", "")
        if given:
            refuse_if_blocked()
        key = authenticate(given, st.keys)
        if key is not None:
            security.sign_in(key, st.access, st.settings.service)
            g.key_id = key.key_id
            return redirect(next_page)
        if given:
            count_wrong_key()
            errors.append("That API key is not valid. Ask the administrator for one, or check that it was "
                          "copied whole.")
        else:
            g.auth_failed = True
            errors.append("Enter your API key.")
    return page("login.html", status=401 if errors else 200, title="Sign in", errors=errors, next_page=next_page)


@bp.post("/logout")
def logout():
    security.sign_out(state().access)
    return redirect(url_for("ui.login"))


def _local(target: str | None) -> str:
    """Only a path of this site is a place to go after signing in; one with
    control characters (a header injection) is a bad request."""
    if target and any(ord(c) < 32 or ord(c) == 127 for c in target):
        raise UiError(400, "The page to return to after signing in is not a valid address.")
    parsed = urlparse(target or "/")
    if parsed.scheme or parsed.netloc or not (target or "/").startswith("/") or (target or "").startswith("//"):
        return "/"
    return target or "/"


# -- search by photo ----------------------------------------------------------


@bp.route("/", methods=["GET", "POST"])
def search_page():
    """Drop or pick a photo (POST), or search by an indexed face (``?face_id=``)."""
    st = state()
    values = {k: v for k, v in request.values.items() if v != ""}
    try:
        form = SearchForm.model_validate(values)
    except ValidationError as exc:
        raise UiError(422, _validation_message(exc)) from None
    context: dict = {"title": "Search", "form": form, "result": None, "query": None,
                     "same_distance": st.settings.recognition.max_distance,
                     "names": sorted(p.name for p in st.annotations.people())}
    index = served()
    context["curve"] = tradeoff_curve(index.store, st.annotations)
    if request.method == "POST":
        upload = request.files.get("photo")
        if upload is None or not upload.filename:
            raise UiError(400, "Choose a photo to search with.")
        detection = st.query_detection or index.detection
        try:
            photo = decode_query(upload.read(), st.settings.service, detection)
        except ImageError as exc:
            raise UiError(400 if exc.code != "image_too_large" else 413,
                          f"That file cannot be searched: {exc}.") from None
        result = search_by_photo(st.model, index.store, photo, detection, form.k, form.max_distance,
                                 st.annotations.attributions, max_faces=st.settings.search.max_query_faces)
        if not result.faces:
            context["errors"] = [
                "No face was found in that photo. Try one where the face is larger or facing the camera."]
        context["query"] = {
            "width": photo.width, "height": photo.height, "name": upload.filename,
            "src": "data:image/jpeg;base64," + base64.b64encode(rgb_jpeg(photo.rgb, PREVIEW_SIDE)).decode(),
        }
        context["result"] = result
        audited(results=sum(len(f.matches) for f in result.faces), faces=len(result.faces))
    elif form.face_id is not None:
        record = index.store.faces([form.face_id]).get(form.face_id)
        if record is None:
            raise UiError(404, f"There is no face {form.face_id} in the index (it may have been removed).")
        vector = index.store.vectors_of(np.array([form.face_id]))[0]
        context["result"] = search_by_embedding(index.store, vector, form.k, form.max_distance,
                                                st.annotations.attributions)
        context["query"] = {"face": record}
    return page("search.html", partial="search_results.html", **context)


def _validation_message(exc: ValidationError) -> str:
    names = {"k": "Matches per face", "max_distance": "Maximum distance", "face_id": "Face"}
    parts = [f"{names.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors()[:3]]
    return "; ".join(parts)


# -- photos, faces, the index -------------------------------------------------


@bp.get("/photos/<int:photo_id>/image.jpg")
def photo_image(photo_id: int):
    face_id = request.args.get("face_id", type=int)
    try:
        jpeg, content = photos.photo_jpeg(served().store, photo_id, max_side=1600, face_id=face_id,
                                          max_pixels=state().settings.indexer.max_image_pixels)
    except (PhotoNotFound, PhotoUnavailable):
        abort(404)
    return revalidated_image(jpeg, f"{content[:32]}-{face_id or 0}")


@bp.get("/faces/<int:face_id>")
def face_page(face_id: int):
    """A face leads to its photo, at the face (its Name field, for an administrator)."""
    record = served().store.faces([face_id]).get(face_id)
    if record is None:
        raise UiError(404, f"There is no face {face_id} in the index (it may have been removed).")
    return redirect(url_for("ui.photo_page", photo_id=record.photo_id) + f"#name-{face_id}")


@bp.get("/faces/<int:face_id>/thumbnail.jpg")
def face_thumbnail(face_id: int):
    jpeg = served().store.thumbnail(face_id)
    if jpeg is None:
        abort(404)
    return revalidated_image(jpeg, f"face-{face_id}")
