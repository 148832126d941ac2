"""What keeps the web pages safe: who is signed in, CSRF tokens, and the
headers of every page.

- **Sign-in.** With API keys configured, every page but ``/login`` (and the
  static files) needs a session: ``/login`` takes a key, checks it like the
  API does (``service.access``) and keeps its id and scope in Flask's
  signed session cookie (HttpOnly, SameSite=Strict, Secure when the request
  came over HTTPS); the key itself is never stored. A read key sees no
  admin controls, and admin actions from it are refused. Without keys the
  pages answer everyone (``facesearch serve`` then binds to loopback only).
- **Session secret.** ``ui-secret.key`` in the data directory (32 random
  bytes, mode 0600, made once), so that every server worker signs and reads
  the same cookies and a restart keeps people signed in. Deleting the file
  signs everyone out.
- **CSRF.** Each session has a random token; every state-changing request
  (any POST) must carry it, as the form field ``csrf_token`` or the header
  ``X-CSRF-Token`` (htmx sends it, from ``hx-headers`` on the page body).
- **Headers.** A Content-Security-Policy without inline scripts or styles
  (``script-src 'self'``, ``frame-ancestors 'none'``), ``Referrer-Policy:
  no-referrer``, ``X-Content-Type-Options: nosniff``, and ``Cache-Control:
  private`` on everything (faces are personal data).
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from pathlib import Path

from flask import Flask, Request, abort, g, request, session
from flask.sessions import SecureCookieSessionInterface

from service.access import ApiKey, allows

SECRET_FILE = "ui-secret.key"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure when the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure


def session_secret(data_dir: Path) -> bytes:
    """The data directory's session secret, made once (``O_EXCL``: two
    workers starting together agree on one)."""
    path = Path(data_dir) / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker may be writing it right now
            secret = path.read_bytes()
            if len(secret) >= 32:
                return secret
            time.sleep(0.01)
        raise RuntimeError(f"{path} is shorter than 32 bytes: delete it to make a new one") from None
    try:
        secret = secrets.token_bytes(32)
        os.write(fd, secret)
        os.fsync(fd)
    finally:
        os.close(fd)
    return secret


def configure(app: Flask, data_dir: Path) -> None:
    app.secret_key = session_secret(data_dir)
    app.session_interface = SessionInterface()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_NAME="facesearch_session")


def sign_in(key: ApiKey) -> None:
    session.clear()
    session["key_id"] = key.key_id
    session["scope"] = key.scope
    session[CSRF_FIELD] = secrets.token_urlsafe(32)


def sign_out() -> None:
    session.clear()


def signed_in_scope(keys: tuple[ApiKey, ...]) -> str | None:
    """The scope this request may use: ``admin`` without keys, the session's
    scope with them (None: not signed in). Sets ``g.key_id`` for the audit."""
    if not keys:
        g.key_id = None
        return "admin"
    scope = session.get("scope")
    if scope not in ("read", "admin"):
        return None
    g.key_id = session.get("key_id")
    return scope


def csrf_token() -> str:
    """This session's token (made on first use)."""
    token = session.get(CSRF_FIELD)
    if not token:
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


def check_csrf(req: Request) -> None:
    """A POST must carry this session's token: 403 otherwise."""
    expected = session.get(CSRF_FIELD)
    given = req.headers.get(CSRF_HEADER) or req.form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(str(given), str(expected)):
        abort(403, description="this form has expired or did not come from facesearch: reload the page and retry")


def may(scope: str | None, needed: str) -> bool:
    return scope is not None and allows(scope, needed)


def secure_headers(response):
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Cache-Control", "private, no-store")
    return response
