"""Web sessions belong to the key that signed in and end on the server:
at sign-out (a copied cookie stops working), when the key is no longer
configured, after ``service.session_hours`` and after
``service.session_idle_minutes`` without a request. Against real
``facesearch serve`` processes where a restart or several workers matter."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from application.access_store import AccessStore
from indexer.people.annotations import AnnotationsDB
from tests.helpers import client_of, csrf_token_of, serving

ADMIN_A, ADMIN_A2, READER = "admin-key-A-000000001", "admin-key-A2-00000002", "read-key-R-0000000003"


def signed_in(client, key: str):
    token = csrf_token_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"api_key": key, "csrf_token": token, "next": "/people"})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def session_cookie(client) -> str:
    return client.get_cookie("facesearch_session").value


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(people_index: Path):
    client = signed_in(client_of(people_index, api_keys=[ADMIN_A]), ADMIN_A)
    copied = session_cookie(client)
    token = csrf_token_of(client.get("/people").get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token})
    thief = client_of(people_index, api_keys=[ADMIN_A])
    thief.set_cookie("facesearch_session", copied)
    assert thief.get("/people").status_code == 302
    refused = thief.post("/people", data={"csrf_token": token, "action": "cluster"})
    assert refused.status_code == 401 and "nothing was changed" in refused.get_data(as_text=True)
    assert AnnotationsDB.open(people_index).last_run() is None


def test_a_removed_key_ends_its_sessions_and_a_rotated_scope_applies_at_once(people_index: Path):
    client = signed_in(client_of(people_index, api_keys=[ADMIN_A, ADMIN_A2]), ADMIN_A2)
    cookie = session_cookie(client)
    assert client.get("/people").status_code == 200
    after_removal = client_of(people_index, api_keys=[ADMIN_A])  # the server restarted with A only
    after_removal.set_cookie("facesearch_session", cookie)
    assert after_removal.get("/people").status_code == 302
    token = csrf_token_of(client.get("/people").get_data(as_text=True))
    assert after_removal.post("/people", data={"csrf_token": token, "action": "cluster"}).status_code == 401
    demoted = client_of(people_index, api_keys=[ADMIN_A], read_keys=[ADMIN_A2])  # A2 is now a read key
    demoted.set_cookie("facesearch_session", cookie)
    page = demoted.get("/people").get_data(as_text=True)
    assert "Read only" in page
    assert demoted.post("/people", data={"csrf_token": token, "action": "cluster"}).status_code == 403
    assert AnnotationsDB.open(people_index).last_run() is None


def test_sessions_expire_after_their_hours_and_when_idle(people_index: Path):
    short = client_of(people_index, api_keys=[ADMIN_A], service={"session_hours": 0.5 / 3600})
    signed_in(short, ADMIN_A)
    assert short.get("/people").status_code == 200
    time.sleep(0.7)
    assert short.get("/people").status_code == 302
    idle = client_of(people_index, api_keys=[ADMIN_A], service={"session_idle_minutes": 0.5 / 60})
    signed_in(idle, ADMIN_A)
    assert idle.get("/people").status_code == 200
    time.sleep(0.7)
    assert idle.get("/people").status_code == 302
    assert AccessStore.in_data_dir(people_index).sessions() == 0  # ended sessions are deleted


def test_the_cookie_holds_no_key_and_no_scope(people_index: Path):
    client = signed_in(client_of(people_index, api_keys=[ADMIN_A]), ADMIN_A)
    cookie = session_cookie(client)
    payload = cookie.split(".")[0]
    assert ADMIN_A not in cookie and "admin" not in urllib.parse.unquote(payload)


class Browser:
    """A cookie-keeping HTTP client of a real server, with the CSRF token."""

    def __init__(self, base: str, cookie: str | None = None) -> None:
        self.base = base
        self.cookie = cookie

    def open(self, path: str, form: dict | None = None) -> tuple[int, str, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(self.base + path, data=data)
        if self.cookie:
            request.add_header("Cookie", f"facesearch_session={self.cookie}")
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=20) as response:
                status, headers, body = response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, headers, body = exc.code, exc.headers, exc.read().decode()
        for value in headers.get_all("Set-Cookie") or []:
            match = re.match(r"facesearch_session=([^;]*)", value)
            if match:
                self.cookie = match.group(1) or None
        return status, headers.get("Location", ""), body

    def sign_in(self, key: str) -> None:
        _, _, html = self.open("/login")
        status, _, _ = self.open("/login", {"api_key": key, "csrf_token": csrf_token_of(html), "next": "/people"})
        assert status == 302

    def token(self) -> str:
        return csrf_token_of(self.open("/people")[2])


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.mark.slow
def test_real_server_sessions_end_at_sign_out_and_with_their_key(people_index: Path):
    """The finding as it was made: signed in with admin key A2, signed out,
    restarted with A only: the old cookie must load nothing and change nothing."""
    keys = {"FACESEARCH_API_KEYS": f"{ADMIN_A},{ADMIN_A2}"}
    with serving(people_index, workers=2, env=keys) as (base, _):
        browser = Browser(base)
        browser.sign_in(ADMIN_A2)
        token = browser.token()
        copied = browser.cookie
        for _ in range(4):  # every worker knows the session
            assert browser.open("/people")[0] == 200
        status, _, _ = browser.open("/logout", {"csrf_token": token})
        assert status == 302
        thief = Browser(base, copied)
        for _ in range(4):  # every worker knows it ended
            status, location, _ = thief.open("/people")
            assert status == 302 and location.startswith("/login")
        assert thief.open("/people", {"csrf_token": token, "action": "cluster"})[0] == 401
        browser.sign_in(ADMIN_A2)
        kept, kept_token = browser.cookie, browser.token()
    with serving(people_index, workers=2, env={"FACESEARCH_API_KEYS": ADMIN_A}) as (base, _):
        old = Browser(base, kept)
        status, location, _ = old.open("/people")
        assert status == 302 and location.startswith("/login")
        assert old.open("/people", {"csrf_token": kept_token, "action": "cluster"})[0] == 401
    assert AnnotationsDB.open(people_index).last_run() is None  # no clustering ran
