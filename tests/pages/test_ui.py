"""The web pages through Flask's test client, as HTML: labels and
``data-face-id``, plain forms and htmx partials, errors in the alert region,
escaping, the security headers, CSRF, signing in with a key. The browser
tests (tests/browser) drive the same pages in Chromium."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from application.audit import AuditLog
from config.settings import load_settings
from indexer.indexing import index_paths
from indexer.people.annotations import AnnotationsDB
from tests.helpers import client_of, csrf_token_of, lfw_photo

XSS = "<script>alert(1)</script>"


@pytest.fixture
def indexed(fake_model, photos: Path, data_dir: Path) -> Path:
    index_paths([photos], load_settings(data_dir=data_dir, indexer={"workers": 1}), model=fake_model)
    return data_dir


def search(client, photo: bytes, name: str = "q.jpg", htmx: bool = False, **fields):
    token = csrf_token_of(client.get("/").get_data(as_text=True))
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post("/", data={"photo": (io.BytesIO(photo), name), "csrf_token": token, **fields},
                       content_type="multipart/form-data", headers=headers)


def test_the_search_page_is_a_plain_form_with_labels(fake_model, indexed):
    response = client_of(indexed, model=fake_model).get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert '<label for="photo">Photo</label>' in html and 'id="photo" name="photo" type="file"' in html
    assert '<button type="submit">Search</button>' in html
    assert 'method="post"' in html and 'enctype="multipart/form-data"' in html  # works without JavaScript
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"].startswith("private")
    assert "<script>" not in html.replace("<script src=", "")  # no inline script


def test_search_by_photo_shows_each_face_and_its_matches(fake_model, indexed):
    client = client_of(indexed, model=fake_model)
    response = search(client, lfw_photo("Tony_Blair", 1).read_bytes(), k="3")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html
    assert html.count('class="box"') == 1 and "data:image/jpeg;base64," in html
    face_ids = re.findall(r'data-face-id="(\d+)"', html)
    assert len(face_ids) == 3
    assert "Search for this face" in html
    # The same photo is indexed: its own face first, "probably the same person"; the others apart.
    assert html.index("Probably the same person") < html.index("Less alike: others")
    assert html.count('<label for="name-') == 3 and '<datalist id="names">' in html  # "This is …", any face
    assert 'hx-disabled-elt="find button"' in html and "Searching…" in html
    # The same through htmx: only the results, with the alert region out of band.
    partial = search(client, lfw_photo("Tony_Blair", 1).read_bytes(), htmx=True, k="3").get_data(as_text=True)
    assert "<html" not in partial and 'hx-swap-oob="true"' in partial and partial.count("data-face-id") == 3
    # Search for a face of the index.
    by_face = client.get(f"/?face_id={face_ids[1]}&k=2").get_data(as_text=True)
    assert f"Who looks like face {face_ids[1]}" in by_face and len(re.findall(r"data-face-id=", by_face)) == 3
    assert AuditLog.in_data_dir(indexed).read()[-3]["path"] == "/"  # the pages are audited too


@pytest.mark.parametrize("photo, status, message", [
    (b"not a photo at all", 400, "That file cannot be searched"),
    (b"", 400, "That file cannot be searched"),
])
def test_bad_uploads_reach_the_alert_region(fake_model, indexed, photo, status, message):
    response = search(client_of(indexed, model=fake_model), photo)
    assert response.status_code == status
    assert re.search(r'role="alert"[^>]*>\s*<p class="error">' + message, response.get_data(as_text=True))


def test_a_photo_without_a_face_says_so(fake_model, indexed):
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (255, 255, 255)).save(out, format="PNG")
    html = search(client_of(indexed, model=fake_model), out.getvalue(), htmx=True).get_data(as_text=True)
    assert "No face was found in that photo" in html


def test_an_upload_over_the_limit_is_a_readable_page(fake_model, indexed):
    client = client_of(indexed, service={"max_upload_mb": 0.01}, model=fake_model)
    response = search(client, b"\xff" * 20_000)
    assert response.status_code == 413 and response.mimetype == "text/html"
    assert "larger than the limit" in response.get_data(as_text=True)


def test_every_post_needs_the_csrf_token(fake_model, indexed):
    client = client_of(indexed, model=fake_model)
    client.get("/")
    response = client.post("/", data={"photo": (io.BytesIO(b"x"), "q.jpg")}, content_type="multipart/form-data")
    assert response.status_code == 403 and "reload the page" in response.get_data(as_text=True)
    wrong = client.post("/", data={"csrf_token": "guess"}, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403


def test_names_are_escaped(fake_model, indexed):
    client = client_of(indexed, model=fake_model)
    annotations = AnnotationsDB.open(indexed)
    html = client.get("/?face_id=1").get_data(as_text=True)
    photo_id = re.search(r'href="/photos/(\d+)"', html).group(1)
    annotations.create_person(XSS, [1])
    for url in ["/?face_id=1", f"/photos/{photo_id}"]:
        page = client.get(url).get_data(as_text=True)
        assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    annotations.close()


def test_the_photo_page_boxes_every_face(fake_model, indexed):
    client = client_of(indexed, model=fake_model)
    html = client.get("/?face_id=1").get_data(as_text=True)
    photo_id = re.search(r'href="/photos/(\d+)"', html).group(1)
    page = client.get(f"/photos/{photo_id}").get_data(as_text=True)
    assert page.count('class="box"') == 1 and 'data-face-id="1"' in page
    image = client.get(f"/photos/{photo_id}/image.jpg")
    assert image.mimetype == "image/jpeg" and image.headers["Cache-Control"] == "private, no-cache"  # revalidated
    assert client.get(f"/photos/{photo_id}/image.jpg",
                      headers={"If-None-Match": image.headers["ETag"]}).status_code == 304
    thumb = client.get("/faces/1/thumbnail.jpg")
    assert client.get("/faces/1/thumbnail.jpg", headers={"If-None-Match": thumb.headers["ETag"]}).status_code == 304
    assert client.get("/faces/1").headers["Location"] == f"/photos/{photo_id}#name-1"  # a face leads to its photo
    missing = client.get("/photos/99999")
    assert missing.status_code == 404 and "There is no photo 99999" in missing.get_data(as_text=True)


def test_the_index_page(fake_model, indexed):
    html = client_of(indexed, model=fake_model).get("/index").get_data(as_text=True)
    assert "Last reindex runs" in html and "Generation served" not in html
    assert re.search(r"<dt>Updated</dt><dd>just now <span class=\"counts\">\(version g000001, ", html)
    assert re.search(r"<dt>Faces</dt><dd>15</dd>", html)


def test_signing_in_with_a_key(fake_model, indexed):
    client = client_of(indexed, api_keys=["admin-key-0000001"], read_keys=["read-key-00000001"], model=fake_model)
    first = client.get("/index")
    assert first.status_code == 302 and first.headers["Location"].startswith("/login?next=")
    login = client.get(first.headers["Location"]).get_data(as_text=True)
    assert '<label for="api_key">API key</label>' in login
    token = csrf_token_of(login)
    wrong = client.post("/login", data={"api_key": "nope", "csrf_token": token, "next": "/index"})
    assert wrong.status_code == 401 and "not valid" in wrong.get_data(as_text=True)
    right = client.post("/login", data={"api_key": "read-key-00000001", "csrf_token": token, "next": "/index"})
    assert right.status_code == 302 and right.headers["Location"] == "/index"
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "read-key-00000001" not in cookie
    page = client.get("/index").get_data(as_text=True)
    assert "Read only" in page and "Sign out" in page
    # Never sent away from this site after signing in.
    token = csrf_token_of(page)
    client.post("/logout", data={"csrf_token": token})
    again = client.post("/login", data={"api_key": "admin-key-0000001",
                                        "csrf_token": csrf_token_of(client.get("/login").get_data(as_text=True)),
                                        "next": "https://elsewhere.example/"})
    assert again.headers["Location"] == "/"
    assert client.get("/index").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token_of(client.get("/index").get_data(as_text=True))})
    assert client.get("/index").status_code == 302
    # htmx requests are sent to the login page too.
    assert client.get("/index", headers={"HX-Request": "true"}).headers["HX-Redirect"].startswith("/login")


def test_sightings_grouped_by_file_filtered_and_searched_again(fake_model, indexed, photos):
    client = client_of(indexed, model=fake_model)
    page = client.get("/recall").get_data(as_text=True)
    assert '<label for="photo">Photo</label>' in page
    assert 'type="file" accept="image/*" data-max-bytes="16777216" multiple' in page
    assert '<button type="submit">Search</button>' in page
    token = csrf_token_of(page)

    def recall(**fields):
        return client.post("/recall", data={"csrf_token": token, **fields}, content_type="multipart/form-data")

    photo = lfw_photo("Tony_Blair", 1).read_bytes()
    html = recall(photo=(io.BytesIO(photo), "probe.jpg"), max_distance="0.5").get_data(as_text=True)
    assert "1 face seen in 1 file<" in html and ">Tony_Blair_0001.jpg</a>" in html
    assert f'<span class="path">{photos / "Tony_Blair"}</span> · 1 face in 1 file</h3>' in html  # by folder
    assert 'src="data:image/jpeg;base64,' in html and 'alt="The face searched in probe.jpg"' in html
    assert "may be different people" not in html
    face_id = re.search(r'name="sure" value="(\d+)"', html).group(1)
    probes = re.search(r'name="probes" value="([^"]+)"', html).group(1)
    # A camera folder that holds none of them.
    elsewhere = recall(photo=(io.BytesIO(photo), "probe.jpg"), path_prefix=str(photos / "Colin_Powell"))
    assert "0 faces seen in 0 files<" in elsewhere.get_data(as_text=True)
    # Search again with the earlier probe and a sighting one is sure of.
    again = recall(probes=probes, sure=face_id, max_distance="0.5").get_data(as_text=True)
    assert "Searched with 2 faces" in again and f'data-face-id="{face_id}" href="/faces/{face_id}"' in again
    # Faces of two people searched together: said.
    other = lfw_photo("Colin_Powell", 1).read_bytes()
    mixed = client.post("/recall", data={"csrf_token": token, "photo": [(io.BytesIO(photo), "a.jpg"),
                                                                        (io.BytesIO(other), "b.jpg")]},
                        content_type="multipart/form-data").get_data(as_text=True)
    assert "Face 2 is " in mixed and "may be different people" in mixed
    assert recall(probes="not base64!").status_code == 400
    assert "No face was found" in recall(photo=(io.BytesIO(_white_png()), "white.png")).get_data(as_text=True)
    assert recall().status_code == 400


def _white_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (255, 255, 255)).save(out, format="PNG")
    return out.getvalue()


def test_a_reindex_is_started_from_the_index_page_and_followed(fake_model, indexed, photos):
    import shutil
    import time

    from indexer.store import runs
    from indexer.store.generations import IndexLock, running_index

    client = client_of(indexed, model=fake_model)
    html = client.get("/index").get_data(as_text=True)
    assert "No reindex is running." in html and "Reindex now" in html and str(photos) in html
    shutil.copy(lfw_photo("Tony_Blair", 1), photos / "new.jpg")
    token = csrf_token_of(html)
    response = client.post("/index", data={"csrf_token": token, "action": "reindex"})
    assert response.status_code == 303
    deadline = time.monotonic() + 30
    while len(runs.recent_runs(indexed, 5)) < 2 and time.monotonic() < deadline:  # the thread's run recorded
        time.sleep(0.1)
    assert running_index(indexed) is None
    assert runs.last_run(indexed)["images_indexed"] == 1 and runs.last_run(indexed)["roots"] == [str(photos)]
    assert "No reindex is running." in client.get("/index/progress").get_data(as_text=True)
    # While one runs: said, with its progress, and none other started.
    with IndexLock(indexed, command="facesearch index elsewhere") as lock:
        lock.progress(3, 12)
        busy = client.get("/index").get_data(as_text=True)
        assert "3 of 12 files to read" in busy and "Reindex now" not in busy
        refused = client.post("/index", data={"csrf_token": token, "action": "reindex"})
        assert refused.status_code == 409 and "running already" in refused.get_data(as_text=True)
