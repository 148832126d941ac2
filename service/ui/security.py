"""What keeps the web pages safe: who is signed in, CSRF tokens, and the
headers of every page.

- **Sign-in.** With API keys configured, every page but ``/login`` (and the
  static files) needs a session: ``/login`` takes a key, checks it like the
  API does (``application.access``, with the same throttle on wrong keys) and
  starts a session on the server (``application.access_store``): the browser's
  cookie (Flask's signed cookie: HttpOnly, SameSite=Strict, Secure when the
  request came over HTTPS) holds only the session's random token and the
  CSRF token. Every request looks the session up and the key that signed
  in among the keys configured now, which gives its scope: a removed key,
  sign-out, ``service.session_hours`` or ``service.session_idle_minutes``
  end it, and a copied cookie with it. A read key sees no admin controls,
  and admin actions from it are refused. Without keys the pages answer
  everyone (``facesearch serve`` then binds to loopback only).
- **Cookie secret.** ``ui-secret.key`` in the data directory (32 random
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

from application.access import ApiKey, Scope, allows
from application.access_store import AccessStore
from config.settings import ServiceSettings

SECRET_FILE = "ui-secret.key"
SECRET_BYTES = 32
SESSION_FIELD = "sid"
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


class SecretFileError(ValueError):
    """The cookie secret file cannot be used; the message says what to do."""


def session_secret(data_dir: Path) -> bytes:
    """The data directory's cookie secret, made once (``O_EXCL``: two
    workers starting together agree on one). Raises ``SecretFileError`` for
    a file cut short or unreadable."""
    path = Path(data_dir) / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = b""
        for _ in range(50):  # another worker may be writing it right now
            try:
                secret = path.read_bytes()
            except OSError as exc:
                raise SecretFileError(f"cannot read the cookie secret {path} ({exc.strerror}): fix its "
                                      "permissions, or delete it to make a new one") from None
            if len(secret) >= SECRET_BYTES:
                return secret
            time.sleep(0.01)
        raise SecretFileError(
            f"the cookie secret {path} holds {len(secret)} bytes, {SECRET_BYTES} expected (damaged or cut short): "
            "delete it and start again; a new one is made, and everyone signed in signs in again") from None
    try:
        secret = secrets.token_bytes(SECRET_BYTES)
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


def sign_in(key: ApiKey, access: AccessStore, service: ServiceSettings) -> None:
    """A new session on the server for ``key``; the cookie gets its token
    and a fresh CSRF token."""
    token = access.start(key.digest, time.time(), max_age_s=service.session_hours * 3600)
    session.clear()
    session[SESSION_FIELD] = token
    session[CSRF_FIELD] = secrets.token_urlsafe(32)


def sign_out(access: AccessStore) -> None:
    """End the session on the server (every copy of the cookie) and in the browser."""
    access.end(session.get(SESSION_FIELD))
    session.clear()


def signed_in_scope(keys: tuple[ApiKey, ...], access: AccessStore, service: ServiceSettings) -> Scope | None:
    """The scope this request may use: ``admin`` without keys; with them,
    that of the configured key whose session this is (None: not signed in,
    the session is over, or its key is no longer configured). Sets
    ``g.key_id`` for the audit."""
    if not keys:
        g.key_id = None
        return "admin"
    digest = access.key_of(session.get(SESSION_FIELD), time.time(), max_age_s=service.session_hours * 3600,
                           idle_s=service.session_idle_minutes * 60)
    if digest is None:
        return None
    key = next((k for k in keys if hmac.compare_digest(k.digest, digest)), None)
    if key is None:
        return None
    g.key_id = key.key_id
    return key.scope


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


def may(scope: Scope | None, needed: Scope) -> bool:
    return scope is not None and allows(scope, needed)


def secure_headers(response):
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Cache-Control", "private, no-store")
    return response
